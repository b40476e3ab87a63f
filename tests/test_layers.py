"""The architecture's one-way arrows, checked on the source: a forbidden import fails here.

- `repositories/` imports nothing from `gateway/`.
- The metadata store (`gateway/store/`, each capability's store) imports no HTTP: no aiohttp, no `gateway.http`.
- `gateway/http/` (the kit every capability shares) imports no capability package.
- Only the composers (app factory, CLI, server process) import capabilities, and nothing below them imports a
  composer; the UI is known to the app factory alone.
- Capability packages do not import each other; the UI may read their stores and helpers, never their handlers.
- The core modules at `gateway/`'s top level (settings, logs, metrics, memory, locations) import no capability.

Imports under `if TYPE_CHECKING:` are annotations only and not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CAPABILITIES = ("artifacts", "tracking", "auth", "ui", "registry", "traces", "import_mlflow", "gc")
COMPOSERS = {"gateway.app", "gateway.cli", "gateway.server", "gateway.__main__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(path: Path) -> set[str]:
    """Every module `path` imports when it runs (a `from a import b` counts as `a` and `a.b`)."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _type_checking_only(node):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    visit([child for child in children if isinstance(child, ast.stmt | ast.ExceptHandler)])  # type: ignore[misc]

    visit(ast.parse(path.read_text()).body)
    return found


def sources() -> list[Path]:
    return sorted(p for folder in ("gateway", "repositories") for p in (ROOT / folder).rglob("*.py"))


def capability_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "gateway" and parts[1] in CAPABILITIES else None


def is_store(module: str) -> bool:
    parts = module.split(".")
    return module.startswith("gateway.store") or (len(parts) > 2 and parts[2] == "store")


def is_handler(module: str) -> bool:
    last = module.split(".")[-1]
    return last == "api" or last.endswith("_api") or last == "run_artifacts"


def violations(module: str, imported: str) -> list[str]:
    """What is wrong with `module` importing `imported` (empty when allowed)."""
    target = capability_of(imported)
    wrong = []
    if module.startswith("repositories") and imported.startswith("gateway"):
        wrong.append("repositories/ must not import gateway/")
    if is_store(module) and (imported.startswith("aiohttp") or imported.startswith("gateway.http")):
        wrong.append("the store must not import HTTP")
    if module.startswith("gateway.http") and target is not None:
        wrong.append("gateway/http must not import a capability package")
    if target == "ui" and capability_of(module) != "ui" and module != "gateway.app":
        wrong.append("only the app factory knows the UI")
    source = capability_of(module)
    if source is not None and target not in (None, source) and (source != "ui" or is_handler(imported)):
        wrong.append(f"gateway/{source} must not import gateway/{target}")
    if (module.startswith(("gateway.http", "gateway.store")) or source is not None) and imported in COMPOSERS:
        wrong.append("only a composer (CLI, server, app factory) may import a composer")
    if source is None and target is not None and module not in COMPOSERS and not module.startswith("gateway.http"):
        wrong.append("core modules must not import a capability package")
    return wrong


def test_every_import_follows_the_arrows() -> None:
    problems = [
        f"{module} imports {imported}: {reason}"
        for path in sources()
        for module in [module_name(path)]
        for imported in sorted(runtime_imports(path))
        for reason in violations(module, imported)
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("repositories.local", "gateway.settings"),
        ("gateway.tracking.store.runs", "aiohttp.web"),
        ("gateway.store.database", "gateway.http.errors"),
        ("gateway.http.meta_api", "gateway.artifacts.api"),
        ("gateway.tracking.api", "gateway.ui.rendering"),
        ("gateway.artifacts.api", "gateway.tracking.api"),
        ("gateway.artifacts.run_artifacts", "gateway.tracking.store"),
        ("gateway.ui.tracking_pages", "gateway.tracking.api"),
        ("gateway.locations", "gateway.artifacts.downloads"),
        ("gateway.auth.commands", "gateway.server"),
    ],
)
def test_a_forbidden_import_is_caught(module: str, imported: str) -> None:
    assert violations(module, imported) != []


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("gateway.app", "gateway.ui"),
        ("gateway.ui.tracking_pages", "gateway.tracking.store"),
        ("gateway.artifacts.api", "gateway.http.errors"),
        ("gateway.tracking.store.runs", "gateway.store.errors"),
    ],
)
def test_an_allowed_import_passes(module: str, imported: str) -> None:
    assert violations(module, imported) == []
