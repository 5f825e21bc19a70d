"""Test-wide settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import pcapan

# CI machines are shared and slow at times: a per-example deadline would make property tests
# fail on timing, not on behaviour. Failing examples are printed so they can be replayed.
settings.register_profile(
    "pcapan", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("pcapan")


# The benchmark generator's short mix at 300,000 packets (~190 MB, ~4 s to write): the size at
# which issue 15 found tables that wrap, a 52 MB repr and unreadable plots. Made once per test
# session, for every test that needs a large capture.
SHORT300K_PACKETS = 300_000


@pytest.fixture(scope="session")
def short300k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("large") / "short300k.pcap"
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "make_capture.py"
    subprocess.run(
        [
            sys.executable,
            str(script),
            "--packets",
            str(SHORT300K_PACKETS),
            "--mix",
            "short",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


@pytest.fixture(scope="session")
def short300k_result(short300k: Path) -> pcapan.Result:
    """``short300k`` analysed once per session (~6 s): tests read it, never change it."""
    return pcapan.analyze(short300k)
