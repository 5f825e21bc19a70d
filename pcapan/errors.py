"""One exception type per layer.

Everything pcapan raises on purpose derives from :class:`PcapanError`, so the CLI can turn any of
them into one clear line and exit status 2 instead of a traceback.
"""

from __future__ import annotations


class PcapanError(Exception):
    """Base of every error pcapan raises deliberately."""


class CaptureError(PcapanError):
    """io layer: the input is missing, unreadable, or not a capture format we know."""


class LiveError(CaptureError):
    """live capture: a missing interface, missing privileges (CAP_NET_RAW), a bad BPF filter."""


class DecodeError(PcapanError):
    """decode layer: a header that cannot be parsed (normally becomes an anomaly row)."""


class FlowError(PcapanError):
    """flow layer: inconsistent input to the flow table or reassembly (a bug or misuse)."""


class ParserError(PcapanError):
    """proto layer: malformed protocol bytes; the analyze layer turns it into an anomaly row."""


class ExportError(PcapanError):
    """export layer: an output directory or format that cannot be written."""


class ParallelError(PcapanError):
    """parallel layer: a parallel analysis that cannot run as asked (no file path to give the
    workers, Dask not installed, a scheduler that cannot be reached)."""


class PcapanWarning(UserWarning):
    """Base of the Python warnings pcapan emits (each also in ``Result.warnings``)."""


class DuplicateSourceWarning(PcapanWarning):
    """api: the same capture file (or a byte-identical copy) was given twice to one analysis."""
