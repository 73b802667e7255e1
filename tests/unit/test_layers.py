"""The house's rule: imports point down the layers, and no modules import each other in a loop.

Every import of every module is read with ``ast`` -- at the top, inside
functions and under ``TYPE_CHECKING`` alike -- and resolved to a module of
ours.  Each module belongs to the first layer in :data:`LAYERS` whose
prefix it starts with; a module may import its own layer and the layers
below it, never one above.  The allowed direction is written once, here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("channels_socketio", "monitoring", "security", "chat", "chatsite")

#: Lowest first.  A module may import modules of its own layer or of a layer listed before it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # the engine: a Socket.IO server for Channels that knows nothing of the chat
    ("engine: errors and observer", ("channels_socketio", "channels_socketio.errors", "channels_socketio.observer")),
    ("engine: wire codec", ("channels_socketio.wire",)),
    ("engine: transports", ("channels_socketio.transport",)),
    ("engine: protocol core", ("channels_socketio.protocol",)),
    ("engine: conformance application", ("channels_socketio.conformance", "channels_socketio.conformance_app", "channels_socketio.tests")),
    # services the chat uses, which never use the chat
    ("monitoring", ("monitoring",)),
    ("security", ("security",)),
    # the chat application
    ("chat: vocabulary", ("chat", "chat.errors", "chat.ids", "chat.event_names")),
    ("chat: models", ("chat.models", "chat.parlant.models", "chat.migrations", "chat.parlant.migrations", "chat.apps")),
    ("chat: services", ("chat.services", "chat.auth", "chat.shapes", "chat.notify", "chat.writer")),
    ("chat: actions", ("chat.actions",)),
    ("chat: agents", ("chat.agents",)),
    ("chat: surfaces", ("chat.events", "chat.api", "chat.parlant", "chat.admin", "chat.web", "chat.management")),
    # the composition root
    ("site", ("chatsite",)),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            modules[module_name(path)] = path
    return modules


MODULES = our_modules()


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    if rank < 0:
        raise AssertionError(f"{module} belongs to no layer: add its prefix to LAYERS")
    return rank


def imports_of(module: str, path: Path) -> set[str]:
    """The modules of ours that ``module`` imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from a import b`` imports a.b when b is a module, else a name of a.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


GRAPH = {module: imports_of(module, path) for module, path in MODULES.items()}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    mine = layer_of(module)
    upward = sorted(
        f"{target} ({LAYERS[layer_of(target)][0]})" for target in GRAPH[module] if layer_of(target) > mine
    )
    assert not upward, f"{module} ({LAYERS[mine][0]}) imports a higher layer: {', '.join(upward)}"


#: The chat's surfaces are siblings: each adapts the actions to one kind of client, none builds on another.
SURFACES = ("chat.events", "chat.api", "chat.parlant", "chat.admin", "chat.web", "chat.management")


def surface_of(module: str) -> str | None:
    return next((s for s in SURFACES if module == s or module.startswith(s + ".")), None)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if surface_of(m)))
def test_surfaces_do_not_import_each_other(module):
    mine = surface_of(module)
    others = sorted(target for target in GRAPH[module] if surface_of(target) not in (None, mine))
    assert not others, f"{module} ({mine}) imports another surface: {', '.join(others)}"


def test_no_import_loops():
    """Tarjan's strongly connected components over the whole graph: every one must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert not loops, "modules that import each other in a loop: " + "; ".join(" <-> ".join(c) for c in loops)


def test_the_engine_imports_nothing_of_the_application():
    """The engine could be published alone: it imports no package of ours but itself."""
    engine = [module for module in MODULES if module.startswith("channels_socketio")]
    outside = {
        f"{module} -> {target}" for module in engine for target in GRAPH[module] if not target.startswith("channels_socketio")
    }
    assert not outside
