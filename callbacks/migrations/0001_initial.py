"""Takes over its models from the core app (moderation 0008) with their tables as they are: state only."""

import django.db.models.deletion
from django.db import migrations, models


APP = "callbacks"
MOVED = ['callbackdelivery']


def _content_types(apps, from_label, to_label):
    """Existing content types, and so the permissions, group grants and admin log entries that point at them, follow
    the models. Where `migrate` already made an empty one under the other label (its post_migrate runs on the code's
    models), the existing one wins."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        existing = ContentType.objects.filter(app_label=from_label, model=model).first()
        if existing is None:
            continue
        ContentType.objects.filter(app_label=to_label, model=model).delete()
        existing.app_label = to_label
        existing.save(update_fields=["app_label"])


def content_types_follow(apps, schema_editor):
    _content_types(apps, "moderation", APP)


def content_types_return(apps, schema_editor):
    _content_types(apps, APP, "moderation")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ('moderation', '0008_models_move_to_their_stages'),
    ]

    operations = [
        # State only: the tables, their rows, indexes and constraints stay exactly as they are.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='CallbackDelivery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('event_type', models.CharField(max_length=64)),
                        ('event_id', models.CharField(max_length=64, unique=True)),
                        ('payload', models.JSONField()),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('delivered', 'Delivered'), ('dead', 'Dead')], default='pending', max_length=16)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('last_status_code', models.PositiveIntegerField(blank=True, null=True)),
                        ('last_error', models.TextField(blank=True)),
                        ('last_latency_ms', models.FloatField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('delivered_at', models.DateTimeField(blank=True, null=True)),
                        ('platform', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='callback_deliveries', to='moderation.platform')),
                        ('upload', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='callbacks', to='moderation.upload')),
                    ],
                    options={
                        'db_table': 'moderation_callbackdelivery',
                        'indexes': [models.Index(fields=['status', 'created_at'], name='moderation__status_175803_idx')],
                        'constraints': [models.CheckConstraint(condition=models.Q(('status__in', ['pending', 'delivered', 'dead'])), name='delivery_status_valid')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_follow, content_types_return),
    ]
