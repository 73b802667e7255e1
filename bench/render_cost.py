"""The cost of rendering a markdown message once (``security.render``), and what rendering on read would cost.

    .venv/bin/python bench/render_cost.py

Prints, for messages of typical sizes, the median time of one render
(markdown-it-py + nh3) over many runs, and what a history page of 50 and of
200 such messages would add if every read rendered them again.  The server
renders once, when a message is stored (Zulip's ``rendered_content``), so
reads cost nothing extra; the figures are in ``docs/protocol.md``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

import django  # noqa: E402

django.setup()

from security.render import render_markdown  # noqa: E402

SHORT = "Sure -- use `git rebase -i HEAD~3` and mark the commits **squash**."
PARAGRAPH = (
    "Here is how to do it:\n\n1. Open the file\n2. Change the *second* line\n3. Run the [tests](https://example.com/t)\n\n"
    "```python\nfor item in items:\n    if item.ready:\n        process(item)\n```\n\nThat is all; `make test` checks it."
)
MESSAGES = {
    "short line (70 chars)": SHORT,
    "agent answer (~250 chars)": PARAGRAPH,
    "long answer (~1 KB)": (PARAGRAPH + "\n\n") * 4,
    "longest allowed (10,000 chars)": ((PARAGRAPH + "\n\n") * 50)[:10_000],
}


def median_seconds(source: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        render_markdown(source)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    for name, source in MESSAGES.items():
        runs = 2000 if len(source) < 2000 else 50
        seconds = median_seconds(source, runs)
        print(
            f"{name:32s} {len(source):6d} chars  {seconds * 1e6:9.0f} us per render"
            f"  (on read: +{seconds * 50 * 1000:.1f} ms per 50-message page, +{seconds * 200 * 1000:.1f} ms per 200)"
        )


if __name__ == "__main__":
    main()
