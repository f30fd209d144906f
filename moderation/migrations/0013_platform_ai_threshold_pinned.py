from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0012_upload_fetch_and_scan_attempts"),
    ]

    operations = [
        migrations.AddField(
            model_name="platform",
            name="ai_threshold_pinned",
            field=models.BooleanField(default=False),
        ),
    ]
