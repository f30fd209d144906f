"""Takes over its models from the core app (moderation 0008) with their tables as they are: state only."""

import django.db.models.deletion
from django.db import migrations, models


APP = "registry"
MOVED = ['modelversion']


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
        ("moderation", "0008_models_move_to_their_stages"),
    ]

    operations = [
        # State only: the tables, their rows, indexes and constraints stay exactly as they are.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ModelVersion',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100)),
                        ('version', models.CharField(max_length=50)),
                        ('checkpoint_path', models.CharField(max_length=500)),
                        ('status', models.CharField(choices=[('candidate', 'Candidate'), ('rejected', 'Rejected'), ('shadow', 'Shadow'), ('active', 'Active'), ('retired', 'Retired')], default='candidate', max_length=16)),
                        ('card', models.JSONField(blank=True, default=dict)),
                        ('gate', models.JSONField(blank=True, default=dict)),
                        ('labels_used', models.PositiveIntegerField(default=0)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('activated_at', models.DateTimeField(blank=True, null=True)),
                        ('parent', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='children', to='registry.modelversion')),
                    ],
                    options={
                        'db_table': 'moderation_modelversion',
                        'constraints': [models.UniqueConstraint(fields=('name', 'version'), name='model_version_unique'), models.UniqueConstraint(condition=models.Q(('status', 'active')), fields=('status',), name='one_active_model'), models.UniqueConstraint(condition=models.Q(('status', 'shadow')), fields=('status',), name='one_shadow_model'), models.CheckConstraint(condition=models.Q(('status__in', ['candidate', 'rejected', 'shadow', 'active', 'retired'])), name='model_status_valid')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_follow, content_types_return),
    ]
