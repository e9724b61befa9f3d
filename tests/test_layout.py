"""The layout keeps the architecture visible: one package per sync, dependencies pointing one way.

Read from the code's own imports (statically, so a lazy import counts too), these tests fail when
a module starts importing a layer above it, when a sync's pure translation starts doing I/O, when
a sync module is named after a sync instead of living in its package, when a flow file imports a
sibling through ``sys.path`` again, or when the README's layout section stops naming a folder.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "stokline"
SYNCS = ("orders", "stock", "catalogue", "fulfilment", "finance")
FINANCE_STEPS = ("payments", "ledger", "payouts")

# What each part of the package may import of the others (itself always). The order is the
# layering: the command and the stack on top, then the flows' Prefect glue, operations and the
# receiver, the syncs, and under them the pure mapping vocabulary, the clients and the store, all
# on the mapping-file models of `config`.
ALLOWED: dict[str, set[str]] = {
    "cli": {
        "(root)",
        "audit",
        "config",
        "connectors",
        "envfile",
        "ops",
        "sandbox",
        "stack",
        "store",
        "sync",
        "webhooks",
    },
    "stack": {"config", "envfile", "ops", "webhooks"},
    # The audit reads with the syncs' readers and judges with their rules; it writes nothing.
    "audit": {"config", "connectors", "mapping", "store", "sync"},
    "orchestration": {"config", "connectors", "ops", "store", "sync"},
    "ops": {"config", "store"},
    # The receiver's package also keeps the store's subscriptions to it (SHOPLINE's client).
    "webhooks": {"config", "connectors", "store"},
    "sync": {"config", "connectors", "mapping", "store"},
    "mapping": {"config"},
    "connectors": set(),
    "store": set(),
    "config": set(),
    "sandbox": set(),
    "envfile": set(),
    "__main__": {"cli"},
    "(root)": set(),
}
# Modules of `stokline.sync` that every sync shares: they sit below the sync packages.
SHARED_SYNC_MODULES = ("run", "report", "guards", "clients", "followers")
# Pure translations: no I/O, importable and testable without a client, a store or Prefect.
PURE = [
    "stokline.mapping.translate",
    "stokline.mapping.money",
    "stokline.sync.orders.translate",
    "stokline.sync.orders.identity",
    "stokline.sync.stock.translate",
    "stokline.sync.catalogue.translate",
    "stokline.sync.fulfilment.translate",
    "stokline.sync.finance.payments.translate",
    "stokline.sync.finance.ledger.translate",
]
IO_MODULES = (
    "httpx",
    "prefect",
    "sqlalchemy",
    "stokline.store",
    "stokline.connectors.shopline.client",
    "stokline.connectors.stokly.client",
    "stokline.connectors._http",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT / "src").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stokline_imports(path: Path) -> set[str]:
    """Every ``stokline...`` module a file imports, at module level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name == "stokline" or name.startswith("stokline."))
    return found


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_part_of_the_package_is_in_the_layering() -> None:
    parts = {part_of(module_name(path)) for path in SOURCES}
    assert parts <= set(ALLOWED), f"add {sorted(parts - set(ALLOWED))} to ALLOWED, in its layer"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_only(path: Path) -> None:
    here = part_of(module_name(path))
    upward = {
        target
        for target in stokline_imports(path)
        if part_of(target) != here and part_of(target) not in ALLOWED[here]
    }
    assert not upward, f"{module_name(path)} imports {sorted(upward)}, above or beside its layer"


def test_what_the_syncs_share_imports_no_sync() -> None:
    for name in SHARED_SYNC_MODULES:
        path = PACKAGE / "sync" / f"{name}.py"
        into = {
            target
            for target in stokline_imports(path)
            if target.split(".")[2:3] and target.split(".")[2] in SYNCS
        }
        assert not into, f"stokline.sync.{name} is shared by every sync but imports {sorted(into)}"


def test_one_package_per_sync_and_no_module_named_after_a_sync() -> None:
    sync = PACKAGE / "sync"
    for name in SYNCS:
        assert (sync / name / "__init__.py").is_file(), f"stokline.sync.{name} is no package"
    for step in FINANCE_STEPS:
        assert (sync / "finance" / step / "__init__.py").is_file()
    prefixes = tuple(f"{name}_" for name in (*SYNCS, *FINANCE_STEPS))
    named = [str(p.relative_to(PACKAGE)) for p in SOURCES if p.stem.startswith(prefixes)]
    assert not named, f"modules named after a sync instead of living in its package: {named}"
    loose = sorted(
        p.stem for p in sync.glob("*.py") if p.stem not in {"__init__", *SHARED_SYNC_MODULES}
    )
    assert not loose, f"modules of one sync at the top of stokline.sync: {loose}"


def test_pure_translations_import_nothing_that_does_io() -> None:
    # A fresh interpreter, so that what the suite imported already does not hide an import.
    script = (
        "import importlib, json, sys\n"
        f"for name in {PURE!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    loaded = json.loads(done.stdout)
    io = sorted(m for m in loaded if m.startswith(IO_MODULES))
    assert not io, f"the pure translations bring in I/O modules: {io[:10]}"


FLOWS = sorted((ROOT / "flows").glob("*.py"))


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: p.name)
def test_flow_files_import_nothing_through_sys_path(path: Path) -> None:
    siblings = {p.stem for p in FLOWS}
    plain = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            plain.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            plain.update(alias.name.split(".")[0] for alias in node.names)
    assert not plain & siblings, f"{path.name} imports {sorted(plain & siblings)} by plain name"
    assert not path.stem.startswith("_"), "shared flow glue belongs in stokline.orchestration"


def readme_layout() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```text\n(.*?)```", section, re.S)
    assert block, "the README's Layout section has no ```text block"
    return block.group(1)


def test_the_readme_layout_names_every_package_and_flow_file() -> None:
    layout = readme_layout()
    words = set(re.findall(r"[\w.]+/?", layout))
    packages = sorted(str(p.parent.relative_to(PACKAGE)) for p in PACKAGE.rglob("__init__.py"))
    # A package is named by its last folder ("orders/"), nested under its parent in the block.
    missing = [p for p in packages if p != "." and f"{Path(p).name}/" not in words]
    missing += [p.name for p in FLOWS if p.name not in words]
    assert not missing, f"the README's Layout section does not name: {missing}"
