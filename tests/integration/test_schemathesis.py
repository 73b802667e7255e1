"""schemathesis against a live server's own OpenAPI schema (``/api/schema/``), authenticated.

Every operation is exercised with generated requests -- the schema's own
examples, boundary ("coverage") cases and random data, valid and invalid --
and then as stateful sequences following the links schemathesis infers
(``Location`` headers, ids in responses feeding path parameters).  Every
response must be no server error and conform to the schema: status code,
content type, headers and body.

It runs twice: with the default API rate limit (``CHAT_API_RATE_LIMIT``,
120 requests a minute), where most requests are refused with 429 -- so
every operation must document it -- and with the limit raised out of the
way, so the fuzzing reaches every operation's own logic.

The world matches the schema's examples (workspace ``acme``, session
``support-42``, message ``m-0001``, user ``alice``, agent ``helper``), so the
examples reach past the 404s into real objects; the caller is an admin of
``acme``.  Runtime is bounded by ``CHAT_SCHEMATHESIS_EXAMPLES`` (examples per
operation, default 5) and by a fixed seed, so a run is reproducible.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import schemathesis
from schemathesis import engine
from schemathesis.engine import events

from tests.conftest import REPO_ROOT

MAX_EXAMPLES = int(os.environ.get("CHAT_SCHEMATHESIS_EXAMPLES", "5"))
STATEFUL_STEPS = int(os.environ.get("CHAT_SCHEMATHESIS_STEPS", "8"))
SEED = 20261122

_WORLD = """
import json, django
django.setup()
from django.contrib.auth import get_user_model
from chat.models import Agent, ChatSession, Membership, Workspace
from chat.services.messages import Sender, store_message
from security.models import ApiToken
User = get_user_model()
# Other tests share this database and may have made some of these already.
acme, _ = Workspace.objects.get_or_create(slug="acme", defaults={"name": "Acme"})
Workspace.objects.get_or_create(slug="beta", defaults={"name": "Beta"})
admin, _ = User.objects.get_or_create(username="integrator")
Membership.objects.update_or_create(user=admin, workspace=acme, defaults={"role": "admin"})
for name in ("alice", "bob", "mallory"):
    Membership.objects.get_or_create(user=User.objects.get_or_create(username=name)[0], workspace=acme)
Agent.objects.get_or_create(workspace=acme, key="helper", defaults={"name": "Helper"})
session, _ = ChatSession.objects.get_or_create(workspace=acme, key="support-42", defaults={"created_by": admin})
ChatSession.objects.filter(pk=session.pk).update(status="open")  # the other run's fuzzing may have closed it
store_message(session.pk, Sender.for_user(admin), "m-0001", "Where is my refund?")
print(json.dumps({"token": ApiToken.issue(admin, name="schemathesis")[1]}))
"""


#: The rate limits of each run: the defaults, and limits no run reaches (the API's, and posting
#: messages' -- the send rate and the repeat limit -- which REST posts share with socket sends).
RATE_LIMITS: dict[str, dict[str, str | None]] = {
    "default-rate-limit": {},
    "raised-rate-limit": {
        "CHAT_API_RATE_LIMIT": "1000000/m",
        "CHAT_MESSAGE_RATE_LIMIT": "1000000",
        "CHAT_SPAM_MAX_REPEATS": "1000000",
    },
}


@pytest.fixture(scope="module", params=list(RATE_LIMITS))
def target(request, module_server_factory, services_backend):
    """A chat server on PostgreSQL and Redis, as in production; the token of an admin of ``acme``."""
    server = module_server_factory(services_backend, conformance=False, **RATE_LIMITS[request.param])
    done = subprocess.run(
        [sys.executable, "-c", _WORLD], env=server.env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    yield server, json.loads(done.stdout.strip().splitlines()[-1])["token"]
    server.stop()  # before the other run's server starts: PostgreSQL's connections are shared


@pytest.fixture(scope="module")
def api_schema(target):
    server, token = target
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "cache": {"enabled": False},  # no .schemathesis/ directory in the work tree
            "base-url": server.url,
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"max-examples": MAX_EXAMPLES},
            "phases": {"stateful": {"max-steps": STATEFUL_STEPS}},
            # Whether an upload is accepted depends on its bytes (their sniffed type, their size), which no
            # schema can state: a schema-valid upload may be refused with 400, 413 or 415.
            "operations": [
                {
                    "include-path": "/api/v1/workspaces/{workspace}/sessions/{session}/attachments/",
                    "include-method": "POST",
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": ["2xx", "3xx", "400", "401", "403", "404", "409", "413", "415", "429", "5xx"]
                        }
                    },
                }
            ],
        }
    )
    return schemathesis.openapi.from_url(f"{server.url}/api/schema/", config=config, timeout=10)


def run_engine(api_schema) -> tuple[list[str], dict[str, int]]:
    """Run every phase the CLI runs; return the failures (one line each, with a curl) and some statistics.

    (schemathesis's pytest plugin cannot be used with pytest 9: it rewrites a
    node attribute pytest 9 removed.  The engine is what ``schemathesis run``
    itself executes.)
    """
    failures: list[str] = []
    stats = {"scenarios": 0, "requests": 0, "throttled": 0}
    phases: set[str] = set()
    for event in engine.from_schema(api_schema).execute():
        if isinstance(event, events.ScenarioFinished):
            stats["scenarios"] += 1
            phases.add(str(event.phase.value))
            stats["requests"] += len(event.recorder.interactions)
            stats["throttled"] += sum(
                1
                for interaction in event.recorder.interactions.values()
                if interaction.response is not None and interaction.response.status_code == 429
            )
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status == engine.Status.FAILURE and check.failure_info is not None:
                        case = event.recorder.cases[case_id].value
                        failure = check.failure_info.failure
                        failures.append(
                            f"[{event.phase.value}] {check.name}: {failure.title} -- {failure.message}\n"
                            f"    {case.as_curl_command()}"
                        )
        elif isinstance(event, events.NonFatalError):
            failures.append(f"[error] {event.label}: {event.info.title} -- {event.value!r}")
        elif isinstance(event, events.FatalError):
            failures.append(f"[fatal] {event.exception!r}")
    stats["phases"] = len(phases)
    print(f"schemathesis: {stats}, phases {sorted(phases)}")
    return failures, stats


def test_schemathesis_finds_no_server_error_and_no_schema_violation(api_schema, target):
    failures, stats = run_engine(api_schema)
    assert not failures, f"{len(failures)} failing checks:\n" + "\n".join(sorted(set(failures))[:40])
    assert stats["requests"] > 100, stats
    server, _ = target
    if server.env.get("CHAT_API_RATE_LIMIT"):  # raised: every request reached the operation's own code
        assert stats["throttled"] == 0, stats
    else:  # the default limit: most requests are refused, and each refusal was checked against the schema
        assert stats["throttled"] > stats["requests"] / 2, stats
