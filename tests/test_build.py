"""The compiled core (Cython, pure-Python mode) and the pure-Python build give identical tables.

Each build runs in its own process (``PCAPAN_PURE=1`` makes pcapan import every module from
source even where a compiled one exists) over every sample and corpus capture, and every table
of every result must be equal. CI sets ``PCAPAN_REQUIRE_COMPILED=1``, so there the compiled side
really is compiled (on a machine without a compiler the comparison has nothing to compare).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pcapan import _build

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
CORPUS = ROOT.parent / "shared" / "corpus"

_DRIVER = r"""
import pickle, sys, warnings
from pathlib import Path
import pcapan
from pcapan import _build
warnings.simplefilter("ignore")
out = {"build": _build.describe(), "results": {}}
for p in sys.argv[2:]:
    try:
        res = pcapan.analyze(p)
        out["results"][p] = {k: v for k, v in res.tables().items()}
    except Exception as exc:  # the same failure in both builds is equal too
        out["results"][p] = f"{type(exc).__name__}: {exc}"
Path(sys.argv[1]).write_bytes(pickle.dumps(out))
"""


def _captures() -> list[str]:
    files = sorted(str(p) for p in SAMPLES.rglob("*.pcap*"))
    if CORPUS.is_dir():
        files += sorted(str(p) for p in CORPUS.rglob("*") if p.is_file() and ".pcap" in p.name)
    return files


def _run_both(tmp: Path, files: list[str]) -> tuple[dict, dict]:
    """The pure-Python and the compiled build over ``files``, each in its own process, both at
    once (CI has 2 cores and pytest uses one)."""
    procs = []
    for pure in (True, False):
        env = {k: v for k, v in os.environ.items() if k != "PCAPAN_PURE"}
        if pure:
            env["PCAPAN_PURE"] = "1"
        out = tmp / ("pure.pkl" if pure else "compiled.pkl")
        cmd = [sys.executable, "-c", _DRIVER, str(out), *files]
        procs.append((subprocess.Popen(cmd, env=env, cwd=ROOT), out))
    try:
        codes = [p.wait() for p, _ in procs]
    finally:
        for p, _ in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert codes == [0, 0], codes
    pure, comp = (pickle.loads(out.read_bytes()) for _, out in procs)
    return pure, comp


def test_version_names_the_build() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "pcapan.cli", "--version"], capture_output=True, text=True
    )
    assert r.returncode == 0
    assert r.stdout.startswith("pcapan ")
    assert "compiled core" in r.stdout or "pure Python" in r.stdout


def test_pure_switch_loads_source(tmp_path: Path) -> None:
    code = "import pcapan, pcapan.flow.conn as c; from pcapan import _build; print(c.__file__); print(_build.describe())"
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PCAPAN_PURE": "1"},
    )
    path, desc = r.stdout.splitlines()
    assert path.endswith("conn.py")
    assert desc == "pure Python: PCAPAN_PURE is set"


@pytest.mark.skipif(
    not os.environ.get("PCAPAN_REQUIRE_COMPILED"), reason="only CI promises a compiled build"
)
def test_ci_runs_the_compiled_core() -> None:
    assert _build.describe().startswith("compiled core"), _build.describe()


def test_compiled_and_pure_tables_identical(tmp_path: Path) -> None:
    if not _build.compiled_modules():
        pytest.skip(f"nothing compiled to compare: {_build.describe()}")
    files = _captures()
    assert len(files) > 30
    pure, comp = _run_both(tmp_path, files)
    assert pure["build"].startswith("pure Python")
    assert comp["build"].startswith("compiled core"), comp["build"]
    assert pure["results"].keys() == comp["results"].keys()
    rows = 0
    for f, a in pure["results"].items():
        b = comp["results"][f]
        assert type(a) is type(b), f
        if isinstance(a, str):
            assert a == b, f
            continue
        assert a.keys() == b.keys(), f
        for name, df in a.items():
            pd.testing.assert_frame_equal(df, b[name], obj=f"{Path(f).name}: {name}")
            rows += len(df)
    assert rows > 1000  # the comparison saw real tables


def test_stray_extension_module_means_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An extension module left by an earlier build with a longer module list (here
    proto/http1) is not in this build's record: it would shadow its edited source unchecked,
    so the package runs from source and says why. (This happened: a stale http1 .so hid a
    parser change from the tests.)"""
    pkg = tmp_path / "pcapan"
    (pkg / "proto").mkdir(parents=True)
    (pkg / "flow").mkdir()
    (pkg / "flow" / "conn.py").write_text("x = 1\n")
    record = {
        "cython": "3",
        "sources": {"pcapan/flow/conn.py": _build.source_digest(pkg / "flow" / "conn.py")},
    }
    (pkg / _build.RECORD).write_text(json.dumps(record))
    monkeypatch.setattr(_build, "_PKG", pkg)
    assert _build._stale() is None
    (pkg / "flow" / "conn.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    assert _build._stale() is None  # a module of this build
    (pkg / "proto" / "http1.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    why = _build._stale()
    assert why is not None and "pcapan/proto/http1.py" in why
