"""``python -m chatsite <command>``: Django's management commands for an installed server.

What ``manage.py`` is in a checkout, for an installation from the wheel,
which carries no ``manage.py``: ``python -m chatsite migrate --noinput``
(``docs/deployment.md``).
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["python -m chatsite", *sys.argv[1:]])


if __name__ == "__main__":
    main()
