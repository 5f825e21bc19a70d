"""NSS key log files (``SSLKEYLOGFILE``): TLS secrets by ClientHello random.

The format (NSS, also written by OpenSSL, BoringSSL, curl, browsers, Go and Node) is one secret
per line: ``LABEL <client_random hex> <secret hex>``; ``#`` starts a comment line. The labels
read here:

* ``CLIENT_RANDOM``: the TLS 1.2 (and earlier) master secret, 48 bytes;
* TLS 1.3 (RFC 8446 7.1): ``CLIENT_EARLY_TRAFFIC_SECRET`` (0-RTT),
  ``CLIENT_HANDSHAKE_TRAFFIC_SECRET``, ``SERVER_HANDSHAKE_TRAFFIC_SECRET``,
  ``CLIENT_TRAFFIC_SECRET_0``, ``SERVER_TRAFFIC_SECRET_0``, ``EXPORTER_SECRET`` (kept, not used
  for decryption); ``EARLY_TRAFFIC_SECRET`` is taken as another name of the early secret
  (some writers shorten it).

Lines that are not of that shape are counted (``bad_lines``), with the line number and reason
kept for a message; labels this module does not use (``RSA`` pre-master secrets,
``CLIENT_TRAFFIC_SECRET_N`` after key updates, which pcapan derives itself) are counted per
label. Nothing here ever puts a secret into a message, repr or exception: secrets are bytes
held in a mapping that :class:`KeyLog` does not print.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# label -> allowed secret lengths in bytes (SHA-256 and SHA-384 suites for TLS 1.3)
_TLS13_LENGTHS = (32, 48)
LABELS: dict[str, tuple[int, ...]] = {
    "CLIENT_RANDOM": (48,),
    "CLIENT_EARLY_TRAFFIC_SECRET": _TLS13_LENGTHS,
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET": _TLS13_LENGTHS,
    "SERVER_HANDSHAKE_TRAFFIC_SECRET": _TLS13_LENGTHS,
    "CLIENT_TRAFFIC_SECRET_0": _TLS13_LENGTHS,
    "SERVER_TRAFFIC_SECRET_0": _TLS13_LENGTHS,
    "EXPORTER_SECRET": _TLS13_LENGTHS,
}
_ALIASES = {"EARLY_TRAFFIC_SECRET": "CLIENT_EARLY_TRAFFIC_SECRET"}
# Bad lines whose reason is kept for messages (the rest are only counted).
_MAX_BAD_KEPT = 20


@dataclass(frozen=True, slots=True)
class Secrets:
    """The secrets logged for one ClientHello random (label -> secret). Never printed."""

    by_label: dict[str, bytes] = field(repr=False)

    def get(self, label: str) -> bytes | None:
        return self.by_label.get(label)

    @property
    def master_secret(self) -> bytes | None:
        return self.by_label.get("CLIENT_RANDOM")

    @property
    def tls13(self) -> bool:
        return any(k != "CLIENT_RANDOM" for k in self.by_label)

    @property
    def complete(self) -> bool:
        """All a client has logged by the time it sends its Finished: the master secret (TLS
        <= 1.2) or both TLS 1.3 application traffic secrets. A key log still being written
        may hold only the handshake secrets of a TLS 1.3 connection (logged first)."""
        d = self.by_label
        return "CLIENT_RANDOM" in d or (
            "CLIENT_TRAFFIC_SECRET_0" in d and "SERVER_TRAFFIC_SECRET_0" in d
        )

    def __repr__(self) -> str:  # (no secret, not even its length)
        return f"Secrets(labels={sorted(self.by_label)})"


class KeyLog:
    """Secrets from NSS key log text (files, pcapng Decryption Secrets Blocks), matched by
    ClientHello random. ``add`` may be called again with more text (a growing file, a later
    block): later lines for the same random and label replace earlier ones, as in NSS."""

    __slots__ = ("_by_random", "lines", "comments", "bad_lines", "bad", "unknown_labels", "_tail")

    def __init__(self) -> None:
        self._by_random: dict[bytes, dict[str, bytes]] = {}
        self.lines = 0  # lines read (all kinds)
        self.comments = 0  # comment and empty lines
        self.bad_lines = 0  # malformed lines
        self.bad: list[str] = []  # "line N: reason" for the first _MAX_BAD_KEPT of them
        self.unknown_labels: dict[str, int] = {}
        self._tail = b""  # an incomplete last line, completed by the next add()

    def __repr__(self) -> str:
        return (
            f"KeyLog({len(self._by_random)} client randoms, {self.lines} lines, "
            f"{self.bad_lines} bad)"
        )

    def __len__(self) -> int:
        return len(self._by_random)

    def __bool__(self) -> bool:
        return True  # an empty key log is still a key log (connections then lack keys)

    def lookup(self, client_random: bytes) -> Secrets | None:
        d = self._by_random.get(client_random)
        return Secrets(dict(d)) if d else None

    def add(self, data: bytes | str, *, final: bool = True) -> int:
        """Read key log text; returns the number of secrets taken. With ``final`` False an
        unterminated last line is kept until the next call (a file still being written)."""
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        data = self._tail + data
        self._tail = b""
        if not final:
            cut = data.rfind(b"\n") + 1
            data, self._tail = data[:cut], data[cut:]
        taken = 0
        for raw in data.splitlines():
            self.lines += 1
            taken += self._line(raw)
        return taken

    def _line(self, raw: bytes) -> int:
        line = raw.strip()
        if not line or line.startswith(b"#"):
            self.comments += 1
            return 0
        parts = line.split()
        if len(parts) != 3:
            return self._bad(f"{len(parts)} fields, expected 3")
        try:
            label = parts[0].decode("ascii")
        except UnicodeDecodeError:
            return self._bad("label is not ASCII")
        label = _ALIASES.get(label, label)
        if label not in LABELS:
            if not label.replace("_", "").isalnum():
                return self._bad("label is not a word")
            self.unknown_labels[label] = self.unknown_labels.get(label, 0) + 1
            return 0
        try:
            rnd = bytes.fromhex(parts[1].decode("ascii"))
            secret = bytes.fromhex(parts[2].decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            return self._bad(f"{label}: not hexadecimal")
        if len(rnd) != 32:
            return self._bad(f"{label}: client random of {len(rnd)} bytes, expected 32")
        if len(secret) not in LABELS[label]:
            return self._bad(f"{label}: secret of unexpected length")
        self._by_random.setdefault(rnd, {})[label] = secret
        return 1

    def _bad(self, reason: str) -> int:
        self.bad_lines += 1
        if len(self.bad) < _MAX_BAD_KEPT:
            self.bad.append(f"line {self.lines}: {reason}")
        return 0


class KeyLogFile:
    """A key log file read as it grows (``pcapan live --keylog``): :meth:`poll` takes the lines
    appended since the last call."""

    __slots__ = ("path", "keylog", "_pos")

    def __init__(self, path: str | os.PathLike[str], keylog: KeyLog | None = None) -> None:
        self.path = os.fspath(path)
        self.keylog = keylog if keylog is not None else KeyLog()
        self._pos = 0

    def poll(self, *, final: bool = False) -> int:
        """Read what was appended; returns the secrets taken. A file that shrank (rewritten) is
        read again from its start. Raises OSError when the file cannot be read."""
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < self._pos:
                self._pos = 0
            f.seek(self._pos)
            data = f.read()
        self._pos += len(data)
        return self.keylog.add(data, final=final)


def load_keylog(path: str | os.PathLike[str]) -> KeyLog:
    """Read a whole key log file. Raises OSError when it cannot be read."""
    kf = KeyLogFile(path)
    kf.poll(final=True)
    return kf.keylog
