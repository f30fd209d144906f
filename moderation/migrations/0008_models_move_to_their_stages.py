"""Scans, tags, decisions, claims, bank entries, retro scans, model versions, shadow scores and callback deliveries
move to the apps of their stages. Only Django's model state changes here; each app's 0001 takes the models over,
keeping their tables (`db_table`), so no row is copied or lost."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('moderation', '0007_scan_review_reason'),
    ]

    operations = [
        # State only: the tables, their rows, indexes and constraints stay exactly as they are.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='hashbankentry',
                    name='added_by',
                ),
                migrations.RemoveField(
                    model_name='hashbankentry',
                    name='platform',
                ),
                migrations.RemoveField(
                    model_name='hashbankentry',
                    name='review_decision',
                ),
                migrations.RemoveField(
                    model_name='hashbankentry',
                    name='upload',
                ),
                migrations.RemoveField(
                    model_name='retroscan',
                    name='entries',
                ),
                migrations.RemoveField(
                    model_name='modelversion',
                    name='parent',
                ),
                migrations.RemoveField(
                    model_name='shadowscore',
                    name='model_version',
                ),
                migrations.RemoveField(
                    model_name='retroscan',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='retroscan',
                    name='platform',
                ),
                migrations.RemoveField(
                    model_name='reviewclaim',
                    name='reviewer',
                ),
                migrations.RemoveField(
                    model_name='reviewclaim',
                    name='upload',
                ),
                migrations.RemoveField(
                    model_name='reviewdecision',
                    name='reviewer',
                ),
                migrations.RemoveField(
                    model_name='reviewdecision',
                    name='upload',
                ),
                migrations.RemoveField(
                    model_name='scan',
                    name='upload',
                ),
                migrations.RemoveField(
                    model_name='shadowscore',
                    name='scan',
                ),
                migrations.RemoveField(
                    model_name='tag',
                    name='scan',
                ),
                migrations.RemoveField(
                    model_name='tag',
                    name='upload',
                ),
                migrations.DeleteModel(
                    name='CallbackDelivery',
                ),
                migrations.DeleteModel(
                    name='HashBankEntry',
                ),
                migrations.DeleteModel(
                    name='ModelVersion',
                ),
                migrations.DeleteModel(
                    name='RetroScan',
                ),
                migrations.DeleteModel(
                    name='ReviewClaim',
                ),
                migrations.DeleteModel(
                    name='ReviewDecision',
                ),
                migrations.DeleteModel(
                    name='ShadowScore',
                ),
                migrations.DeleteModel(
                    name='Scan',
                ),
                migrations.DeleteModel(
                    name='Tag',
                ),
            ],
            database_operations=[],
        ),
    ]
