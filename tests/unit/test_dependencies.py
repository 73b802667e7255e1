"""Every package the server imports at run time is declared in ``[project] dependencies``.

Production installs the wheel without extras (``docs/deployment.md``,
*Install*), so a runtime module that imports a package only the ``[test]``
extra provides -- or that nothing provides -- breaks the deployed server and
no other unit test would notice (the test environment has every extra).

The check reads the source, it does not import it: every module of the
packages the wheel carries (pyproject's ``[tool.setuptools.packages.find]``)
is parsed with :mod:`ast`, and every import counts, wherever it is -- at the
top, inside a function, behind a ``try`` -- as do the dotted paths Django
imports for us (``INSTALLED_APPS``, backends, middleware: string constants
naming an installed package) and ``import_module("...")`` calls with a
literal.  Each top-level name is then the standard library, one of our own
packages, or a distribution (``importlib.metadata.packages_distributions``),
and a distribution must be

- **installed without extras**: in the closure of ``dependencies`` and their
  own requirements (markers evaluated here, with the extras a requirement
  asks for, as pip would); and
- **declared directly**: a package our code imports is ours to declare, not
  one to inherit from another package's requirements, which may drop it.

``tests/integration/test_packaging.py`` proves the same by installing the
wheel into a fresh virtualenv and running the production server.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: Our own distribution (installed editable in the test environment): first-party, not a dependency.
OWN_DISTRIBUTION = canonicalize_name(PYPROJECT["project"]["name"])
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_IMPORT_FUNCTIONS = {"import_module", "__import__"}


@dataclass(frozen=True)
class Use:
    """A top-level module name the code needs, and where."""

    name: str
    where: str


# --- what the code imports --------------------------------------------------------------------


def runtime_packages() -> list[str]:
    """The top-level packages the wheel carries."""
    return sorted({package.partition(".")[0] for package in wheel_packages()})


def wheel_packages() -> list[str]:
    """Every package the wheel carries: ``packages.find``'s ``include`` less its ``exclude``, as setuptools matches them."""
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    include, exclude = find["include"], find.get("exclude", [])
    found = []
    tops = [path for path in ROOT.iterdir() if (path / "__init__.py").is_file()]  # not .venv, node_modules...
    for init in sorted(init for top in tops for init in top.rglob("__init__.py")):
        name = ".".join(init.parent.relative_to(ROOT).parts)
        if any(fnmatch.fnmatch(name, pattern) for pattern in include) and not any(
            fnmatch.fnmatch(name, pattern) for pattern in exclude
        ):
            found.append(name)
    return found


@cache
def import_names() -> dict[str, list[str]]:
    """Top-level import name -> the installed distributions providing it (canonical names)."""
    return {
        name: sorted({canonicalize_name(dist) for dist in dists})
        for name, dists in metadata.packages_distributions().items()
    }


