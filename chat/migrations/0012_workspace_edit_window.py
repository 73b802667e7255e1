from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('chat', '0011_attachments'),
    ]

    operations = [
        migrations.AddField(
            model_name='workspace',
            name='edit_window_s',
            field=models.PositiveIntegerField(default=900),
        ),
    ]
