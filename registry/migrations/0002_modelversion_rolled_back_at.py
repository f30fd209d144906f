from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="rolled_back_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
