"""Build the compiled core (Cython, pure-Python mode) when possible; else install the source.

The metadata lives in pyproject.toml; this file only adds the optional C extensions. The
modules listed in ``pcapan/_build.py`` (COMPILED) are ordinary Python with an augmenting
``.pxd`` each. Without Cython or a working C compiler, or with ``PCAPAN_PURE_BUILD=1``, the
package installs as pure Python and says so (``pcapan --version``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
RECORD = ROOT / "pcapan" / "_compiled.json"


def _build_module():
    # pcapan/_build.py by path: importing the package would run its import-time selection.
    spec = importlib.util.spec_from_file_location("_pcapan_build", ROOT / "pcapan" / "_build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


COMPILED = _build_module().COMPILED
DIRECTIVES = {
    "language_level": 3,
    # The .py annotations are for mypy (int is a Python int there); C types come from the .pxd.
    "annotation_typing": False,
    # Hostile bytes go through these modules: keep Python's checked indexing and semantics.
    "boundscheck": True,
    "wraparound": True,
    "cdivision": False,
}


def _say(msg: str) -> None:
    sys.stderr.write(f"pcapan build: {msg}\n")


def _extensions() -> list:
    RECORD.unlink(missing_ok=True)
    if os.environ.get("PCAPAN_PURE_BUILD", "") not in ("", "0"):
        _say("PCAPAN_PURE_BUILD is set: pure-Python build")
        return []
    try:
        import Cython
        from Cython.Build import cythonize
    except ImportError:
        _say("Cython is not available: pure-Python build")
        return []
    try:
        exts = cythonize(list(COMPILED), compiler_directives=DIRECTIVES, quiet=True)
    except Exception as exc:  # noqa: BLE001 - a module Cython rejects: install the source
        _say(f"Cython failed ({exc.__class__.__name__}: {exc}): pure-Python build")
        return []
    _write_record(Cython.__version__)
    return exts


def _write_record(cython_version: str) -> None:
    sources = {p: hashlib.sha256((ROOT / p).read_bytes()).hexdigest() for p in COMPILED}
    RECORD.write_text(json.dumps({"cython": cython_version, "sources": sources}, indent=1) + "\n")


class OptionalBuildExt(build_ext):
    """build_ext that falls back to the pure-Python package when compiling fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure means: use the source
            self._fallback(exc)

    def build_extension(self, ext) -> None:  # noqa: ANN001
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._fallback(exc)

    def _fallback(self, exc: Exception) -> None:
        _say(f"compiling failed ({exc.__class__.__name__}: {exc}): pure-Python build")
        RECORD.unlink(missing_ok=True)


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
