"""Takes over its models from the core app (moderation 0008) with their tables as they are: state only."""

import django.db.models.deletion
from django.db import migrations, models


APP = "scanning"
MOVED = ['scan', 'tag', 'shadowscore']


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
        ('registry', '0001_initial'),
    ]

    operations = [
        # State only: the tables, their rows, indexes and constraints stay exactly as they are.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Scan',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('model_name', models.CharField(max_length=100)),
                        ('model_version', models.CharField(max_length=50)),
                        ('vit_model_version', models.CharField(blank=True, max_length=100)),
                        ('cnn_score', models.FloatField(blank=True, null=True)),
                        ('vit_score', models.FloatField(blank=True, null=True)),
                        ('escalated', models.BooleanField(default=False)),
                        ('score', models.FloatField(blank=True, null=True)),
                        ('threshold', models.FloatField(blank=True, null=True)),
                        ('path', models.CharField(blank=True, max_length=16)),
                        ('verdict', models.CharField(blank=True, choices=[('ai-generated', 'Ai Generated'), ('likely-real', 'Likely Real'), ('needs-review', 'Needs Review')], max_length=16)),
                        ('review_reason', models.CharField(blank=True, max_length=120)),
                        ('latency_ms', models.FloatField(blank=True, null=True)),
                        ('batch_size', models.PositiveIntegerField(default=1)),
                        ('heatmap', models.FileField(blank=True, upload_to='heatmaps/%Y/%m/%d/')),
                        ('error', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('upload', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='scans', to='moderation.upload')),
                    ],
                    options={
                        'db_table': 'moderation_scan',
                    },
                ),
                migrations.CreateModel(
                    name='ShadowScore',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('score', models.FloatField()),
                        ('is_ai', models.BooleanField()),
                        ('agrees', models.BooleanField()),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('model_version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='shadow_scores', to='registry.modelversion')),
                        ('scan', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='shadow_scores', to='scanning.scan')),
                    ],
                    options={
                        'db_table': 'moderation_shadowscore',
                    },
                ),
                migrations.CreateModel(
                    name='Tag',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=64)),
                        ('source', models.CharField(choices=[('auto', 'Auto'), ('reviewer', 'Reviewer'), ('provenance', 'Provenance')], max_length=16)),
                        ('confidence', models.FloatField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('scan', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='tags', to='scanning.scan')),
                        ('upload', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='tags', to='moderation.upload')),
                    ],
                    options={
                        'db_table': 'moderation_tag',
                    },
                ),
                migrations.AddIndex(
                    model_name='scan',
                    index=models.Index(fields=['upload', '-created_at'], name='moderation__upload__6c704f_idx'),
                ),
                migrations.AddConstraint(
                    model_name='scan',
                    constraint=models.CheckConstraint(condition=models.Q(models.Q(('error', ''), ('score__gte', 0), ('score__lte', 1), ('cnn_score__gte', 0), ('cnn_score__lte', 1), models.Q(('verdict', ''), _negated=True)), models.Q(models.Q(('error', ''), _negated=True), ('score__isnull', True), ('verdict', '')), _connector='OR'), name='scan_scored_or_failed'),
                ),
                migrations.AddConstraint(
                    model_name='scan',
                    constraint=models.CheckConstraint(condition=models.Q(models.Q(('escalated', False), ('vit_score__isnull', True)), models.Q(('escalated', True), ('vit_score__gte', 0), ('vit_score__lte', 1)), _connector='OR'), name='scan_vit_score_iff_escalated'),
                ),
                migrations.AddConstraint(
                    model_name='shadowscore',
                    constraint=models.UniqueConstraint(fields=('scan', 'model_version'), name='shadow_score_once_per_scan'),
                ),
                migrations.AddIndex(
                    model_name='tag',
                    index=models.Index(fields=['name', 'upload'], name='moderation__name_283a93_idx'),
                ),
                migrations.AddConstraint(
                    model_name='tag',
                    constraint=models.UniqueConstraint(fields=('upload', 'name'), name='tag_unique_per_upload'),
                ),
                migrations.AddConstraint(
                    model_name='tag',
                    constraint=models.CheckConstraint(condition=models.Q(('source__in', ['auto', 'reviewer', 'provenance'])), name='tag_source_valid'),
                ),
                migrations.AddConstraint(
                    model_name='tag',
                    constraint=models.CheckConstraint(condition=models.Q(('confidence__isnull', True), models.Q(('confidence__gte', 0), ('confidence__lte', 1)), _connector='OR'), name='tag_confidence_range'),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_follow, content_types_return),
    ]
