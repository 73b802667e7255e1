# Text is text (issue #20): messages keep what was typed and markdown gains its rendered form;
# workspaces choose what a hostile-looking message does (standard: flagged, strict: refused).

from django.db import migrations, models

BATCH = 500


def render_markdown_messages(apps, schema_editor):
    """Give every markdown message stored before this migration its HTML (the renderer is pure)."""
    from security.render import render_markdown

    ChatMessage = apps.get_model("chat", "ChatMessage")
    rows = ChatMessage.objects.filter(content_type="markdown", html="").only("pk", "content")
    batch = []
    for message in rows.iterator(chunk_size=BATCH):
        message.html = render_markdown(message.content)
        batch.append(message)
        if len(batch) >= BATCH:
            ChatMessage.objects.bulk_update(batch, ["html"])
            batch = []
    if batch:
        ChatMessage.objects.bulk_update(batch, ["html"])


class Migration(migrations.Migration):

    dependencies = [
        ('chat', '0005_agentrun_stream'),
    ]

    operations = [
        migrations.AddField(
            model_name='chatmessage',
            name='html',
            field=models.TextField(blank=True, default=''),
        ),
        migrations.AddField(
            model_name='workspace',
            name='content_policy',
            field=models.CharField(choices=[('standard', 'Standard'), ('strict', 'Strict')], default='standard', max_length=16),
        ),
        migrations.RunPython(render_markdown_messages, migrations.RunPython.noop),
    ]
