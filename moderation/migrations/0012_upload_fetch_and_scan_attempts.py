from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0011_upload_platform_index_covered"),
    ]

    operations = [
        migrations.RenameField(model_name="upload", old_name="attempts", new_name="fetch_attempts"),
        migrations.AddField(
            model_name="upload",
            name="scan_attempts",
            field=models.PositiveIntegerField(default=0),
        ),
    ]
