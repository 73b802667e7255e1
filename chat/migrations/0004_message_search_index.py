"""A GIN index for full-text search of message content (PostgreSQL only).

The expression is exactly what ``chat.api.messages.search`` filters on
(``SearchVector("content", config="simple")``), so the planner uses it.
Other databases search without it (the plain fallback).
"""

from django.db import migrations

INDEX = "chat_message_content_fts"
CREATE = (
    f"CREATE INDEX IF NOT EXISTS {INDEX} ON chat_chatmessage "
    "USING gin (to_tsvector('simple'::regconfig, COALESCE(content, '')))"
)
DROP = f"DROP INDEX IF EXISTS {INDEX}"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("chat", "0003_agentrun_agentsessionstate")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
