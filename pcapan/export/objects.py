"""HTTP object extraction (Wireshark's Export Objects > HTTP): every response body to a file.

Bodies arrive through the analysis' body hook as they are parsed (de-chunked, content encoding
kept) and are streamed to disk, never held in memory. File names are generated (sequence number,
connection uid, transaction depth, an extension chosen from the Content-Type); nothing taken from
the capture is ever used as a path, since URIs are attacker-controlled.
"""

from __future__ import annotations

import csv
import hashlib
import os
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pcapan.errors import ExportError
from pcapan.export.tables import safe_text

if TYPE_CHECKING:
    import pandas as pd

# Bodies in progress at once can be many (pipelined or parallel downloads); file handles are
# a scarce resource, so at most this many stay open and the rest are reopened for appending.
MAX_OPEN_FILES = 64
# Decompression output per input chunk is capped so that a decompression bomb cannot take the
# memory; the whole decoded object is capped too (what is beyond is cut and noted).
DECODE_CHUNK_BYTES = 1 << 20
MAX_DECODED_BYTES = 1 << 30

_EXTENSIONS = {
    "text/html": ".html",
    "text/plain": ".txt",
    "text/css": ".css",
    "text/javascript": ".js",
    "application/javascript": ".js",
    "application/json": ".json",
    "application/xml": ".xml",
    "text/xml": ".xml",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/svg+xml": ".svg",
    "image/x-icon": ".ico",
    "image/vnd.microsoft.icon": ".ico",
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/gzip": ".gz",
    "font/woff": ".woff",
    "font/woff2": ".woff2",
    "application/octet-stream": ".bin",
    "video/mp4": ".mp4",
    "audio/mpeg": ".mp3",
}
MANIFEST_FIELDS = (
    "file",
    "uid",
    "trans_depth",
    "method",
    "host",
    "uri",
    "status_code",
    "content_type",
    "content_encoding",
    "size",
    "sha256",
    "body_sha256",
    "decoded",
    "partial",
    "note",
)


def extension_for(content_type: str | None) -> str:
    """File extension for a Content-Type (parameters ignored); ``.bin`` when unknown."""
    if not content_type:
        return ".bin"
    return _EXTENSIONS.get(content_type.split(";", 1)[0].strip().lower(), ".bin")


class BodyWriter:
    """The body hook: appends each response body's bytes to its own part file."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(
                f"{self.dir}: cannot create output directory ({exc.strerror})"
            ) from None
        self._open: OrderedDict[tuple[str, int], IO[bytes]] = OrderedDict()
        self.parts: dict[tuple[str, int], Path] = {}

    def __call__(self, uid: str, depth: int, chunk: bytes) -> None:
        key = (uid, depth)
        f = self._open.get(key)
        if f is None:
            path = self.parts.get(key)
            if path is None:
                path = self.parts[key] = self.dir / f".part-{len(self.parts):06d}"
            if len(self._open) >= MAX_OPEN_FILES:
                self._open.popitem(last=False)[1].close()
            try:
                f = self._open[key] = open(path, "ab")  # noqa: SIM115 - closed in close()/LRU
            except OSError as exc:
                raise ExportError(f"{path}: cannot write ({exc.strerror})") from None
        else:
            self._open.move_to_end(key)
        f.write(chunk)

    def close(self) -> None:
        for f in self._open.values():
            f.close()
        self._open.clear()

    def finish(
        self, http: pd.DataFrame, *, decode: bool = False, safe_csv: bool = False
    ) -> list[dict[str, object]]:
        """Name the files after the http table's rows, optionally decode, write manifest.csv.

        ``safe_csv`` writes manifest.csv as ``--safe-csv`` writes the tables (captured text with
        control characters escaped and formula-leading cells prefixed with ``'``, see
        :mod:`pcapan.export.tables`); the returned rows keep the exact values."""
        self.close()
        rows: list[dict[str, object]] = []
        n = 0
        for r in http.itertuples(index=False):
            key = (str(r.uid), int(r.trans_depth))
            part = self.parts.pop(key, None)
            if part is None:
                continue
            n += 1
            name = f"{n:06d}-{key[0]}-{key[1]}{extension_for(_s(r.content_type))}"
            dest = self.dir / name
            encoding = (_s(r.content_encoding) or "").strip().lower()
            decoded, note = False, ""
            if decode and encoding and encoding != "identity":
                decoded, note = _decode(part, dest, encoding)
            if not decoded:
                os.replace(part, dest)
            else:
                part.unlink()
            size, digest = _digest(dest)
            rows.append(
                {
                    "file": name,
                    "uid": key[0],
                    "trans_depth": key[1],
                    "method": _s(r.method),
                    "host": _s(r.host),
                    "uri": _s(r.uri),
                    "status_code": _s(r.status_code),
                    "content_type": _s(r.content_type),
                    "content_encoding": _s(r.content_encoding),
                    "size": size,
                    "sha256": digest,
                    "body_sha256": _s(r.resp_body_sha256),
                    "decoded": decoded,
                    "partial": bool(r.partial),
                    "note": note,
                }
            )
        for leftover in self.parts.values():  # bodies of rows not in the table (none expected)
            leftover.unlink(missing_ok=True)
        self.parts.clear()
        with open(self.dir / "manifest.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS)
            w.writeheader()
            w.writerows(
                rows
                if not safe_csv
                else (
                    {k: safe_text(v) if isinstance(v, str) else v for k, v in r.items()}
                    for r in rows
                )
            )
        return rows


def _s(v: object) -> str | None:
    """A table cell as text, None when missing (pandas NA)."""
    try:
        import pandas as pd

        if v is None or v is pd.NA or (isinstance(v, float) and v != v):
            return None
    except ImportError:  # pragma: no cover
        pass
    return str(v)


def _digest(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def _decode(src: Path, dest: Path, encoding: str) -> tuple[bool, str]:
    """Undo gzip/deflate content coding into ``dest``; (False, why) when it cannot."""
    codings = [c.strip() for c in encoding.split(",") if c.strip() and c.strip() != "identity"]
    if len(codings) != 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
        return False, f"content encoding {encoding!r} not decoded (gzip and deflate are)"
    coding = codings[0]
    # gzip: wbits 16+15; deflate is meant to be zlib-wrapped but servers send raw deflate too.
    attempts = (31,) if coding != "deflate" else (15, -15)
    for wbits in attempts:
        d = zlib.decompressobj(wbits)
        total = 0
        try:
            with open(src, "rb") as fi, open(dest, "wb") as fo:
                while block := fi.read(1 << 16):
                    out = d.decompress(block, DECODE_CHUNK_BYTES)
                    while True:
                        total += len(out)
                        if total > MAX_DECODED_BYTES:
                            return True, f"decoded output cut at {MAX_DECODED_BYTES} bytes"
                        fo.write(out)
                        if not d.unconsumed_tail:
                            break
                        out = d.decompress(d.unconsumed_tail, DECODE_CHUNK_BYTES)
                fo.write(d.flush())
            return True, "" if d.eof else "body ended before the compressed stream did"
        except zlib.error as exc:
            last = str(exc)
            continue
    dest.unlink(missing_ok=True)
    return False, f"{coding} decoding failed ({last})"