def uses_in_source(source: str, where: str) -> Iterator[Use]:
    """Every top-level module ``source`` imports or names for Django to import."""
    known = import_names()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Use(alias.name.partition(".")[0], f"{where}:{node.lineno}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield Use(node.module.partition(".")[0], f"{where}:{node.lineno}")
        elif isinstance(node, ast.Call) and _called_name(node.func) in _IMPORT_FUNCTIONS and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield Use(first.value.partition(".")[0], f"{where}:{node.lineno}")
        elif isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "INSTALLED_APPS" for target in node.targets
        ):
            for element in getattr(node.value, "elts", []):
                if isinstance(element, ast.Constant) and isinstance(element.value, str):
                    yield Use(element.value.partition(".")[0], f"{where}:{element.lineno}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _DOTTED.fullmatch(node.value):
            # "channels_redis.core.RedisChannelLayer": Django imports it from the settings.
            top = node.value.partition(".")[0]
            if top in known and top not in sys.stdlib_module_names:
                yield Use(top, f"{where}:{node.lineno}")


def _called_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def runtime_uses() -> list[Use]:
    uses = []
    for package in wheel_packages():
        for path in sorted((ROOT / package.replace(".", "/")).glob("*.py")):
            where = str(path.relative_to(ROOT))
            uses.extend(uses_in_source(path.read_text(encoding="utf-8"), where))
    return uses


# --- what production installs -----------------------------------------------------------------


def declared() -> list[Requirement]:
    return [Requirement(line) for line in PYPROJECT["project"]["dependencies"]]


def installed_closure(requirements: Iterable[Requirement]) -> set[str]:
    """Every distribution pip installs for ``requirements`` (no extras of ours), as canonical names."""
    found: set[str] = set()
    pending = [(requirement, {""}) for requirement in requirements]
    while pending:
        requirement, context_extras = pending.pop()
        if requirement.marker and not any(requirement.marker.evaluate({"extra": e}) for e in context_extras):
            continue
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:  # not installed on this platform: provides nothing here
            continue
        extras = {""} | {canonicalize_name(extra) for extra in requirement.extras}
        pending.extend((Requirement(line), extras) for line in requires)
    return found


def problems(uses: Iterable[Use], requirements: list[Requirement]) -> list[str]:
    """One line per module the code needs that a plain ``pip install .`` would not give it."""
    first_party = set(runtime_packages())
    closure = installed_closure(requirements)
    direct = {canonicalize_name(requirement.name) for requirement in requirements}
    reported: set[str] = set()
    lines = []
    for use in uses:
        if use.name in reported or use.name in first_party or use.name in sys.stdlib_module_names:
            continue
        if use.name == "__future__":
            continue
        providers = [dist for dist in import_names().get(use.name, []) if dist != OWN_DISTRIBUTION]
        if not providers:
            problem = "no installed distribution provides it"
        elif not closure.intersection(providers):
            problem = f"{'/'.join(providers)} is not installed without extras: add it to [project] dependencies"
        elif not direct.intersection(providers):
            problem = (
                f"{'/'.join(providers)} only arrives as another package's requirement: "
                "declare it in [project] dependencies"
            )
        else:
            continue
        reported.add(use.name)
        lines.append(f"{use.where}: imports {use.name!r}, but {problem}")
    return lines


# --- the tests --------------------------------------------------------------------------------


def test_every_runtime_import_is_a_declared_dependency():
    found = problems(runtime_uses(), declared())
    assert not found, "\n".join(found)


def test_the_runtime_packages_are_the_ones_the_wheel_carries():
    assert {"channels_socketio", "chat", "chatsite", "security", "monitoring"} <= set(runtime_packages())
    packages = wheel_packages()
    assert {"chat.api", "chat.migrations", "channels_socketio.transport"} <= set(packages)
    assert not [name for name in packages if name == "tests" or ".tests" in name], "tests are not shipped"


def test_imports_are_found_anywhere_in_a_module():
    source = """
import json
from django.db import models
def deferred():
    import aiohttp
try:
    from redis.exceptions import RedisError
except ImportError:
    RedisError = OSError
INSTALLED_APPS = ["daphne", "chat.parlant"]
LAYER = {"BACKEND": "channels_redis.core.RedisChannelLayer"}
plugin = importlib.import_module("nh3")
"""
    names = {use.name for use in uses_in_source(source, "example.py")}
    assert names == {"json", "django", "aiohttp", "redis", "daphne", "chat", "channels_redis", "nh3"}


def test_an_import_only_an_extra_provides_is_reported():
    """What the check said of chat/agents/backends/openai.py before aiohttp was declared."""
    uses = [Use("aiohttp", "chat/agents/backends/openai.py:53"), Use("django", "chat/models.py:1")]
    (line,) = problems(uses, [Requirement("Django>=5.2")])
    assert line.startswith("chat/agents/backends/openai.py:53: imports 'aiohttp'") and "without extras" in line


def test_a_package_that_only_arrives_transitively_is_reported():
    """redis comes with channels-redis, but the code uses it itself: it must be declared."""
    uses = [Use("redis", "security/ratelimit.py:288")]
    assert problems(uses, [Requirement("channels-redis>=4.3")]) == [
        "security/ratelimit.py:288: imports 'redis', but redis only arrives as another package's requirement: "
        "declare it in [project] dependencies"
    ]
    assert problems(uses, [Requirement("channels-redis>=4.3"), Requirement("redis>=5")]) == []


def test_an_import_nothing_provides_is_reported():
    (line,) = problems([Use("surely_not_installed_anywhere", "chat/x.py:1")], declared())
    assert "no installed distribution provides it" in line


def test_extras_of_a_requirement_count_and_markers_are_evaluated():
    closure = installed_closure([Requirement("uvicorn[standard]>=0.54")])
    assert {"uvicorn", "websockets", "httptools"} <= closure
    assert "websockets" not in installed_closure([Requirement("uvicorn>=0.54")])
