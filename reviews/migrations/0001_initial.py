"""Takes over its models from the core app (moderation 0008) with their tables as they are: state only."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


APP = "reviews"
MOVED = ['reviewdecision', 'reviewclaim']


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
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # State only: the tables, their rows, indexes and constraints stay exactly as they are.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ReviewClaim',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('expires_at', models.DateTimeField()),
                        ('reviewer', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='review_claims', to=settings.AUTH_USER_MODEL)),
                        ('upload', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='review_claim', to='moderation.upload')),
                    ],
                    options={
                        'db_table': 'moderation_reviewclaim',
                    },
                ),
                migrations.CreateModel(
                    name='ReviewDecision',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('label', models.CharField(choices=[('ai-generated', 'Ai Generated'), ('real', 'Real'), ('unsure', 'Unsure')], max_length=16)),
                        ('note', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('reviewer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='review_decisions', to=settings.AUTH_USER_MODEL)),
                        ('upload', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='review_decisions', to='moderation.upload')),
                    ],
                    options={
                        'db_table': 'moderation_reviewdecision',
                        'permissions': [('review_upload', 'Can review uploads of assigned platforms'), ('review_bulk', 'Can decide many uploads at once'), ('view_all_platforms', "Can review every platform's uploads"), ('view_review_stats', 'Can see review statistics'), ('view_audit_log', 'Can read the audit log')],
                        'indexes': [models.Index(fields=['upload', '-created_at'], name='moderation__upload__3ed3c6_idx')],
                        'constraints': [models.CheckConstraint(condition=models.Q(('label__in', ['ai-generated', 'real', 'unsure'])), name='review_label_valid')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_follow, content_types_return),
    ]
