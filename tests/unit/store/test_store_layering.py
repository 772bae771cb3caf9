"""store/ depends on domain/, never the other way round: no import cycle, TYPE_CHECKING imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import pixport

ROOT = Path(pixport.__file__).parent


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("pixport.")}


def _module(path: Path) -> str:
    return "pixport." + ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_no_cycle_between_domain_and_store() -> None:
    graph = {_module(path): _imports(path) for path in ROOT.rglob("*.py") if "v1" not in path.parts}
    store_to_domain = {
        (store, domain) for store, targets in graph.items() if store.startswith("pixport.store.")
        for domain in targets if domain.startswith("pixport.domain.")
    }
    cycles = sorted(
        (store, domain) for store, domain in store_to_domain
        if any(target.startswith("pixport.store") for target in graph.get(domain, ()))
    )
    assert cycles == []


def test_the_store_imports_no_domain_module_that_imports_the_store() -> None:
    for name in ("sharinpix", "webhooks", "queue", "jobs", "duplicates", "blob_records", "records", "states"):
        imported = _imports(ROOT / "domain" / f"{name}.py")
        assert not {module for module in imported if module.startswith("pixport.store")}, name
