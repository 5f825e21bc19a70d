"""The library's front door: ``analyze()``, ``Analyzer`` and ``Result``."""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pcapan.analysis.engine import Analyzer as _Engine
from pcapan.analysis.http import BodyHook
from pcapan.config import (
    GC_BEFORE_TABLE_ROWS,
    REPR_MAX_FILES,
    REPR_MAX_NAME_CHARS,
    REUSE_IDLE_FLOOR_S,
    REUSE_IDLE_RTTS,
)
from pcapan.errors import DuplicateSourceWarning
from pcapan.flow.rtt import KINDS, RttSamples
from pcapan.frames.human import span
from pcapan.frames.schema import (
    ANOMALIES,
    CLIENTS,
    CONN_RECORD_COLUMNS,
    CONN_RTT,
    CONNECTIONS,
    FINDINGS,
    HTTP,
    HTTP_RECORD_COLUMNS,
    MISSED_REUSE,
    RTT,
    SERVERS,
    TABLES,
    TLS,
    TS,
    Column,
)
from pcapan.io import FrameBatch, open_capture
from pcapan.io.identity import SourceRegistry
from pcapan.model import CONN_KINDS, AnomalyRecord, ConnColumns, ConnRecord, HttpRecord, TlsRecord

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from pcapan.plot import Plotter

Source = str | os.PathLike[str] | BinaryIO
# What the missed_reuse count means, shown beside the number (summary, report, terminal).
MISSED_REUSE_RULE = f"idle > {REUSE_IDLE_RTTS:g} RTT, at least {REUSE_IDLE_FLOOR_S * 1e3:g} ms"
# A key log: an NSS key log file's path, or a KeyLog already read (pcapan.proto.tls_keylog).
KeyLogSource = str | os.PathLike[str] | Any
Progress = Callable[[str, int, int | None], None]


