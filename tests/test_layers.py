"""The layering rule of DESIGN.md, enforced: a module imports only from layers above it.

Ranks (lower = higher up): model/errors/config, io, decode, flow | proto, analysis, frames,
export | plot | report | parallel, api, cli | render. Siblings on one rank do not import each other.
Imports under ``if TYPE_CHECKING:`` carry no runtime dependency and are exempt.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "pcapan"

RANK = {
    "model": 0,
    "errors": 0,
    "config": 0,
    "_build": 0,
    "io": 1,
    "decode": 2,
    "flow": 3,
    "proto": 3,
    "analysis": 4,
    "frames": 5,
    "export": 6,
    "plot": 6,
    "report": 6,
    # Runs the shards of one analysis (processes, Dask) for the api, which says what a shard is.
    "parallel": 6,
    "api": 7,
    "live": 7,
    "render": 7,
    "cli": 8,
    "__main__": 9,
}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, type_only: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_only)
            return
        if not type_only:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((node.module, node.lineno))
                if node.module == "pcapan":
                    found.extend((f"pcapan.{a.name}", node.lineno) for a in node.names)
            elif isinstance(node, ast.Import):
                found.extend((a.name, node.lineno) for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child, type_only)

    visit(tree, False)
    return found


def test_every_module_has_a_layer() -> None:
    layers = {p.relative_to(PKG).parts[0].removesuffix(".py") for p in PKG.rglob("*.py")}
    layers.discard("__init__")
    assert layers <= set(RANK), f"modules without a layer rank: {layers - set(RANK)}"


def test_imports_respect_layers() -> None:
    bad: list[str] = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts == ("__init__.py",):
            continue
        mine = rel.parts[0].removesuffix(".py")
        for module, line in _imports(ast.parse(path.read_text())):
            if not module.startswith("pcapan.") or module == "pcapan":
                continue
            theirs = _layer(module)
            if theirs == mine or theirs not in RANK:
                continue
            if RANK[theirs] >= RANK[mine]:
                bad.append(
                    f"{rel}:{line} ({mine}, rank {RANK[mine]}) imports {module} (rank {RANK[theirs]})"
                )
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_import_is_light() -> None:
    # `import pcapan` and `pcapan --help` must not pull in pandas, matplotlib or scapy.
    import subprocess
    import sys

    code = "import sys, pcapan, pcapan.cli; print(','.join(m for m in ('pandas','matplotlib','scapy') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
