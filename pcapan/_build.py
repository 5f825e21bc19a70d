"""Which build is running: the Cython-compiled core or the pure-Python one (same source).

The modules in :data:`COMPILED` are plain Python, each with an augmenting ``.pxd`` beside it
that declares C types for Cython (pure-Python mode): ``pip install -e .`` compiles them when
Cython and a C compiler are there (``setup.py``) and otherwise installs the package as it is.
Both builds give identical tables (tests/test_build.py).

A compiled module shadows its ``.py`` (Python prefers extension modules), so an edited source
with a stale build would silently run old code: ``setup.py`` records each source's SHA-256 in
``_compiled.json``, and when a source no longer matches, or ``PCAPAN_PURE=1`` is set, the
package imports every module from source (:func:`use_source`).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

# Modules compiled by setup.py, as paths relative to the repository root.
COMPILED = (
    "pcapan/flow/reassembly.py",
    "pcapan/flow/conn.py",
    "pcapan/analysis/bulk_runs.py",
    "pcapan/analysis/packet_loop.py",
    "pcapan/proto/http1.py",
    "pcapan/analysis/http.py",
    "pcapan/proto/tls.py",
    "pcapan/analysis/tls.py",
    "pcapan/proto/tls_decrypt.py",
)
# Written by setup.py next to this file: {"cython": version, "sources": {path: sha256}}.
RECORD = "_compiled.json"
_PKG = Path(__file__).resolve().parent

_state: dict[str, Any] = {"forced_pure": None}


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _SourceOnly:
    """A meta-path finder that loads ``pcapan.*`` modules from ``.py`` files only."""

    @classmethod
    def find_spec(
        cls, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("pcapan.") or not path:
            return None
        for entry in path:
            finder = importlib.machinery.FileFinder(
                entry, (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
            )
            spec = finder.find_spec(fullname)
            if spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader):
                return spec
        return None


def use_source(reason: str) -> None:
    """Import every pcapan module from now on from its source (before any compiled one is)."""
    if _state["forced_pure"] is None:
        _state["forced_pure"] = reason
        sys.meta_path.insert(0, _SourceOnly)


def _stale() -> str | None:
    """Why the compiled modules cannot be used (a source changed since the build), or None."""
    try:
        record = json.loads((_PKG / RECORD).read_text())
    except (OSError, ValueError):
        return None  # no record: no compiled build (or an installed wheel without sources)
    root = _PKG.parent
    sources = record.get("sources", {})
    for rel, digest in sources.items():
        src = root / rel
        if src.exists() and source_digest(src) != digest:
            return f"{rel} changed since it was compiled (rebuild: pip install -e .)"
    # An extension module left from an earlier build with another module list would shadow its
    # source unchecked (the record only lists this build's).
    for ext in _PKG.rglob("*.so"):
        rel = ext.relative_to(root).as_posix().split(".", 1)[0] + ".py"
        if rel not in sources:
            return f"{rel} has a compiled module from another build (remove {ext.name})"
    return None


def select() -> None:
    """Called once by ``pcapan/__init__``: decide between the compiled and the source modules."""
    if os.environ.get("PCAPAN_PURE", "") not in ("", "0"):
        use_source("PCAPAN_PURE is set")
        return
    stale = _stale()
    if stale:
        use_source(stale)


def compiled_modules() -> list[str]:
    """The modules of :data:`COMPILED` that run compiled in this process."""
    out = []
    for rel in COMPILED:
        name = module_name(rel)
        mod = sys.modules.get(name)
        if mod is None:
            if _state["forced_pure"] is not None:
                continue
            spec = importlib.util.find_spec(name)
            origin = spec.origin if spec is not None else None
        else:
            origin = getattr(mod, "__file__", None)
        if origin and not origin.endswith(".py"):
            out.append(name)
    return out


def describe() -> str:
    """One line for ``pcapan --version`` and the benchmark: which build runs, and why."""
    done = compiled_modules()
    if len(done) == len(COMPILED):
        try:
            cy = json.loads((_PKG / RECORD).read_text()).get("cython", "?")
        except (OSError, ValueError):
            cy = "?"
        return f"compiled core: Cython {cy}, {len(done)} modules"
    why = _state["forced_pure"] or "no compiled modules were built (no Cython or no C compiler)"
    if done:
        return f"partly compiled ({len(done)} of {len(COMPILED)} modules): {why}"
    return f"pure Python: {why}"
