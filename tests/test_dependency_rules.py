"""The dependency rules of DESIGN.md ("Layout"), read from the imports of every project module.

Imports are parsed with `ast`, not grepped: `from . import x`, `from messaging import delivery`,
imports inside functions or under TYPE_CHECKING, and `importlib.import_module("...")` with a
literal name all count. Each failure lists the offending file:line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRS = {".venv", "venv", "node_modules", "var", "static", "templates", "__pycache__"}
FIRST_PARTY = {"messaging", "notifications", "imsproject"}
# The face that messaging shows to notifications (DESIGN.md, Layout).
MESSAGING_FOR_NOTIFICATIONS = ("messaging.api", "messaging.models", "messaging.signals", "messaging.errors")
# Where the channel layer may be touched: the one module for it, and the project around the apps.
CHANNEL_LAYER_MODULE = "messaging/delivery.py"
CHANNEL_LAYER_FREE_ZONES = ("imsproject/", "tests/", "bench/")


@dataclass(frozen=True)
class Import:
    path: str  # relative to the project root, with "/"
    line: int
    target: str  # the absolute dotted name imported: "messaging.api.send_message"

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.target}"


def module_name(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: str, source: str) -> list[Import]:
    """Every import of one module, each as the absolute dotted name it reaches."""
    tree = ast.parse(source, filename=path)
    package = module_name(path) if path.endswith("__init__.py") else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(path, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found += [
                Import(path, node.lineno, base if alias.name == "*" else f"{base}.{alias.name}".lstrip("."))
                for alias in node.names
            ]
        elif (
            isinstance(node, ast.Call)
            and _called_name(node.func) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(Import(path, node.lineno, node.args[0].value))
    return found


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def within(target: str, *modules: str) -> bool:
    """True when `target` is one of `modules` or something inside one of them."""
    return any(target == module or target.startswith(f"{module}.") for module in modules)


@cache
def project_files() -> dict[str, str]:
    """The project's own .py files (relative path -> source)."""
    files = {}
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if any(part in SKIPPED_DIRS or part.startswith(".") for part in relative.parts[:-1]):
            continue
        files[relative.as_posix()] = path.read_text(encoding="utf-8")
    return files


def files_under(*prefixes: str) -> Iterator[tuple[str, str]]:
    for path, source in project_files().items():
        if path.startswith(prefixes):
            yield path, source


def offending(imports: list[Import] | list[str]) -> str:
    return "\n  " + "\n  ".join(str(found) for found in imports)


# --- the reader itself --------------------------------------------------------------------


def test_the_import_reader_sees_relative_from_nested_and_dynamic_imports():
    source = (
        "import channels.layers as layers\n"
        "from . import delivery\n"
        "from ..services.stream import stream_append\n"
        "from messaging.models import User, StreamItem\n"
        "def f():\n"
        "    from notifications import tasks\n"
        "    importlib.import_module('notifications.providers')\n"
    )
    targets = [found.target for found in imports_of("messaging/selectors/stream.py", source)]
    assert sorted(targets) == sorted(
        [
            "channels.layers",
            "messaging.selectors.delivery",
            "messaging.services.stream.stream_append",
            "messaging.models.User",
            "messaging.models.StreamItem",
            "notifications.tasks",
            "notifications.providers",
        ]
    )
    assert [found.target for found in imports_of("messaging/__init__.py", "from .api import x")] == [
        "messaging.api.x"
    ]


def test_the_rules_read_the_project_itself():
    files = project_files()
    assert "messaging/session.py" in files
    assert CHANNEL_LAYER_MODULE in files
    assert not any(path.startswith(".venv/") for path in files)
    assert sum(path.startswith("messaging/") for path in files) > 10


# --- the rules ------------------------------------------------------------------------------


def test_messaging_never_imports_notifications():
    bad = [
        found
        for path, source in files_under("messaging/")
        for found in imports_of(path, source)
        if within(found.target, "notifications")
    ]
    assert not bad, "messaging must offer a signal or hook instead:" + offending(bad)


def test_notifications_imports_only_the_public_face_of_messaging():
    bad = [
        found
        for path, source in files_under("notifications/")
        for found in imports_of(path, source)
        if within(found.target, "messaging") and not within(found.target, *MESSAGING_FOR_NOTIFICATIONS)
    ]
    assert not bad, f"notifications may import only {', '.join(MESSAGING_FOR_NOTIFICATIONS)}:" + offending(
        bad
    )


def channel_layer_uses(path: str, source: str) -> list[str]:
    """Imports of channels.layers / channels_redis, and any use of get_channel_layer or of a
    consumer's `.channel_layer`."""
    uses = [
        str(found)
        for found in imports_of(path, source)
        if within(found.target, "channels.layers", "channels_redis")
    ]
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Name) and node.id == "get_channel_layer":
            uses.append(f"{path}:{node.lineno} uses get_channel_layer")
        elif isinstance(node, ast.Attribute) and node.attr in {"get_channel_layer", "channel_layer"}:
            uses.append(f"{path}:{node.lineno} uses .{node.attr}")
    return uses


def test_only_delivery_touches_the_channel_layer():
    bad = [
        use
        for path, source in project_files().items()
        if path != CHANNEL_LAYER_MODULE and not path.startswith(CHANNEL_LAYER_FREE_ZONES)
        for use in channel_layer_uses(path, source)
    ]
    assert not bad, f"only {CHANNEL_LAYER_MODULE} talks to the channel layer:" + offending(bad)


def test_the_rule_for_the_channel_layer_sees_delivery_use_it():
    assert channel_layer_uses(CHANNEL_LAYER_MODULE, project_files()[CHANNEL_LAYER_MODULE])


def is_selector_module(path: str) -> bool:
    app, _, rest = path.partition("/")
    return app in {"messaging", "notifications"} and rest.startswith("selectors")


def test_selectors_never_import_services():
    selectors = [(path, source) for path, source in project_files().items() if is_selector_module(path)]
    assert selectors, "no selectors found: did they move? Update this rule."
    bad = [
        found
        for path, source in selectors
        for found in imports_of(path, source)
        if found.target.split(".")[0] in FIRST_PARTY and "services" in found.target.split(".")
    ]
    assert not bad, "reads live in selectors and never reach for writes:" + offending(bad)


def test_the_session_imports_nothing_from_channels():
    path = "messaging/session.py"
    bad = [
        found
        for found in imports_of(path, project_files()[path])
        if within(found.target, "channels", "channels_redis")
    ]
    assert not bad, "the session is plain Python that tests drive without a socket:" + offending(bad)
