"""Every model change has its migration (makemigrations --check reads the applied history, hence a database)."""

from __future__ import annotations

import io

from django.core.management import call_command


def test_the_models_and_their_migrations_agree(db):
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as error:  # --check exits 1 when a migration is missing
        raise AssertionError(f"a model change has no migration:\n{out.getvalue()}") from error
