"""The commands ``docs/deployment.md`` gives, and the ones ``deploy/`` runs, read from the files.

``tests/integration/test_deploy.py`` checks that the two agree;
``tests/integration/test_packaging.py`` runs the documented ones.
"""

from __future__ import annotations

import re
import shlex

import yaml

from tests.conftest import REPO_ROOT

DEPLOYMENT_MD = REPO_ROOT / "docs" / "deployment.md"
DEPLOY = REPO_ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
SYSTEMD = DEPLOY / "systemd"
#: Where the systemd units expect the installation (docs/deployment.md, "systemd").
SYSTEMD_VENV_BIN = "/srv/chat/.venv/bin/"

_SH_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _section(title: str) -> str:
    text = DEPLOYMENT_MD.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"docs/deployment.md has no section '## {title}'"
    return match.group(1)


def _commands(block: str) -> list[str]:
    """One string per command: continuation lines joined, comments dropped."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        line = re.sub(r"\s+#\s.*$", "", line).strip()
        if line and not line.startswith("#"):
            commands.append(re.sub(r"\s+", " ", line))
    return commands


def install_commands() -> list[str]:
    """The install steps: the first ``sh`` block of the *Install* section."""
    return _commands(_SH_BLOCK.findall(_section("Install"))[0])


def migrate_command() -> list[str]:
    """The migration, as an argument list: the second ``sh`` block of *Install*."""
    (command,) = _commands(_SH_BLOCK.findall(_section("Install"))[1])
    return shlex.split(command)


def production_command() -> list[str]:
    """The production server command: the ``sh`` block after "Production therefore runs"."""
    section = _section("Why uvicorn")
    tail = section[section.index("Production therefore runs") :]
    (command,) = _commands(_SH_BLOCK.findall(tail)[0])
    return shlex.split(command)


def _instructions(text: str, prefix: str) -> list[str]:
    """What follows ``prefix`` on each line starting with it, continuation lines joined."""
    text = text.replace("\\\n", " ")
    found = re.findall(rf"^{re.escape(prefix)}(.*)$", text, re.MULTILINE)
    return [re.sub(r"\s+", " ", line).strip() for line in found]


def dockerfile_runs() -> list[str]:
    """Every ``RUN`` command of the Dockerfile, without BuildKit's ``--mount=...`` options."""
    runs = _instructions(DOCKERFILE.read_text(), "RUN ")
    return [re.sub(r"^(--mount=\S+\s+)+", "", run) for run in runs]


def dockerfile_cmd() -> list[str]:
    """The image's exec-form ``CMD``, as a list."""
    (cmd,) = _instructions(DOCKERFILE.read_text(), "CMD ")
    return yaml.safe_load(cmd)


def unit_exec_start(unit: str) -> list[str]:
    """A systemd unit's ``ExecStart``, as an argument list."""
    (command,) = _instructions((SYSTEMD / unit).read_text(), "ExecStart=")
    return shlex.split(command)


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
