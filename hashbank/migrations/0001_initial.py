"""Takes over its models from the core app (moderation 0008) with their tables as they are: state only."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


APP = "hashbank"
MOVED = ['hashbankentry', 'retroscan']


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
        ('reviews', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # State only: the tables, their rows, indexes and constraints stay exactly as they are.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='HashBankEntry',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('pdq_hash', models.CharField(max_length=64)),
                        ('quality', models.SmallIntegerField(blank=True, null=True)),
                        ('sha256', models.CharField(blank=True, max_length=64)),
                        ('note', models.CharField(blank=True, max_length=500)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('added_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                        ('platform', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='hashes', to='moderation.platform')),
                        ('review_decision', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='bank_hashes', to='reviews.reviewdecision')),
                        ('upload', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='bank_hashes', to='moderation.upload')),
                    ],
                    options={
                        'db_table': 'moderation_hashbankentry',
                    },
                ),
                migrations.CreateModel(
                    name='RetroScan',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('hash_match', 'Hash Match'), ('model_rescore', 'Model Rescore')], max_length=16)),
                        ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed')], default='queued', max_length=16)),
                        ('window_since', models.DateTimeField(blank=True, null=True)),
                        ('total', models.PositiveIntegerField(default=0)),
                        ('processed', models.PositiveIntegerField(default=0)),
                        ('flagged', models.JSONField(blank=True, default=list)),
                        ('error', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                        ('entries', models.ManyToManyField(blank=True, related_name='retro_scans', to='hashbank.hashbankentry')),
                        ('platform', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, to='moderation.platform')),
                    ],
                    options={
                        'db_table': 'moderation_retroscan',
                    },
                ),
                migrations.AddIndex(
                    model_name='hashbankentry',
                    index=models.Index(fields=['platform', 'id'], name='moderation__platfor_5c3f21_idx'),
                ),
                migrations.AddConstraint(
                    model_name='hashbankentry',
                    constraint=models.CheckConstraint(condition=models.Q(('pdq_hash__regex', '^[0-9a-f]{64}$')), name='bank_pdq_hash_hex'),
                ),
                migrations.AddConstraint(
                    model_name='retroscan',
                    constraint=models.CheckConstraint(condition=models.Q(('status__in', ['queued', 'running', 'done', 'failed'])), name='retro_scan_status_valid'),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_follow, content_types_return),
    ]
