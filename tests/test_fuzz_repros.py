"""Every failure the fuzz campaign found, as a regression test: the minimised reproducer in
tests/fuzz/repro/ must not show its failure signature any more.

Findings not fixed yet are strict xfails: when a fix lands the test XPASSes, which fails the run
until the mark is removed, so each fix turns its reproducer into a plain regression test.
How each capture was made and what differs: tests/fuzz/repro/README.txt.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.minimize import shows_file

REPRO = Path(__file__).resolve().parent / "fuzz" / "repro"


def _open(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"not fixed yet: {reason}")


CASES = [
    pytest.param(
        "fold-tls-app-exchange-times.pcap",
        "fold:tls.app_exchange_times",  # (fixed: skimmed records keep their segment's time)
    ),
    pytest.param(
        "fold-tls-app-exchanges.pcap",
        "fold:tls.app_exchanges",  # (fixed: skimmed records keep their segment's time)
    ),
    pytest.param(
        "fold-tls-ts-first-response.pcapng",
        "fold:tls.ts_first_response",  # (fixed: skimmed records keep their segment's time)
    ),
    pytest.param(
        "fold-anomaly-ts.pcap",
        "fold:anomalies.ts_ns",  # (fixed: skimmed records keep their segment's time)
    ),
    pytest.param(
        "fold-conn-duration.pcap",
        "fold:connections.duration_s",  # (fixed: segments back in time are not folded)
    ),
    pytest.param(
        "fold-conn-history.pcap",
        "fold:connections.history",  # (fixed: the gap is pinned on the revealing segment)
    ),
    pytest.param(
        "fold-conn-orig-bytes.pcap",
        "fold:connections.orig_bytes",  # (fixed: a run takes its own highest ACK)
    ),
    pytest.param(
        "fold-conn-resp-bytes.pcap",
        "fold:connections.resp_bytes",  # (fixed: a run takes its own highest ACK)
    ),
    pytest.param(
        "fold-tls-flags.pcap",
        "fold:tls.tls_flags",  # (fixed: folded runs init a silent peer from their ACKs; column was "flags")
    ),
    pytest.param(
        "fold-conn-overlap-conflicts.pcap",
        "fold:connections.overlap_conflicts",  # (was missed when folded)
    ),
    pytest.param(
        "fold-conn-missed-bytes.pcapng",
        "fold:connections.missed_bytes",  # (fixed: the gap is pinned on the revealing segment)
    ),
    pytest.param(
        "fold-conn-resp-retransmits.pcap",
        "fold:connections.resp_retransmits",  # (fixed: folded runs init a silent peer from their ACKs)
    ),
    pytest.param(
        "fold-http-flags.pcap",
        "fold:http.http_flags",  # (fixed: folded runs init a silent peer from their ACKs; column was "flags")
    ),
    pytest.param(
        "fold-http-partial.pcap",
        "fold:http.partial",  # (fixed: folded runs init a silent peer from their ACKs)
    ),
    pytest.param(
        "fold-conn-overlap-detached-sink.pcap",
        "fold:connections.overlap_conflicts",  # (fixed: a run keeps its tail if the sink left in it)
    ),
    pytest.param(
        "fold-conn-missed-bytes-wild-ack.pcap",
        "fold:connections.missed_bytes",  # (fixed: a run's acks measured from a bulk segment's)
    ),
    pytest.param(
        "fold-conn-resp-retransmits-reanchor.pcapng",
        "fold:connections.resp_retransmits",  # (fixed: no future run over bytes still buffered)
    ),
    pytest.param(
        "fold-conn-history-rxmt.pcap",
        "fold:connections.history",  # (fixed: segments behind Zeek's last_seq go one by one)
    ),
    pytest.param(
        "fold-conn-zero-window-probe.pcap",
        "fold:connections.orig_zero_window_probes",  # (fixed: one-byte segments go one by one)
    ),
    pytest.param(
        "uid-unique.pcap",
        "invariants:uid-unique",  # (issue 13, defect 1)
    ),
    pytest.param(
        "uid-unique.pcap",
        "tables:InvalidIndexError@pcapan/frames/webperf.py:_pipelining",  # (issue 13, defect 1)
    ),
    pytest.param(
        "fold-conn-orig-bytes-2.pcap",
        "fold:connections.orig_bytes",  # (fixed: a direction whose acks jump goes one by one)
    ),
    pytest.param(
        "fold-anomaly-rows-split-gap.pcap",
        "fold:anomalies.rows",  # (fixed: a folded run's acks are applied one by one)
    ),
    pytest.param(
        "fold-tls-orig-records-ccs-split.pcapng",
        "fold:tls.orig_records",  # (fixed: the skim leaves a CCS cut by the run's end to data())
    ),
    pytest.param(
        "fold-anomaly-addl-2.pcapng",
        "fold:anomalies.addl",  # (fixed: the same)
    ),
]


@pytest.mark.parametrize(("name", "signature"), CASES)
def test_reproducer_is_fixed(name: str, signature: str, tmp_path: Path) -> None:
    assert not shows_file(REPRO / name, signature, tmp_path)


def test_every_reproducer_is_listed() -> None:
    listed = {c.values[0] for c in CASES}
    assert listed == {p.name for p in REPRO.iterdir() if p.suffix in (".pcap", ".pcapng")}
