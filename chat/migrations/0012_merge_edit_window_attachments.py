# Joins two migrations made in parallel from 0008 (#22's edit window, #22's attachments); no operations.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('chat', '0009_workspace_edit_window'),
        ('chat', '0011_attachments'),
    ]

    operations = []
