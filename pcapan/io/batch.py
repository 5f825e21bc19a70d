"""The io layer's output: frames in batches, never one Python object per frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class FrameBatch:
    """A run of consecutive frames from one capture.

    ``data`` holds the raw bytes; frame ``i`` is ``data[offset[i] : offset[i] + caplen[i]]``.
    All arrays have one element per frame. ``frame_no`` is Wireshark's 1-based frame number
    within the source, so anomalies can point at a frame a user can open.
    """

    data: bytes | bytearray | memoryview
    offset: np.ndarray  # int64
    caplen: np.ndarray  # int64, bytes present in ``data``
    wirelen: np.ndarray  # int64, original length on the wire
    ts_ns: np.ndarray  # int64, nanoseconds since the Unix epoch (UTC)
    linktype: np.ndarray  # int32, DLT/LINKTYPE per frame (pcapng interfaces may differ)
    frame_no: np.ndarray  # int64, 1-based frame number in the source

    def __len__(self) -> int:
        return int(self.offset.shape[0])


@dataclass(slots=True)
class ReadIssue:
    """Something wrong with the file itself (not with a packet in it).

    ``kind`` is a short machine name (e.g. ``truncated_record``, ``bad_record_length``),
    ``frame_no`` the frame at or after which it happened (0 when before any frame).
    ``fatal`` means reading stopped there.
    """

    kind: str
    detail: str
    frame_no: int = 0
    fatal: bool = False


@dataclass(slots=True)
class ReaderReport:
    """Collected by a reader while it runs; read after iteration ends."""

    format: str = ""  # "pcap", "pcapng"
    issues: list[ReadIssue] = field(default_factory=list)
    frames: int = 0
    bytes_read: int = 0