@dataclass
class Result:
    """Tables from one analysis. DataFrames are built on first access."""

    # Finished connections by column (a sequence of ConnRecord made on demand); a list of
    # records is accepted and converted.
    connection_records: ConnColumns | list[ConnRecord]
    anomaly_records: list[AnomalyRecord]
    stats: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    http_records: list[HttpRecord] = field(default_factory=list)
    tls_records: list[TlsRecord] = field(default_factory=list)
    rtt_samples: RttSamples = field(default_factory=RttSamples)
    _frames: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    # (i, n) when this is one shard of an analysis split by flow (Analyzer(shard=)): its figures
    # of the whole capture are in every shard, and merge() keeps them once (see _shard_own).
    shard: tuple[int, int] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.connection_records = ConnColumns.of(self.connection_records)

    def __repr__(self) -> str:
        """A few lines, never the records: files, frames, the capture's span and the rows of
        each table (counted from the records; tables not built yet stay unbuilt)."""
        return "\n".join(
            ["<pcapan.Result>", *(f"  {label:<9} {value}" for label, value in self._overview())]
        )

    def _repr_html_(self) -> str:
        """Jupyter's view: the same facts as ``repr`` in a small table."""
        import html

        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
            f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
            for label, value in self._overview()
        )
        return f"<table><caption style='text-align:left'>pcapan.Result</caption>{rows}</table>"

    def _overview(self) -> list[tuple[str, str]]:
        """(label, text) rows of repr and _repr_html_."""
        st = self.stats
        names = [str(s) for s in st.get("sources", [])]
        shown = [
            n if len(n) <= REPR_MAX_NAME_CHARS else "…" + n[-(REPR_MAX_NAME_CHARS - 1) :]
            for n in names[:REPR_MAX_FILES]
        ]
        if len(names) > REPR_MAX_FILES:
            shown.append(f"+{len(names) - REPR_MAX_FILES:,} more")
        rows = [
            ("files", ", ".join(shown) or "-"),
            ("frames", f"{st.get('frames', 0):,}"),
            (
                "span",
                span(st.get("first_ts_ns"), st.get("last_ts_ns")) if st.get("frames") else "-",
            ),
        ]
        counts = {
            "connections": len(ConnColumns.of(self.connection_records)),
            "http": len(self.http_records),
            "tls": len(self.tls_records),
            "rtt": sum(int(c.shape[0]) for c in self.rtt_samples.conn),
            "anomalies": len(self.anomaly_records),
        }
        # The per-pair tables are derived: counted only once built (building them takes seconds
        # on a large capture, and a repr must not).
        for name in ("servers", "clients", "missed_reuse"):
            counts[name] = len(self._frames[name]) if name in self._frames else None
        rows.append(
            (
                "rows",
                ", ".join(f"{k} {v:,}" for k, v in counts.items() if v is not None)
                + (
                    ""
                    if "servers" in self._frames
                    else "; servers, clients, missed_reuse: built on first access"
                ),
            )
        )
        if self.warnings:
            rows.append(("warnings", f"{len(self.warnings):,} (see .warnings)"))
        return rows

    @property
    def connections(self) -> pd.DataFrame:
        return self._table("connections")

    @property
    def http(self) -> pd.DataFrame:
        """One row per HTTP/1.x request/response pair (see ``pcapan schema http``)."""
        return self._table("http")

    @property
    def tls(self) -> pd.DataFrame:
        """One row per TLS handshake (see ``pcapan schema tls``)."""
        return self._table("tls")

    @property
    def rtt(self) -> pd.DataFrame:
        """One row per round-trip sample (see ``pcapan schema rtt``)."""
        return self._table("rtt")

    @property
    def anomalies(self) -> pd.DataFrame:
        return self._table("anomalies")

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: self._table(name) for name in TABLES}

    @property
    def servers(self) -> pd.DataFrame:
        """Per client-server pair: connections, requests, reuse, parallelism, missed reuse."""
        return self._table("servers")

    @property
    def clients(self) -> pd.DataFrame:
        """Per client address: the same figures over all its servers."""
        return self._table("clients")

    @property
    def missed_reuse(self) -> pd.DataFrame:
        """New connections an open, idle connection to the same server could have carried."""
        return self._table("missed_reuse")

    @property
    def findings(self) -> pd.DataFrame:
        """What a performance and security review would point at, each with its evidence rows
        (see ``pcapan schema findings``), with the default thresholds."""
        return self._table("findings")

    def findings_with(
        self, thresholds: dict[str, float] | None = None, **more: float
    ) -> pd.DataFrame:
        """The findings with thresholds overridden by name (pcapan.frames.findings.THRESHOLDS:
        the FINDINGS_* constants of pcapan.config in lower case without the prefix)."""
        from pcapan.frames import findings

        return _typed(
            findings.findings(self._finding_tables(), {**(thresholds or {}), **more}), FINDINGS
        )

    def _finding_tables(self) -> Any:
        from pcapan.frames import findings

        return findings.Tables(
            self.connections, self.http, self.tls, self.servers, self.missed_reuse
        )

    @property
    def plot(self) -> Plotter:
        """Figures: ``res.plot.waterfall()``, ``res.plot.tls()`` ... (see pcapan.plot)."""
        from pcapan.plot import Plotter

        return Plotter(self)

    def report(
        self,
        path: str | os.PathLike[str],
        *,
        title: str | None = None,
        plots: bool = True,
        tables: bool = True,
    ) -> Path:
        """Write the self-contained HTML report (summary, plots, servers, TLS, anomalies) to
        ``path``, and with ``tables`` every table as CSV into ``<name>_files/`` beside it; see
        pcapan.report."""
        from pcapan.report import write_report

        return write_report(self, path, title=title, plots=plots, tables=tables)

    def _table(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            from pcapan.frames.build import to_frame

            if name in ("connections", "http"):
                self._web_tables()
            elif name in ("servers", "clients", "missed_reuse"):
                self._pair_tables()
            elif name == "findings":
                self._frames[name] = self.findings_with()
            elif name == "rtt":
                self._frames[name] = _rtt_frame(self.rtt_samples)
            elif name == "tls":
                recs4 = sorted(self.tls_records, key=attrgetter("ts_ns", "uid"))
                self._frames[name] = to_frame(recs4, TLS)
            else:
                # uid breaks ties between connections (stable within one): a parallel run,
                # whose shards finalise in another interleaving, gives the same order.
                recs2 = sorted(
                    self.anomaly_records, key=attrgetter("source", "ts_ns", "frame", "uid")
                )
                self._frames[name] = to_frame(recs2, ANOMALIES)
        return self._frames[name]

    def _web_tables(self) -> None:
        """connections and http with their derived columns: built together, since each needs
        the other (pcapan.frames.webperf)."""
        from pcapan.frames import webperf
        from pcapan.frames.build import conn_frame, to_frame

        store = ConnColumns.of(self.connection_records)
        if len(store) >= GC_BEFORE_TABLE_ROWS:
            gc.collect()
        # The buffers go into the table column by column; the records are then read from it.
        conn, order = conn_frame(store, CONN_RECORD_COLUMNS)
        conn = _with_rtt_columns(conn, self.rtt_samples)
        store.release(lambda name: _unsorted(self._conn_column(name), order))
        recs3 = sorted(self.http_records, key=attrgetter("ts_ns", "uid", "trans_depth"))
        http = to_frame(recs3, HTTP_RECORD_COLUMNS)
        tls = self._table("tls")
        conn = webperf.connection_columns(conn, http, tls)
        self._frames["connections"] = _typed(conn, CONNECTIONS)
        self._frames["http"] = _typed(webperf.http_columns(http, conn), HTTP)

    def _conn_column(self, name: str) -> list[Any]:
        """One record field's values, read back from the connections table (rows in its order)."""
        import numpy as np

        s = self._frames["connections"]["ts" if name == "ts_ns" else name]
        kind = CONN_KINDS[name]
        if kind.startswith("q"):
            if str(s.dtype) == TS:
                vals = s.to_numpy(dtype="datetime64[ns]").view(np.int64).tolist()
            else:
                vals = s.to_numpy(dtype=np.int64, na_value=0).tolist()
            if kind == "q?":
                return [None if m else v for v, m in zip(vals, s.isna().tolist(), strict=True)]
            return vals
        if kind == "d":
            return s.to_numpy(dtype=np.float64).tolist()
        if kind == "b":
            return s.to_numpy(dtype=bool, na_value=False).tolist()
        return s.to_numpy(dtype=object, na_value=None).tolist()

    def _pair_tables(self) -> None:
        """servers, clients and missed_reuse: built together, when one of them is asked for."""
        from pcapan.frames import webperf

        conn, http, tls = self.connections, self.http, self.tls
        pairs = webperf.pairs(conn, http, tls)
        # HTTPS exchange times live on the tls records, not in a table column (see TlsRecord).
        exchanges = {r.uid: r.app_exchange_times for r in self.tls_records if not r.in_tunnel}
        missed = webperf.missed_reuse(pairs, http, exchanges)
        srv = webperf.servers(pairs, missed)
        self._frames["servers"] = _typed(srv, SERVERS)
        self._frames["clients"] = _typed(webperf.clients(pairs, srv), CLIENTS)
        # The table lists the strict rows only; the loose ones are counted in missed_reuse_loose.
        strict = missed[missed.strict.astype(bool)] if len(missed) else missed
        self._frames["missed_reuse"] = _typed(strict, MISSED_REUSE)

    def summary(self) -> dict[str, Any]:
        """Headline numbers: what was read, what was found, what went wrong."""
        recs = ConnColumns.of(self.connection_records)
        col = recs.column
        return {
            **self.stats,
            "tcp_connections": len(recs),
            "conn_states": _counts(col("conn_state")),
            "services": _counts(s or "-" for s in col("service")),
            "orig_bytes": sum(col("orig_bytes")),
            "resp_bytes": sum(col("resp_bytes")),
            "missed_bytes": sum(col("missed_bytes")),
            "half_open_evicted": sum(col("evicted")),
            "retransmits": sum(col("orig_retransmits")) + sum(col("resp_retransmits")),
            "http_requests": sum(1 for h in self.http_records if h.method is not None),
            "http_responses": sum(1 for h in self.http_records if h.status_code is not None),
            "tls_handshakes": len(self.tls_records),
            "tls_versions": _counts(t.version or "-" for t in self.tls_records),
            **self._web_summary(),
            "anomalies": len(self.anomaly_records),
            "warnings": list(self.warnings),
        }

    def _web_summary(self) -> dict[str, Any]:
        """Reuse, pipelining, RTT and budget headline figures (from the derived tables)."""
        import pandas as pd

        conns = self.connections
        http = self.http
        cols = self.rtt_samples.columns()
        reqs = int(conns.requests.sum())
        used = int((conns.requests > 0).sum())
        acks = pd.Series(cols["rtt_ns"][cols["kind"] == 1] / 1e9)
        labels = conns.budget_label.dropna()
        return {
            "requests_per_connection": round(reqs / used, 3) if used else None,
            "reuse_ratio": round((reqs - used) / reqs, 4) if reqs else None,
            "missed_reuse": len(self.missed_reuse),
            "missed_reuse_loose": int(self.servers.missed_reuse_loose.sum()),
            "missed_reuse_rule": MISSED_REUSE_RULE,
            "pipelined_share": round(float(http.pipelined.fillna(False).mean()), 4)
            if len(http)
            else None,
            "max_pipeline_depth": int(http.pipeline_depth.max())
            if http.pipeline_depth.notna().any()
            else None,
            "rtt_p50_s": round(float(acks.quantile(0.5)), 6) if len(acks) else None,
            "rtt_p95_s": round(float(acks.quantile(0.95)), 6) if len(acks) else None,
            "budget_labels": {k: int(v) for k, v in labels.value_counts().items()},
        }

    def export(
        self, directory: str | os.PathLike[str], fmt: str, *, safe_csv: bool = False
    ) -> list[Path]:
        """Every table into ``directory`` as ``fmt`` (csv, parquet, jsonl, zeek) plus
        manifest.json; returns the paths written (see pcapan.export.files)."""
        from pcapan.export.files import write_tables

        return write_tables(self, directory, fmt, safe_csv=safe_csv)

    def to_csv(self, directory: str | os.PathLike[str], *, safe: bool = False) -> list[Path]:
        """One CSV per table (read back exactly with ``pcapan.export.tables.read_csv``);
        ``safe=True`` neutralises spreadsheet formulas in text cells."""
        return self.export(directory, "csv", safe_csv=safe)

    def to_parquet(self, directory: str | os.PathLike[str]) -> list[Path]:
        """One Parquet file per table (dtypes kept)."""
        return self.export(directory, "parquet")

    def to_json(self, directory: str | os.PathLike[str]) -> list[Path]:
        """One JSON Lines file (``.jsonl``) per table."""
        return self.export(directory, "jsonl")

    def to_zeek(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Zeek ASCII logs: conn.log, http.log, ssl.log, weird.log."""
        return self.export(directory, "zeek")

    @staticmethod
    def merge(parts: Sequence[Result]) -> Result:
        """Combine results of analyses split by flow (``shard=``) or over separate captures.

        Of shards, the figures of the whole capture that every shard has (frames, bytes, IP
        packets, timestamps, the decoder's and reader's anomalies, warnings) are taken once.
        Shards have distinct uids. Separate analyses of overlapping captures (the same file
        twice) can have a uid in common: the later part's copy gets a uid derived from it and
        the part's position, so uids stay unique in the result (and the same for the same parts).
        """
        fold = _Fold()
        for p in _distinct_uids(parts):
            fold.add(p)
        return fold.result()


class _Fold:
    """A merge made one part at a time (each part can go once added): connection columns are
    appended buffer by buffer, records and RTT sample chunks by reference."""

    def __init__(self) -> None:
        self.conns = ConnColumns()
        self.anomalies: list[AnomalyRecord] = []
        self.stats: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.http: list[HttpRecord] = []
        self.tls: list[TlsRecord] = []
        self.rtt = RttSamples()

    def add(self, p: Result) -> None:
        p = _shard_own(p)
        stats = self.stats
        for k, v in p.stats.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                stats[k] = stats.get(k, 0) + v
            elif isinstance(v, dict):
                d = stats.setdefault(k, {})
                for kk, vv in v.items():
                    d[kk] = d.get(kk, 0) + vv
            else:
                stats.setdefault(k, v)
        self.conns.absorb(ConnColumns.of(p.connection_records))
        self.anomalies.extend(p.anomaly_records)
        self.warnings.extend(p.warnings)
        self.http.extend(p.http_records)
        self.tls.extend(p.tls_records)
        s, out = p.rtt_samples, self.rtt
        remap = out.ids(s.uids)
        out.conn.extend(remap[c] for c in s.conn)
        for name in ("is_orig", "kind", "ts_ns", "rtt_ns"):
            getattr(out, name).extend(getattr(s, name))

    def result(self) -> Result:
        return Result(
            self.conns, self.anomalies, self.stats, self.warnings, self.http, self.tls, self.rtt
        )


def _distinct_uids(parts: Sequence[Result]) -> list[Result]:
    """``parts`` with every connection uid that an earlier part already has replaced (see merge)."""
    import copy
    import dataclasses

    from pcapan.flow.table import uid_from_bytes

    seen: set[str] = set()
    out: list[Result] = []
    for j, p in enumerate(parts):
        uids = set(ConnColumns.of(p.connection_records).column("uid"))
        clash = uids & seen
        seen |= uids
        if not clash:
            out.append(p)
            continue
        new: dict[str, str] = {}
        for u in sorted(clash):
            new[u] = uid_from_bytes(b"%s|part%d" % (u.encode(), j))
        seen |= set(new.values())

        def moved(records: list[Any], new: dict[str, str] = new) -> list[Any]:
            return [dataclasses.replace(r, uid=new[r.uid]) if r.uid in new else r for r in records]

        samples = copy.copy(p.rtt_samples)
        samples.uids = [new.get(u, u) for u in p.rtt_samples.uids]
        samples.index = {u: i for i, u in enumerate(samples.uids)}
        out.append(
            Result(
                ConnColumns.of(p.connection_records).copy(new),
                moved(p.anomaly_records),
                p.stats,
                p.warnings,
                moved(p.http_records),
                moved(p.tls_records),
                samples,
                shard=p.shard,
            )
        )
    return out


def _shard_own(p: Result) -> Result:
    """``p`` without what shard 0 of its analysis has as well: the decoder sees every frame
    before the shard filter, so its figures, anomalies and the reader's warnings are the whole
    capture's in every shard. Shard 0 and a result that is no shard are returned as they are."""
    if p.shard is None or p.shard[0] == 0:
        return p
    return Result(
        p.connection_records,
        [a for a in p.anomaly_records if a.uid or a.name in _PER_SHARD_UIDLESS],
        {k: v for k, v in p.stats.items() if k in _PER_FLOW_STATS},
        [],
        p.http_records,
        p.tls_records,
        p.rtt_samples,
        shard=p.shard,
    )


def _typed(df: pd.DataFrame, columns: tuple[Column, ...]) -> pd.DataFrame:
    """The frame with exactly the schema's columns, in order, each of the schema's dtype."""
    import pandas as pd

    out = {}
    for c in columns:
        s = df[c.name] if c.name in df else pd.Series([None] * len(df), index=df.index)
        if c.dtype == TS:
            out[c.name] = pd.to_datetime(s, utc=True).astype(TS)
        elif str(s.dtype) != c.dtype:
            out[c.name] = (
                s.astype("object").where(s.notna(), None).astype(c.dtype)
                if c.dtype != "float64"
                else s.astype("float64")
            )
        else:
            out[c.name] = s
    return pd.DataFrame(out, index=df.index, copy=False).reset_index(drop=True)


def _rtt_frame(samples: RttSamples) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    from pcapan.frames.build import coded_strings

    c = samples.columns()
    uids = np.array(samples.uids, dtype=object)
    # By time, then uid (not the connection's index in the samples, which depends on the order
    # connections were first timed: another in a parallel run's merge), then direction; samples
    # of one connection, direction and instant keep their order.
    rank = np.empty(uids.shape[0], dtype=np.int64)
    rank[np.argsort(uids, kind="stable")] = np.arange(uids.shape[0])
    order = (
        np.lexsort((c["is_orig"], rank[c["conn"]], c["ts_ns"]))
        if c["ts_ns"].shape[0]
        else np.empty(0, int)
    )
    df = pd.DataFrame(
        {
            "ts": pd.to_datetime(c["ts_ns"][order], unit="ns", utc=True),
            "uid": coded_strings(samples.uids, c["conn"][order]),
            "direction": coded_strings(("resp", "orig"), c["is_orig"][order].astype(np.int8)),
            "kind": coded_strings(KINDS, c["kind"][order]),
            "rtt_s": c["rtt_ns"][order] / 1e9,
        }
    )
    return df[[col.name for col in RTT]]


def _group_stats(key: np.ndarray, val: np.ndarray, n_keys: int) -> dict[str, np.ndarray]:
    """Per key in ``range(n_keys)``: min, median, mean, p95 (linear interpolation, as pandas),
    max, population stdev (NaN for a key without values) and count, with one sort and
    reductions over the groups (no per-sample objects)."""
    import numpy as np

    names = ("min", "median", "mean", "p95", "max", "stdev")
    out = {name: np.full(n_keys, np.nan) for name in names}
    out["count"] = np.zeros(n_keys, dtype=np.int64)
    if not key.shape[0]:
        return out
    order = np.lexsort((val, key))
    k, v = key[order], val[order]
    starts = np.r_[0, np.nonzero(k[1:] != k[:-1])[0] + 1]
    n = np.diff(np.r_[starts, k.shape[0]])
    total = np.add.reduceat(v, starts)
    mean = total / n
    sq = np.add.reduceat((v - np.repeat(mean, n)) ** 2, starts)

    def quantile(q: float) -> np.ndarray:
        # The position within the group, then the group's offset: (starts + q * (n - 1)) - lo
        # would round differently with the group's place in the array, so a parallel run's merge
        # (other places) would differ in the last digit.
        pos = q * (n - 1)
        base = np.floor(pos)
        lo = starts + base.astype(np.int64)
        hi = np.minimum(lo + 1, starts + n - 1)
        return v[lo] + (v[hi] - v[lo]) * (pos - base)

    keys = k[starts]
    cols = {
        "min": v[starts],
        "median": quantile(0.5),
        "mean": mean,
        "p95": quantile(0.95),
        "max": v[starts + n - 1],
        "stdev": np.sqrt(sq / n),
        "count": n,
    }
    for name, arr in cols.items():
        out[name][keys] = arr
    return out


def _with_rtt_columns(conn: pd.DataFrame, samples: RttSamples) -> pd.DataFrame:
    """The connections table with its round-trip columns (schema ``CONN_RTT``), from the samples
    (keyed by the integer connection index and direction: the samples are many)."""
    import numpy as np
    import pandas as pd

    c = samples.columns(("conn", "is_orig", "kind", "rtt_ns"))
    out = conn.copy(deep=False)
    # Each connection's index in the samples (-1: none); the arrays below are indexed by
    # key = index * 2 + (0 resp, 1 orig).
    n_keys = 2 * len(samples.uids)
    index = samples.index
    row = _lookup(out.uid, index)
    has = row >= 0

    def pick(arr: np.ndarray, flag: int, fill: float = np.nan) -> np.ndarray:
        # each connection's value for one direction; ``fill`` for connections without samples
        return np.where(has, arr[np.where(has, row * 2 + flag, 0)] if arr.shape[0] else 0, fill)

    def kind(k: int) -> tuple[np.ndarray, np.ndarray]:
        # (key, rtt in seconds) of the samples of one kind: only those are made (they are many)
        m = c["kind"] == k
        return c["conn"][m].astype(np.int64) * 2 + c["is_orig"][m], c["rtt_ns"][m] / 1e9

    hkey, hrtt = kind(0)
    hk, first = np.unique(hkey, return_index=True)  # first handshake sample per key
    hs = np.full(n_keys, np.nan)
    hs[hk] = hrtt[first]
    out["rtt_syn_s"] = pick(hs, 1)
    out["rtt_synack_s"] = pick(hs, 0)
    out["initial_rtt_s"] = out.rtt_syn_s + out.rtt_synack_s
    stats = _group_stats(*kind(1), n_keys)
    for d, flag in (("orig", 1), ("resp", 0)):
        for name in ("min", "median", "mean", "p95", "max", "stdev"):
            out[f"rtt_{d}_{name}_s"] = pick(stats[name], flag)
        out[f"rtt_{d}_count"] = pd.array(
            pick(stats["count"], flag, 0).astype(np.int64), dtype="Int64"
        )
    return out[[*conn.columns, *(col.name for col in CONN_RTT)]]


def _unsorted(values: list[Any], order: np.ndarray) -> list[Any]:
    """``values`` (in table order; row i came from ``order[i]``) back in their first order."""
    import numpy as np

    out = np.empty(len(values), dtype=object)
    out[order] = values
    return out.tolist()


def _lookup(uids: pd.Series, index: dict[str, int]) -> np.ndarray:
    """``index[uid]`` per row (-1 where absent), in Arrow: no Python string per row."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(uids) or not index:
        return np.full(len(uids), -1, dtype=np.int64)
    at = pc.index_in(pa.array(uids.array), value_set=pa.array(list(index), type=pa.large_string()))
    pos = at.fill_null(-1).to_numpy().astype(np.int64)
    vals = np.fromiter(index.values(), dtype=np.int64, count=len(index))
    return np.where(pos >= 0, vals[pos], -1)


def _counts(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


# While a capture is read the cyclic garbage collector would run every 700 allocations and, now
# and then, walk every long-lived object (callgrind: ~3.5% of all instructions). Finalised
# connections break their own reference cycles (Connection.release), so reference counting
# frees them; collections are made rare while reading, and objects older than the read are
# left out of them. Both settings are restored afterwards.
_GC_GEN0_WHILE_READING = 100_000


@contextlib.contextmanager
def _quiet_gc() -> Iterator[None]:
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(_GC_GEN0_WHILE_READING, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


class Analyzer:
    """Incremental analysis: ``feed()`` frame batches (files or live capture), then ``finish()``."""

    def __init__(
        self,
        *,
        idle_timeout_s: float | None = None,
        shard: tuple[int, int] | None = None,
        on_http_body: BodyHook | None = None,
        max_half_open: int | None = None,
        keylog: KeyLogSource | None = None,
    ) -> None:
        """``keylog``: an NSS key log (``SSLKEYLOGFILE``; a path or a
        :class:`pcapan.proto.tls_keylog.KeyLog`): TLS connections whose ClientHello random it
        lists are decrypted and their HTTP analysed like cleartext (issue 17); the secrets of
        pcapng Decryption Secrets Blocks are added to it (and used without one).
        ``on_http_body(uid, trans_depth, chunk)`` receives response bodies as they are parsed
        (de-chunked; content encoding kept), e.g. to extract them. ``max_half_open``: half-open
        flows (only SYNs seen) kept at once before the oldest are finalised early (their rows
        flagged ``evicted``); default ``MAX_HALF_OPEN_FLOWS``, 0 for no bound."""
        kwargs: dict[str, Any] = {"shard": shard, "on_http_body": on_http_body}
        if idle_timeout_s is not None:
            import math

            # 0 or less ended a connection at every packet (1 connection became 175).
            if not (math.isfinite(idle_timeout_s) and idle_timeout_s > 0):
                raise ValueError("idle_timeout_s must be a number of seconds more than 0")
            kwargs["idle_timeout_s"] = idle_timeout_s
        if max_half_open is not None:
            if max_half_open < 0:
                raise ValueError("max_half_open must be 0 (no bound) or more")
            kwargs["max_half_open"] = max_half_open
        self._engine = _Engine(**kwargs)
        self._warnings: list[str] = []
        if keylog is not None:
            self.use_keylog(keylog)
        self._sources: list[str] = []
        # Per capture file read by feed_source: its name, first/last timestamp and frames (the
        # summary's duration counts captured time, not the pause between files read years apart).
        self._spans: list[dict[str, Any]] = []
        self._registry = SourceRegistry()

    def use_keylog(self, keylog: KeyLogSource, *, follow: bool = False) -> None:
        """Decrypt with this key log from now on (see ``keylog`` above). A path that cannot be
        read raises OSError. ``follow`` (a path; pcapan live): the file is read again as it
        grows, when a connection's secrets are not in it yet (at most every
        ``KEYLOG_REREAD_S``)."""
        import time

        from pcapan.config import KEYLOG_REREAD_S
        from pcapan.proto.tls_keylog import KeyLog, KeyLogFile, load_keylog

        ctx = self._engine.tls_ctx
        if follow and not isinstance(keylog, KeyLog):
            kf = KeyLogFile(keylog)
            read_ns = [time.time_ns()]  # when the last reading started (wall clock)
            kf.poll()
            kl = kf.keylog
            last = [0.0]

            def refresh(after_ns: int | None = None) -> None:
                # ``after_ns``: the capture time of a packet sent after the secrets were logged
                # (a client's Finished: it logs them before). A reading that started before it
                # may have missed them, so the file is read again whatever the throttle; in a
                # live capture packets are stamped with the wall clock, so this is at most once
                # per batch fed.
                now = time.monotonic()
                stale = after_ns is not None and read_ns[0] <= after_ns
                if stale or now - last[0] >= KEYLOG_REREAD_S:
                    last[0] = now
                    read_ns[0] = time.time_ns()
                    with contextlib.suppress(OSError):  # (rotated away: keep what we have)
                        kf.poll()

            ctx.keylog_refresh = refresh
        else:
            kl = keylog if isinstance(keylog, KeyLog) else load_keylog(keylog)
        ctx.keylog = kl
        if kl.bad_lines:
            # (the reasons name line numbers and what is wrong, never a secret)
            self._warnings.append(
                f"key log: {kl.bad_lines} malformed line(s) ignored ({'; '.join(kl.bad[:3])})"
            )

    def _take_secrets(self, reader: Any, seen: int) -> int:
        """Secrets of pcapng Decryption Secrets Blocks read so far (TLS key logs) join the key
        log before the packets that follow them are analysed."""
        blocks = getattr(reader, "secrets", ())
        if len(blocks) == seen:
            return seen
        from pcapan.io.pcapng import DSB_TLS_KEY_LOG
        from pcapan.proto.tls_keylog import KeyLog

        ctx = self._engine.tls_ctx
        for stype, data in blocks[seen:]:
            if stype == DSB_TLS_KEY_LOG:
                if ctx.keylog is None:
                    ctx.keylog = KeyLog()
                ctx.keylog.add(data)
        return len(blocks)

    def start_source(self, name: str) -> None:
        self._engine.start_source(name)
        self._sources.append(name)

    def feed(self, batch: FrameBatch) -> None:
        self._engine.feed(batch)

    def feed_source(self, source: Source, progress: Progress | None = None) -> None:
        """Read a whole capture file (or stream) into the analysis."""
        again = self._registry.add(source)
        opened = open_capture(source)
        if again:
            # Still analysed (as tshark would): the user may mean it. But every segment of the
            # second reading is a retransmission of the first, so say so.
            msg = (
                f"{opened.name}: {again}; its packets are analysed twice (the second reading's "
                "segments count as retransmissions)"
            )
            self._warnings.append(msg)
            warnings.warn(msg, DuplicateSourceWarning, stacklevel=3)
        self.start_source(opened.name)
        unsupported = dict(self._engine.decoder.stats.unsupported_linktype_frames)
        lo, hi, frames = None, None, 0
        secrets = 0
        with _quiet_gc():
            for batch in opened:
                secrets = self._take_secrets(opened.reader, secrets)
                if len(batch):
                    b_lo, b_hi = int(batch.ts_ns.min()), int(batch.ts_ns.max())
                    lo = b_lo if lo is None else min(lo, b_lo)
                    hi = b_hi if hi is None else max(hi, b_hi)
                    frames += len(batch)
                self._engine.feed(batch)
                del batch  # let the reader reuse the chunk buffer
                if progress is not None:
                    progress(opened.name, opened.consumed_bytes, opened.total_bytes)
        if lo is not None:
            self._spans.append(
                {"source": opened.name, "first_ts_ns": lo, "last_ts_ns": hi, "frames": frames}
            )
        self._engine.add_read_issues(opened.report.issues)
        for issue in opened.report.issues:
            if issue.fatal:
                self._warnings.append(
                    f"{opened.name}: {issue.detail} (stopped at frame {issue.frame_no})"
                )
        # Frames of a link layer pcapan does not decode would otherwise pass with exit 0 and empty
        # tables: one line per link type, like a truncated file.
        for linktype, count in self._engine.decoder.stats.unsupported_linktype_frames.items():
            if count > unsupported.get(linktype, 0):
                self._warnings.append(
                    _unsupported_linktype_warning(
                        opened.name, linktype, count - unsupported.get(linktype, 0)
                    )
                )

    def finish(self) -> Result:
        eng = self._engine
        eng.finish()
        st = eng.decoder.stats
        stats: dict[str, Any] = {
            "sources": list(self._sources),
            "frames": st.frames,
            "frame_bytes": st.frame_bytes,
            "first_ts_ns": eng.first_ns,
            "last_ts_ns": eng.last_ns,
            "source_spans": list(self._spans),
            "ip_packets": dict(st.ip_packets),
            "ip_bytes": dict(st.ip_bytes),
            "non_ip_frames": st.non_ip_frames,
            "unsupported_linktype_frames": {
                str(k): v for k, v in st.unsupported_linktype_frames.items()
            },
            "malformed_packets": st.malformed,
            "ip_fragments": st.fragments,
            "ip_reassembled": st.reassembled,
            "tunnelled_packets": st.tunnelled,
            "wlan_non_data_frames": st.wlan_non_data,
            "wlan_protected_frames": st.wlan_protected,
            "wlan_amsdu_frames": st.wlan_amsdu,
            # Cleartext HTTP/2 (prior knowledge or h2c upgrade): frame headers walked, not decoded.
            "http2_connections": eng.h2_ctx.connections,
            "http2_frames": eng.h2_ctx.frames,
            "http2_streams": eng.h2_ctx.streams,
        }
        # The engine's connection columns are handed over, not copied (they would be held twice).
        return Result(
            eng.connections,
            list(eng.anomalies),
            stats,
            list(self._warnings),
            list(eng.http_ctx.records),
            list(eng.tls_ctx.records),
            eng.rtt_samples,
            shard=eng.shard,
        )

    @property
    def engine(self) -> _Engine:
        """The engine itself (open flows, records so far): read by pcapan live's dashboard."""
        return self._engine

    def snapshot(self, *, take: bool = False) -> Result:
        """The records so far, without ending the analysis: finished connections, HTTP and TLS
        rows and anomalies already recorded (open connections have no row yet). ``take=True``
        (pcapan live --rotate) returns only what belongs to finished connections, plus anomalies
        without a connection, and drops it from memory."""
        import numpy as np

        eng, s = self._engine, self._engine.rtt_samples
        conns = eng.connections if take else eng.connections.copy()
        done = set(conns.column("uid")) if take else None

        def part(records: list[Any], uidless: bool = False) -> list[Any]:
            if done is None:
                return list(records)
            mine = [r for r in records if r.uid in done or (uidless and not r.uid)]
            records[:] = [r for r in records if not (r.uid in done or (uidless and not r.uid))]
            return mine

        anomalies, http, tls = (
            part(eng.anomalies, True),
            part(eng.http_ctx.records),
            part(eng.tls_ctx.records),
        )
        samples = RttSamples.merge([s])
        if done is not None:
            eng.connections = ConnColumns()
            cols = samples.columns()
            ids = np.array([i for i, u in enumerate(s.uids) if u in done], dtype=np.int32)
            mask = np.isin(cols["conn"], ids)
            samples = RttSamples()
            kept, conn = np.unique(cols["conn"][mask], return_inverse=True)
            samples.ids([s.uids[i] for i in kept.tolist()])
            samples.add(
                conn.astype(np.int32),
                *(cols[k][mask] for k in ("is_orig", "kind", "ts_ns", "rtt_ns")),
            )
            for k in ("conn", "is_orig", "kind", "ts_ns", "rtt_ns"):
                getattr(s, k)[:] = [cols[k][~mask]] if (~mask).any() else []
            # Only the uids the remaining samples name stay indexed (open connections are
            # looked up by uid at every batch): the index does not grow with every connection.
            keep, renum = np.unique(cols["conn"][~mask], return_inverse=True)
            names = [s.uids[i] for i in keep.tolist()]
            s.uids[:] = names
            s.index.clear()
            s.index.update({u: i for i, u in enumerate(names)})
            if s.conn:
                s.conn[:] = [renum.reshape(-1).astype(np.int32)]
        st = eng.decoder.stats
        stats = {
            "sources": list(self._sources),
            "frames": st.frames,
            "frame_bytes": st.frame_bytes,
            "first_ts_ns": eng.first_ns,
            "last_ts_ns": eng.last_ns,
        }
        return Result(conns, anomalies, stats, list(self._warnings), http, tls, samples)


def _unsupported_linktype_warning(source: str, linktype: int, frames: int) -> str:
    return (
        f"{source}: {frames:,} frame(s) of link type {linktype} not analysed: pcapan does not decode "
        "this link layer (counted only; see https://www.tcpdump.org/linktypes.html)"
    )


def analyze(
    sources: Source | Iterable[Source],
    *,
    progress: Progress | None = None,
    idle_timeout_s: float | None = None,
    shard: tuple[int, int] | None = None,
    on_http_body: BodyHook | None = None,
    max_half_open: int | None = None,
    keylog: KeyLogSource | None = None,
    workers: int | None = None,
    client: Any = None,
) -> Result:
    """Analyse one capture or several (read in the order given, flows continue across files).

    ``max_half_open``: see :class:`Analyzer` (the bound on flows that have only seen SYNs).
    ``keylog``: an NSS key log file (``SSLKEYLOGFILE``) to decrypt TLS with (see
    :class:`Analyzer`); pcapng Decryption Secrets Blocks are used in any case.

    ``workers=N``: N processes, each analysing the flows of one shard (0: one per core; None or 1:
    this process alone). ``client``: a ``distributed.Client`` (or a scheduler address such as
    ``"tcp://host:8786"``) whose workers analyse the shards, one per worker thread, reading the
    files from the same paths. Either way the tables equal this process's (see README,
    Performance: parallel analysis)."""
    if isinstance(sources, (str, os.PathLike)) or hasattr(sources, "read"):
        sources = [sources]  # type: ignore[list-item]
    if _is_parallel(workers, client):
        if shard is not None or on_http_body is not None:
            raise ValueError("shard= and on_http_body= are for one process (not with workers=)")
        return _parallel(
            sources,  # type: ignore[arg-type]
            workers,
            client,
            progress,
            _engine_options(idle_timeout_s, max_half_open, keylog),
        )[0]
    an = Analyzer(
        idle_timeout_s=idle_timeout_s,
        shard=shard,
        on_http_body=on_http_body,
        max_half_open=max_half_open,
        keylog=keylog,
    )
    for s in sources:  # type: ignore[union-attr]
        an.feed_source(s, progress)
    return an.finish()


def extract(
    sources: Source | Iterable[Source],
    directory: str | os.PathLike[str],
    *,
    decode: bool = False,
    progress: Progress | None = None,
    safe_csv: bool = False,
    idle_timeout_s: float | None = None,
    max_half_open: int | None = None,
    keylog: KeyLogSource | None = None,
    workers: int | None = None,
    client: Any = None,
) -> tuple[Result, pd.DataFrame]:
    """Write every HTTP response body into ``directory`` (generated names) with a manifest.csv.

    Bodies are de-chunked; ``decode=True`` also undoes gzip/deflate content coding. Returns the
    analysis result and the manifest (file, uid, trans_depth, uri, content type, size, sha256...).
    ``safe_csv=True`` writes manifest.csv for spreadsheets, as ``export --safe-csv`` does: control
    characters escaped and formula-leading text cells prefixed with ``'`` (the returned DataFrame
    keeps the exact values). ``keylog``, ``workers``, ``client``: as :func:`analyze` (with Dask,
    ``directory`` must be a path the workers can write to).
    """
    import pandas as pd

    from pcapan.export.objects import MANIFEST_FIELDS, BodyWriter

    writer = BodyWriter(directory)
    if isinstance(sources, (str, os.PathLike)) or hasattr(sources, "read"):
        sources = [sources]  # type: ignore[list-item]
    if _is_parallel(workers, client):
        # Each worker writes its shard's bodies under DIR/.shard-i; their part files are then
        # named after the merged http table's rows, as one process names its own.
        res, parts = _parallel(
            sources,  # type: ignore[arg-type]
            workers,
            client,
            progress,
            _engine_options(idle_timeout_s, max_half_open, keylog),
            bodies_dir=os.fspath(directory),
        )
        writer.parts.update(parts)
    else:
        try:
            res = analyze(
                sources,
                progress=progress,
                on_http_body=writer,
                idle_timeout_s=idle_timeout_s,
                max_half_open=max_half_open,
                keylog=keylog,
            )
        finally:
            writer.close()
    rows = writer.finish(res.http, decode=decode, safe_csv=safe_csv)
    for shard_dir in Path(directory).glob(".shard-*"):
        with contextlib.suppress(OSError):
            shard_dir.rmdir()
    return res, pd.DataFrame(rows, columns=list(MANIFEST_FIELDS))


# -- parallel analysis (pcapan.parallel runs the shards; what a shard is and how shards merge
# is decided here) ---------------------------------------------------------------------------

# Stats that each shard counts for its own flows only (so a merge sums them). Every other stat
# (frames, bytes, IP packets, fragments, first and last timestamps, ...) is counted by the decoder,
# which sees every frame before the shard filter: each shard has the whole capture's figure, and
# only shard 0's is kept.
_PER_FLOW_STATS = ("http2_connections", "http2_frames", "http2_streams")
# Anomalies without a connection that a shard makes for its own flows (the half-open bound is
# per analyzer); the others without a uid (decoder, reader) are the whole capture's, as above.
_PER_SHARD_UIDLESS = frozenset({"half_open_evicted"})
# The tables a parallel Parquet export writes as one part per shard: one row per flow or less,
# so the rows of a shard are exactly its flows' rows. servers, clients and missed_reuse
# aggregate the connections of a client-server pair, which lie in several shards: not written.
PARTITIONED_TABLES = ("connections", "http", "tls", "rtt", "anomalies")


@dataclass(frozen=True)
class _ShardSpec:
    """One parallel task: analyse ``sources`` (paths, all of them, in order: a connection that
    continues from one rotated file into the next stays whole) keeping the flows of ``shard``."""

    sources: tuple[str, ...]
    shard: tuple[int, int]
    engine: dict[str, Any]
    parts_dir: str | None = None  # write the PARTITIONED_TABLES there as part files
    keep: bool = True  # return the rows (else only stats and warnings: they are in the parts)
    bodies_dir: str | None = None  # extract: write response bodies under DIR/.shard-i


def _is_parallel(workers: int | None, client: Any) -> bool:
    from pcapan.parallel import worker_count

    return client is not None or worker_count(workers) > 1


def _engine_options(
    idle_timeout_s: float | None, max_half_open: int | None, keylog: KeyLogSource | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if keylog is not None:
        out["keylog"] = keylog
    if idle_timeout_s is not None:
        out["idle_timeout_s"] = idle_timeout_s
    if max_half_open is not None:
        out["max_half_open"] = max_half_open
    return out


class _Wire:
    """A shard's result on its way from a worker to the caller: pickled, its HTTP, TLS and
    anomaly records travel as rows (tuples of their fields) and are rebuilt with the records'
    fast makers. Pickle would otherwise take each frozen slots dataclass through its
    ``__getstate__``/``__setstate__``, field by field: on the real short-connection capture
    0.10 s to send and 0.12 s to receive a half's 9,466 HTTP records, against 0.04 s and
    0.03 s as rows; both ends of that are on the parallel run's critical path. Shard 0, run in
    the caller, is never pickled: ``result`` is the Result itself."""

    __slots__ = ("result",)

    def __init__(self, result: Result) -> None:
        self.result = result

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        r = self.result
        return (
            _from_wire,
            (
                r.connection_records,
                _rows(r.anomaly_records, AnomalyRecord),
                r.stats,
                r.warnings,
                _rows(r.http_records, HttpRecord),
                _rows(r.tls_records, TlsRecord),
                r.rtt_samples,
                r.shard,
            ),
        )


@functools.cache
def _record_fields(cls: type) -> tuple[str, ...]:
    import dataclasses

    return tuple(f.name for f in dataclasses.fields(cls))


def _rows(records: list[Any], cls: type) -> list[tuple[Any, ...]]:
    """Each record as the tuple of its fields, in field order (one C call per record)."""
    if not records:
        return []
    return list(map(attrgetter(*_record_fields(cls)), records))


def _from_wire(
    conns: ConnColumns,
    anomalies: list[tuple[Any, ...]],
    stats: dict[str, Any],
    warns: list[str],
    http: list[tuple[Any, ...]],
    tls: list[tuple[Any, ...]],
    rtt_samples: RttSamples,
    shard: tuple[int, int] | None,
) -> _Wire:
    from itertools import starmap

    from pcapan.model import make_anomaly_record, make_http_record, make_tls_record

    return _Wire(
        Result(
            conns,
            list(starmap(make_anomaly_record, anomalies)),
            stats,
            warns,
            list(starmap(make_http_record, http)),
            list(starmap(make_tls_record, tls)),
            rtt_samples,
            shard=shard,
        )
    )


def _run_shard(spec: _ShardSpec, report: Any) -> tuple[_Wire, dict[tuple[str, int], Path]]:
    """A worker's task (pcapan.parallel): the shard's result, and its extracted body files."""
    from pcapan.export.objects import BodyWriter

    i, _n = spec.shard
    writer = BodyWriter(Path(spec.bodies_dir) / f".shard-{i}") if spec.bodies_dir else None
    an = Analyzer(shard=spec.shard, on_http_body=writer, **spec.engine)
    try:
        for k, src in enumerate(spec.sources):

            def progress(name: str, done: int, total: int | None, k: int = k) -> None:
                report(k, name, done, total)

            an.feed_source(src, progress if report.active else None)
            report.flush()
    finally:
        if writer is not None:
            writer.close()
    # (What shard 0 has as well is dropped here already: the parts files must not repeat it,
    # and it need not travel.)
    res = _shard_own(an.finish())
    if spec.parts_dir is not None:
        _write_parts(res, Path(spec.parts_dir), i)
    if not spec.keep:
        res = Result(ConnColumns(), [], res.stats, res.warnings, shard=res.shard)
    return _Wire(res), (dict(writer.parts) if writer is not None else {})


def _part_name(shard: int) -> str:
    # Zero-padded: the parts list in shard order by name.
    return f"part-{shard:04d}.parquet"


def _write_parts(res: Result, directory: Path, shard: int) -> None:
    """The shard's PARTITIONED_TABLES as DIR/<table>/part-NNNN.parquet, every part with the
    schema's Arrow types (an empty part as well), so that a reader sees one schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pcapan.errors import ExportError

    for name in PARTITIONED_TABLES:
        df = res._table(name)
        schema = pa.schema([(c.name, _arrow_type(c.dtype)) for c in TABLES[name]])
        table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
        path = directory / name / _part_name(shard)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
        except OSError as exc:
            raise ExportError(f"{path}: cannot write ({exc.strerror})") from None


def _arrow_type(dtype: str) -> Any:
    import pyarrow as pa

    return {
        TS: pa.timestamp("ns", tz="UTC"),
        "string": pa.large_string(),
        "Int64": pa.int64(),
        "float64": pa.float64(),
        "boolean": pa.bool_(),
    }[dtype]


def _parallel(
    sources: Iterable[Source],
    workers: int | None,
    client: Any,
    progress: Progress | None,
    engine: dict[str, Any],
    *,
    parts_dir: str | None = None,
    keep: bool = True,
    bodies_dir: str | None = None,
) -> tuple[Result, dict[tuple[str, int], Path]]:
    """Analyse ``sources`` in shards (pcapan.parallel) and merge the parts as they come."""
    from pcapan.errors import ParallelError
    from pcapan.parallel import connect, run, worker_count

    paths: list[str] = []
    for s in sources:
        if not isinstance(s, (str, os.PathLike)) or os.fspath(s) == "-":
            raise ParallelError(
                "a parallel analysis reads the captures in every worker: give file paths "
                "(not standard input or a file object)"
            )
        paths.append(os.fspath(s))
    own = isinstance(client, str)
    if own:
        client = connect(client)
    try:
        if client is not None:
            # One shard per worker thread of the cluster, unless told.
            n = workers if workers else max(1, sum(client.nthreads().values()))
        else:
            n = worker_count(workers)
        specs = [
            _ShardSpec(tuple(paths), (i, n), engine, parts_dir, keep, bodies_dir) for i in range(n)
        ]
        fold = _Fold()
        bodies: dict[tuple[str, int], Path] = {}

        def add(_i: int, out: tuple[_Wire, dict[tuple[str, int], Path]]) -> None:
            fold.add(out[0].result)
            bodies.update(out[1])

        run(_run_shard, specs, add, client=client, progress=progress)
    finally:
        if own:
            client.close()
    return fold.result(), bodies


def export_parts(
    sources: Source | Iterable[Source],
    directory: str | os.PathLike[str],
    *,
    workers: int | None = 0,
    client: Any = None,
    progress: Progress | None = None,
    idle_timeout_s: float | None = None,
    max_half_open: int | None = None,
    keylog: KeyLogSource | None = None,
    gather: bool = False,
) -> tuple[Result, list[Path]]:
    """A parallel analysis whose workers write its per-flow tables as partitioned Parquet:
    ``directory/<table>/part-NNNN.parquet``, one part per shard, for each of PARTITIONED_TABLES,
    plus ``directory/manifest.json``. ``dask.dataframe.read_parquet(directory + "/connections")``
    reads a table back without holding it whole. The rows are not sent back unless
    ``gather=True`` (then the returned Result has them all; else only its stats and warnings).
    Part files of an earlier export into the same directory are removed first."""
    if isinstance(sources, (str, os.PathLike)) or hasattr(sources, "read"):
        sources = [sources]  # type: ignore[list-item]
    from pcapan.export.files import MANIFEST, describe_source
    from pcapan.frames.schema import SCHEMA_VERSION

    out = Path(directory)
    for name in PARTITIONED_TABLES:
        for old in (out / name).glob("part-*.parquet"):
            old.unlink()
    res, _ = _parallel(
        sources,  # type: ignore[arg-type]
        workers if workers is not None else 0,
        client,
        progress,
        _engine_options(idle_timeout_s, max_half_open, keylog),
        parts_dir=os.fspath(out),
        keep=gather,
    )
    import json

    import pyarrow.parquet as pq

    tables: dict[str, Any] = {}
    written: list[Path] = []
    for name in PARTITIONED_TABLES:
        parts = sorted((out / name).glob("part-*.parquet"))
        rows = [pq.read_metadata(p).num_rows for p in parts]
        tables[name] = {
            "directory": name,
            "table": name,
            "rows": sum(rows),
            "parts": [
                {"file": f"{name}/{p.name}", "rows": r} for p, r in zip(parts, rows, strict=True)
            ],
        }
        written.extend(parts)
    manifest = {
        "pcapan_version": _version(),
        "schema_version": SCHEMA_VERSION,
        "format": "parquet",
        "partitioned": True,
        "safe_csv": False,
        "sources": [describe_source(str(s)) for s in res.stats.get("sources", [])],
        "tables": tables,
    }
    mpath = out / MANIFEST
    mpath.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return res, [*written, mpath]


def _version() -> str:
    from pcapan import __version__

    return __version__
