"""Integration tests: every chat event a test client receives must match the shared schema.

See :mod:`tests.integration.event_schema`.  A test during which an invalid
``chat:*`` event or ack arrived fails (in its call, or in its teardown when
the event came then), with the event and what is wrong with it.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from tests.integration import event_schema


@pytest.fixture(scope="session", autouse=True)
def _check_events_against_schema() -> Iterator[None]:
    undo = event_schema.install()
    try:
        yield
    finally:
        undo()


def _fail_on_violations(phase: str) -> None:
    violations = event_schema.take_violations()
    if violations:
        listed = "\n".join(str(violation) for violation in violations[:10])
        more = f"\n... and {len(violations) - 10} more" if len(violations) > 10 else ""
        pytest.fail(f"{len(violations)} invalid chat event(s) received during the {phase}:\n{listed}{more}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[Any]:
    result = yield
    _fail_on_violations("test")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[Any]:
    result = yield
    _fail_on_violations("teardown")
    return result
