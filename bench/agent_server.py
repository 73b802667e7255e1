"""Daphne with the benchmark's ``clock`` agent backend registered, in this process only.

``python -m bench.agent_server -- <daphne arguments>`` (started by ``bench/agent_overhead.py``).
An agent row naming ``clock`` works in this server and nowhere else: the
backend is benchmark equipment, not part of the product.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    daphne_args = argv[argv.index("--") + 1 :] if "--" in argv else argv
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    from bench.agent_overhead import ClockBackend
    from chat.agents.backends import BACKENDS

    BACKENDS[ClockBackend.name] = ClockBackend
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(daphne_args)


if __name__ == "__main__":
    main(sys.argv[1:])
