"""Test-wide settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import pcapan

# CI machines are shared and slow at times: a per-example deadline would make property tests
# fail on timing, not on behaviour. Failing examples are printed so they can be replayed.
settings.register_profile(
    "pcapan", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("pcapan")


# -- the large generated capture (issue 15) --------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent
# The benchmark generator's short mix (web traffic of short connections, ~24 packets each): the
# size at which issue 15 found the report, the plots and the tables unusable. ~4 s to make.
SHORT300K_PACKETS = 300_000


@pytest.fixture(scope="session")
def short300k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 300,000-packet capture (benchmarks/make_capture.py --mix short), made once per
    session; its generator statistics are beside it as ``<name>.meta.json``."""
    out = tmp_path_factory.mktemp("short300k") / "short300k.pcap"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "make_capture.py"),
            "--packets",
            str(SHORT300K_PACKETS),
            "--mix",
            "short",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


@pytest.fixture(scope="session")
def short300k_meta(short300k: Path) -> dict[str, Any]:
    """The generator's own counts for the capture (ground truth independent of pcapan)."""
    return json.loads(Path(f"{short300k}.meta.json").read_text())


@pytest.fixture(scope="session")
def short300k_result(short300k: Path) -> Any:
    """The analysis of ``short300k`` (a pcapan Result), once per session."""

    return pcapan.analyze(short300k)
