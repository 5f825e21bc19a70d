"""Telling when the same capture file is given twice.

Reading one file twice (``pcapan analyze F F``, a glob that matches a file and its copy) makes
every segment of the second copy a retransmission of the first: tables that look plausible and
are wrong. So a source is compared with the earlier ones of the same analysis:

- the same file: same device and inode (the same path, a symlink or a hard link to it);
- or a copy: the same size and the same SHA-256 of the bytes on disk. The hash is computed only
  when an earlier source has exactly the same size, so distinct captures cost one ``stat``.

Streams (stdin, file objects) are not compared: they cannot be read twice.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

# Bytes hashed per read when two files have the same size.
_HASH_CHUNK_BYTES = 1 << 20


def _sha256(path: str) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_HASH_CHUNK_BYTES):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


@dataclass
class _Seen:
    name: str
    path: str
    dev: int
    ino: int
    size: int
    sha256: str | None = None


@dataclass
class SourceRegistry:
    """The file sources of one analysis, in the order given."""

    _seen: list[_Seen] = field(default_factory=list)

    def add(self, source: object) -> str | None:
        """Record ``source``; if it is an earlier source again, return why (a sentence naming
        the earlier source), else None."""
        if not isinstance(source, (str, os.PathLike)):
            return None
        path = os.fspath(source)
        if not isinstance(path, str) or path == "-":
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None  # the reader reports a missing or unreadable file
        me = _Seen(path, path, st.st_dev, st.st_ino, st.st_size)
        why = None
        for old in self._seen:
            if (old.dev, old.ino) == (me.dev, me.ino):
                why = "given twice" if old.name == me.name else f"the same file as {old.name}"
                break
            if old.size == me.size:
                if old.sha256 is None:
                    old.sha256 = _sha256(old.path)
                if me.sha256 is None:
                    me.sha256 = _sha256(me.path)
                if old.sha256 is not None and old.sha256 == me.sha256:
                    why = f"a copy of {old.name} (same size and SHA-256)"
                    break
        self._seen.append(me)
        return why
