"""Thin command line: each verb is one library call plus rendering."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pcapan import __version__, _build
from pcapan.config import LIVE_DASHBOARD_REFRESH_S
from pcapan.errors import PcapanError, PcapanWarning

if TYPE_CHECKING:
    from pcapan.api import Result

EXIT_USAGE = 2
# Table file formats of `export` and `analyze -o` ("json" is the older name of "jsonl").
EXPORT_FORMATS = ["csv", "parquet", "jsonl", "json", "zeek"]
# `analyze --format`: what the terminal shows (table, json) or, with -o, the table file format;
# json means both (the summary as JSON, the files as JSON Lines), as it did before table existed.
TERMINAL_FORMATS = ["table", "json"]
ANALYZE_FORMATS = [*TERMINAL_FORMATS, *(f for f in EXPORT_FORMATS if f not in TERMINAL_FORMATS)]
# Where `pcapan report` writes without -o (the working directory, like `pcapan plot`).
REPORT_DEFAULT_OUTPUT = "pcapan-report.html"
# Files smaller than this finish before a progress bar would be worth drawing.
PROGRESS_MIN_BYTES = 32 * 1024 * 1024
# Rows escaped and written at a time by --format csv on stdout: bounds the copy it makes.
CSV_STDOUT_CHUNK_ROWS = 20_000


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (the verb, the message and where to look),
    like every other error of pcapan; the usage text itself is for --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="pcapan",
        description="Analyse packet captures: TCP connections, HTTP/1.1 reuse and pipelining, TLS, round trips.",
    )
    p.add_argument(
        "--version",
        action="version",
        version=f"pcapan {__version__} ({_build.describe()})",
        help="print the version and the build (compiled core or pure Python) and exit",
    )
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    a = sub.add_parser(
        "analyze", help="analyse captures, print a summary, optionally write the tables"
    )
    a.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="pcap/pcapng, optionally .gz/.bz2/.xz/.zst; '-' reads stdin",
    )
    a.add_argument("-o", "--output", metavar="DIR", help="write every table into DIR")
    a.add_argument(
        "--format",
        choices=ANALYZE_FORMATS,
        default=None,
        help="table (default): terminal tables; json: the summary as JSON and, with -o, the tables as JSON Lines; "
        "csv, parquet, jsonl, zeek: the file format for -o (default csv), with terminal tables",
    )
    a.add_argument(
        "--safe-csv",
        action="store_true",
        help="with -o and csv: neutralise spreadsheet formulas in text cells",
    )
    a.add_argument(
        "--json",
        action="store_true",
        help="print the summary as JSON (alias of --format json for the terminal; -o keeps its --format)",
    )
    a.add_argument("--no-progress", action="store_true", help="never draw a progress bar")
    _engine_options(a)
    _parallel_options(a)

    for verb, what, default in (
        ("connections", "the connections table", "the Zeek conn.log core"),
        (
            "http",
            "the http table (one row per request/response pair)",
            "method, host, uri, status, sizes, timing",
        ),
        (
            "tls",
            "the tls table (one row per handshake)",
            "version, cipher, SNI, ALPN, resumption, round trips",
        ),
        ("rtt", "the rtt table (one row per round-trip sample)", "every column"),
        (
            "servers",
            "the servers table (one row per client-server pair)",
            "pair, connections, requests, reuse, budget",
        ),
        (
            "findings",
            "the findings table (what a performance and security review would point at)",
            "severity, kind, server, occurrences, cost_s, summary",
        ),
    ):
        c = sub.add_parser(verb, help=f"print {what}")
        c.add_argument("files", nargs="+", metavar="FILE", help="capture files ('-' reads stdin)")
        c.add_argument(
            "--format",
            choices=["table", "csv", "json"],
            default="table",
            help="output format (default: a terminal table)",
        )
        c.add_argument(
            "--columns",
            metavar="A,B,...",
            help=f"comma-separated columns to show, in this order (default for the terminal: "
            f"{default}; for csv and json: every column); see 'pcapan schema {verb}'",
        )
        c.add_argument(
            "--wide",
            action="store_true",
            help="--format table: every column (or those of --columns) at full width, lines as "
            "long as they need (for 'less -S'); without it the table fits the terminal: columns "
            "that do not fit are left out and named below it, long text ends in '…'",
        )
        c.add_argument(
            "--limit",
            type=_positive_int,
            metavar="N",
            help="show the first N rows (1 or more; without it, every row)",
        )
        if verb == "findings":
            c.add_argument(
                "--threshold",
                action="append",
                default=[],
                metavar="NAME=VALUE",
                help="override a threshold, repeatable (names: FINDINGS_* in pcapan/config.py, lower case without the prefix, e.g. think_time_s=0.2)",
            )
        _engine_options(c)
        _parallel_options(c)

    e = sub.add_parser(
        "export",
        help="analyse captures and write every table (csv, parquet, jsonl, Zeek logs) with a manifest.json",
    )
    e.add_argument("files", nargs="+", metavar="FILE", help="capture files ('-' reads stdin)")
    e.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        required=True,
        help="directory for the table files and manifest.json",
    )
    e.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="csv",
        help="file format (default csv; zeek writes conn/http/ssl/weird.log)",
    )
    e.add_argument(
        "--safe-csv",
        action="store_true",
        help="for spreadsheets: escape control characters and prefix text cells that begin with = + - @ TAB CR or ' with a ' (CSV injection)",
    )
    _engine_options(e)
    _parallel_options(e)

    x = sub.add_parser(
        "extract", help="write every HTTP response body to a file, with a manifest.csv"
    )
    x.add_argument("files", nargs="+", metavar="FILE", help="capture files ('-' reads stdin)")
    x.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        required=True,
        help="directory for the bodies and manifest.csv",
    )
    x.add_argument(
        "--decode",
        action="store_true",
        help="undo gzip/deflate Content-Encoding (bodies are always de-chunked)",
    )
    x.add_argument(
        "--safe-csv",
        action="store_true",
        help="manifest.csv for spreadsheets: escape control characters and prefix text cells that begin with = + - @ TAB CR or ' with a '",
    )
    _engine_options(x)
    _parallel_options(x)

    from pcapan.plot import KINDS as PLOT_KINDS

    g = sub.add_parser(
        "plot",
        help="draw a figure (waterfall, rtt, budget, reuse, pipelining, tls, timeseq, io) to PNG/SVG/PDF",
    )
    g.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="capture files (timeseq and io re-read them: not stdin)",
    )
    g.add_argument(
        "--kind", choices=PLOT_KINDS, required=True, help="which figure (see README, Plots)"
    )
    g.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="image file; the format comes from its extension: .png, .svg or .pdf (default pcapan-KIND.png)",
    )
    g.add_argument(
        "--uid",
        help="waterfall: only this connection; timeseq: the connection (default: the one with most payload); io: one connection instead of all TCP",
    )
    g.add_argument(
        "--limit",
        type=_positive_int,
        metavar="N",
        help="1 or more; waterfall: N requests (default 60, at most 200); budget, rtt --by-server: N servers; reuse: N client-server pairs; pipelining: N responses; tls: N cipher suites",
    )
    # waterfall: which requests to draw (default: the slowest, when not all fit)
    g.add_argument(
        "--since",
        metavar="T",
        help="waterfall: requests that start at or after T (seconds since the capture's start, or a date-time such as 2026-01-02T03:04:05, UTC unless a zone is given)",
    )
    g.add_argument(
        "--until",
        metavar="T",
        help="waterfall: requests that start before T (as --since)",
    )
    g.add_argument(
        "--server",
        metavar="NAME",
        help="waterfall: requests to this server (Host, SNI, address or address:port)",
    )
    g.add_argument(
        "--order",
        choices=["slowest", "time"],
        help="waterfall: slowest first (each row from its own start) or in time order (default: slowest when not all requests fit and no --since/--until/--server/--uid is given)",
    )
    g.add_argument(
        "--direction",
        choices=["auto", "orig", "resp"],
        help="timeseq: whose data to draw (default auto: the direction with more payload)",
    )
    g.add_argument(
        "--by-server",
        action="store_true",
        help="rtt: one CDF/histogram group per server and direction",
    )
    _engine_options(g)
    _parallel_options(g)

    r = sub.add_parser(
        "report",
        help="write one self-contained HTML report: summary, plots, servers, TLS, anomalies",
    )
    r.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="capture files ('-' reads stdin; the io and timeseq plots then are skipped)",
    )
    r.add_argument(
        "-o",
        "--output",
        metavar="OUT.html",
        default=REPORT_DEFAULT_OUTPUT,
        help=f"the HTML file (default {REPORT_DEFAULT_OUTPUT})",
    )
    r.add_argument("--title", help="the page's title (default: pcapan report)")
    r.add_argument("--no-plots", action="store_true", help="leave the plots out (faster)")
    # the full tables beside the page
    r.add_argument(
        "--no-tables",
        action="store_true",
        help="do not write every table as CSV into OUT_files/ beside the page (the page then shows the top rows only, without links)",
    )
    r.add_argument("--no-progress", action="store_true", help="never draw a progress bar")
    _engine_options(r)
    _parallel_options(r)

    lv = sub.add_parser(
        "live",
        help="capture on a network interface and analyse as packets arrive (dashboard, tables at the end)",
    )
    lv.add_argument(
        "-i",
        "--interface",
        required=True,
        metavar="IFACE",
        help="network interface to capture on (e.g. eth0, lo)",
    )
    lv.add_argument(
        "--filter",
        metavar="BPF",
        help="capture filter in tcpdump syntax, applied in the kernel (e.g. 'tcp port 443')",
    )
    lv.add_argument(
        "--duration", type=_positive_seconds, metavar="S", help="stop after S seconds (more than 0)"
    )
    lv.add_argument(
        "--count", type=_positive_int, metavar="N", help="stop after N packets (1 or more)"
    )
    lv.add_argument(
        "--write",
        metavar="FILE",
        help="save the captured packets: pcapng, or pcap for a .pcap name",
    )
    lv.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="write every table into DIR when the capture ends (or in parts with --rotate)",
    )
    lv.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="csv",
        help="table file format for -o (default csv)",
    )
    lv.add_argument(
        "--safe-csv",
        action="store_true",
        help="with -o and csv: neutralise spreadsheet formulas in text cells",
    )
    lv.add_argument(
        "--interval",
        type=_positive_seconds,
        default=LIVE_DASHBOARD_REFRESH_S,
        metavar="S",
        help=f"seconds between dashboard refreshes (default {LIVE_DASHBOARD_REFRESH_S:g})",
    )
    lv.add_argument(
        "--no-dashboard",
        action="store_true",
        help="no live terminal view (it is off anyway when stdout is not a terminal)",
    )
    lv.add_argument(
        "--rotate",
        metavar="SPEC",
        help="with -o: write the tables in parts, every 30s/10m/1h or every Nrows finished connections (e.g. 100000rows), and drop them from memory",
    )
    _engine_options(lv)

    s = sub.add_parser("schema", help="print every table's columns with type, unit and description")
    s.add_argument("table", nargs="?", help="only this table")
    s.add_argument(
        "--format", choices=["table", "json", "markdown"], default="table", help="output format"
    )
    return p


def _engine_options(p: argparse.ArgumentParser) -> None:
    """The analysis options of every verb that analyses (the library's defaults when left out)."""
    p.add_argument(
        "--idle-timeout",
        type=_positive_seconds,
        metavar="S",
        help="seconds of silence that end a connection (more than 0; default 300, as Zeek)",
    )
    p.add_argument(
        "--max-half-open",
        type=_non_negative_int,
        metavar="N",
        help="half-open flows (only SYNs seen) kept at once; past N the oldest are finalised early, their rows flagged evicted (default 100000; 0: no bound)",
    )
    _keylog_option(p)


def _keylog_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keylog",
        metavar="FILE",
        help="NSS key log (SSLKEYLOGFILE) to decrypt TLS with: decrypted HTTP goes to the http table (tls true), the TLS 1.3 handshake to the tls table; pcapng Decryption Secrets Blocks are used without it",
    )


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _parallel_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=_non_negative_int,
        metavar="N",
        help="analyse in N processes, each taking the flows of one shard (0: one per core; default 1); the tables are the same",
    )
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:8786",
        help="run the shards on this Dask scheduler's workers, one per worker thread (--workers N: N shards); they read the files from the same paths (pip install 'pcapan[dask]')",
    )


def _non_negative_int(text: str) -> int:
    n = _integer(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be 0 or more")
    return n


def _positive_int(text: str) -> int:
    """A count or a limit: 0 would mean nothing to show (or, elsewhere, no bound), so it is
    refused rather than guessed; leaving the option out means no limit."""
    n = _integer(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be 1 or more")
    return n


def _positive_seconds(text: str) -> float:
    """A time in seconds: finite and more than 0 (an idle timeout of 0 or less ended a
    connection at every packet: 1 connection became 175)."""
    import math

    try:
        s = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(s) and s > 0):
        raise argparse.ArgumentTypeError(f"{text}: must be a number of seconds more than 0")
    return s


def _output_file(path: str | Path) -> Path:
    """An output file's path, its directory created as `export` creates its own (one rule for
    every verb that writes); a directory where the file should go, or a directory that cannot
    be made, is one line, before any analysis."""
    out = Path(path)
    if out.is_dir():
        raise PcapanError(f"{out}: is a directory; give a file name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PcapanError(f"cannot create the directory of {out}: {exc.strerror or exc}") from None
    return out


def _engine_kw(args: argparse.Namespace) -> dict[str, Any]:
    """Analysis options common to the verbs that analyse."""
    kw: dict[str, Any] = {}
    if args.max_half_open is not None:
        kw["max_half_open"] = args.max_half_open
    if args.idle_timeout is not None:
        kw["idle_timeout_s"] = args.idle_timeout
    if getattr(args, "keylog", None):
        kw["keylog"] = _read_keylog(args.keylog)
    if getattr(args, "workers", None) is not None:
        kw["workers"] = args.workers
    if getattr(args, "scheduler", None):
        kw["client"] = args.scheduler
    return kw


def _partitioned(args: argparse.Namespace) -> bool:
    """-o DIR --format parquet of a parallel run: the workers write the parts (pcapan.api.export_parts)."""
    from pcapan.parallel import worker_count

    parallel = bool(getattr(args, "scheduler", None)) or worker_count(args.workers) > 1
    return parallel and bool(args.output) and args.format == "parquet"


def _read_keylog(path: str) -> Any:
    from pcapan.proto.tls_keylog import load_keylog

    try:
        return load_keylog(path)
    except OSError as exc:
        raise PcapanError(f"cannot read key log {path!r}: {exc.strerror or exc}") from None


def _progress_analyze(files: Sequence[str], show: bool, fn: Any = None, **kw: Any):  # noqa: ANN202
    """``fn(files, progress=..., **kw)`` (default pcapan.api.analyze) with a progress bar."""
    import os

    from pcapan.api import analyze

    if fn is not None:
        analyze = fn

    big = (
        show
        and sys.stderr.isatty()
        and any(
            f != "-" and os.path.exists(f) and os.path.getsize(f) >= PROGRESS_MIN_BYTES
            for f in files
        )
    )
    if not big:
        return analyze(files, **kw)
    from rich.console import Console
    from rich.markup import escape

    # On stderr, so that stdout stays clean for the summary or a pipe.
    with _progress_bar(Console(stderr=True)) as bar:
        tasks: dict[str, Any] = {}

        def cb(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                # The base name, like curl and wget: a long path would squeeze the bar out of the
                # line. Escaped, since a file name may contain rich markup such as "[red]".
                tasks[name] = bar.add_task(escape(os.path.basename(name)), total=total)
            bar.update(tasks[name], completed=done)

        return analyze(files, progress=cb, **kw)


def _progress_bar(console: Any, get_time: Callable[[], float] | None = None) -> Any:  # noqa: ANN401
    """The bar of a long analysis: file name, bar and bytes read of the file, and the time
    elapsed. No time remaining: it could only come from bytes read, and the work per byte
    varies several-fold within a capture (bulk transfers are cheap, short connections are not),
    so a byte-based ETA was wrong where it mattered: 0:00:01 for the last 5 s of a 6 s run
    (issue 15)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=console,
        get_time=get_time,
    )


def _analyze_formats(args: argparse.Namespace) -> tuple[str, str]:
    """(terminal format, file format for -o) from --format and --json."""
    fmt = args.format
    if fmt not in (None, *TERMINAL_FORMATS) and not args.output:
        raise PcapanError(f"--format {fmt} is a file format: it needs -o DIR")
    terminal = "json" if args.json or fmt == "json" else "table"
    return terminal, "csv" if fmt in (None, "table") else fmt


def _cmd_analyze(args: argparse.Namespace) -> int:
    from pcapan.render import print_analysis

    terminal, args.format = _analyze_formats(args)
    _check_export_args(args)
    kw: dict[str, Any] = _engine_kw(args)
    parts = _partitioned(args)
    res = _progress_analyze(
        args.files, not args.no_progress, _parts_fn(args, True) if parts else None, **kw
    )
    for w in res.warnings:
        print(f"pcapan: warning: {w}", file=sys.stderr)
    if terminal == "json":
        print(json.dumps(res.summary(), indent=2, default=str))
    else:
        print_analysis(res)
    if args.output and not parts:
        _write_export(res, args)
    return 0


def _parts_fn(args: argparse.Namespace, gather: bool) -> Any:
    """The analysis of a partitioned export: its result (with rows when ``gather``)."""
    from pcapan.api import export_parts

    def run(files: Sequence[str], **kw: Any) -> Result:
        res, paths = export_parts(files, args.output, gather=gather, **kw)
        print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
        return res

    return run


def _check_export_args(args: argparse.Namespace) -> None:
    """Refuse --safe-csv where it means nothing, before spending time on the analysis."""
    if args.safe_csv and not args.output:
        raise PcapanError("--safe-csv needs -o DIR")
    if args.safe_csv and args.format != "csv":
        raise PcapanError("--safe-csv applies to --format csv only")


def _write_export(res: Result, args: argparse.Namespace) -> list[Path]:
    """The shared part of `export` and `analyze -o`: every table into args.output."""
    paths = res.export(args.output, args.format, safe_csv=args.safe_csv)
    print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return paths


def _cmd_export(args: argparse.Namespace) -> int:
    _check_export_args(args)
    parts = _partitioned(args)
    res = _progress_analyze(
        args.files, True, _parts_fn(args, False) if parts else None, **_engine_kw(args)
    )
    for w in res.warnings:
        print(f"pcapan: warning: {w}", file=sys.stderr)
    if not parts:
        _write_export(res, args)
    return 0


def _cmd_table(args: argparse.Namespace) -> int:
    import pandas as pd

    from pcapan.api import analyze

    if args.wide and args.format != "table":
        raise PcapanError("--wide applies to --format table (csv and json have every column)")
    res = analyze(args.files, **_engine_kw(args))
    for w in res.warnings:
        print(f"pcapan: warning: {w}", file=sys.stderr)
    name = args.verb
    df = getattr(res, name)  # only this table (and what it is built from), not every table
    if getattr(args, "threshold", None):
        from pcapan.frames.findings import parse_thresholds

        try:
            df = res.findings_with(parse_thresholds(args.threshold))
        except ValueError as exc:
            raise PcapanError(str(exc)) from None
    total = len(df)
    keep: list[str] | None = None
    if args.columns:
        cols = [c.strip() for c in args.columns.split(",") if c.strip()]
        if not cols:
            raise PcapanError("--columns names no column (e.g. --columns uid,orig_h)")
        unknown = [c for c in cols if c not in df.columns]
        if unknown:
            raise PcapanError(
                f"unknown column(s): {', '.join(unknown)} (see 'pcapan schema {name}')"
            )
        df = df[cols]
    elif args.format == "table" and not args.wide:
        from pcapan.render import TERMINAL_COLUMNS

        shown, order = TERMINAL_COLUMNS[name]
        df, keep = df[list(shown)], list(order)
    if args.limit is not None:
        df = df.head(args.limit)
    if args.format == "csv":
        # Text for a terminal or a pipe that may end in one: captured strings with control
        # characters escaped as in the table view (pcapan export writes exact files).
        # Escaped a slice at a time: a copy of the whole table would double the peak memory of
        # a big capture (200,000 rows: +180 MB).
        from pcapan.frames.text import printable

        text_cols = [
            c
            for c in df.columns
            if df[c].dtype == object or isinstance(df[c].dtype, pd.StringDtype)
        ]
        for start in range(0, max(len(df), 1), CSV_STDOUT_CHUNK_ROWS):
            part = df.iloc[start : start + CSV_STDOUT_CHUNK_ROWS].copy()
            for c in text_cols:
                part[c] = part[c].map(lambda v: printable(v) if isinstance(v, str) else v)
            part.to_csv(sys.stdout, index=False, header=start == 0)
    elif args.format == "json":
        # JSON escapes control characters itself (\u001b; the values stay exact), except DEL.
        text = df.to_json(orient="records", lines=True, date_format="iso", date_unit="ns")
        sys.stdout.write(text.replace("\x7f", "\\u007f"))
    else:
        from pcapan.render import print_table

        counted = f"first {len(df):,} of {total:,}" if len(df) < total else f"{total:,}"
        print_table(df, f"{name} ({counted})", keep_order=keep, wide=args.wide)
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    from pcapan.api import extract

    res, manifest = extract(
        args.files, args.output, decode=args.decode, safe_csv=args.safe_csv, **_engine_kw(args)
    )
    for w in res.warnings:
        print(f"pcapan: warning: {w}", file=sys.stderr)
    total = int(manifest["size"].sum()) if len(manifest) else 0
    print(f"wrote {len(manifest)} object(s), {total:,} bytes, and manifest.csv to {args.output}")
    return 0


# Image formats `pcapan plot` writes, chosen by the output file's extension.
PLOT_FORMATS = ("png", "svg", "pdf")


def _cmd_plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pcapan.api import analyze
    from pcapan.plot import PACKET_KINDS

    kind = args.kind
    out = Path(args.output or f"pcapan-{kind}.png")
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in PLOT_FORMATS:
        raise PcapanError(f"cannot tell the image format of {str(out)!r}: use .png, .svg or .pdf")
    misuse = [
        opt
        for opt, given, kinds in (
            (
                "--limit",
                args.limit is not None,
                ("waterfall", "budget", "rtt", "reuse", "pipelining", "tls"),
            ),
            ("--uid", args.uid is not None, ("waterfall", "timeseq", "io")),
            ("--direction", args.direction is not None, ("timeseq",)),
            ("--by-server", args.by_server, ("rtt",)),
            *(
                (f"--{o}", getattr(args, o) is not None, ("waterfall",))
                for o in ("since", "until", "server", "order")
            ),
        )
        if given and kind not in kinds
    ]
    if misuse:
        raise PcapanError(f"{', '.join(misuse)} does not apply to --kind {kind}")
    if kind in PACKET_KINDS and "-" in args.files:
        raise PcapanError(f"--kind {kind} re-reads the capture: give file names, not '-'")
    out = _output_file(out)
    res = analyze(args.files, **_engine_kw(args))
    for w in res.warnings:
        print(f"pcapan: warning: {w}", file=sys.stderr)
    opts: dict[str, Any] = {}
    if args.limit is not None:
        opts["limit"] = args.limit
    if args.by_server:
        opts["by_server"] = True
    if args.direction is not None:
        opts["direction"] = args.direction
    for o in ("since", "until", "server", "order"):
        if getattr(args, o) is not None:
            opts[o] = getattr(args, o)
    if kind in PACKET_KINDS:
        opts["source"] = args.files
    uid = args.uid
    if kind == "timeseq" and uid is None:
        from pcapan.frames.pick import biggest_connection

        uid = biggest_connection(res.connections)
        if uid is None:
            raise PcapanError("no TCP connection to draw")
        print(
            f"pcapan: timeseq of {uid} (the connection with most payload; choose one with --uid)",
            file=sys.stderr,
        )
    if uid is not None:
        opts["uid"] = uid
    fig = res.plot(kind, **opts)
    # No creation date in SVG/PDF: the same capture gives the same file.
    fig.savefig(out, format=fmt, metadata={"Date": None} if fmt in ("svg", "pdf") else None)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from pcapan.report import write_report

    args.output = _output_file(args.output)
    res = _progress_analyze(args.files, not args.no_progress, **_engine_kw(args))
    for w in res.warnings:
        print(f"pcapan: warning: {w}", file=sys.stderr)
    out = write_report(
        res, args.output, title=args.title, plots=not args.no_plots, tables=not args.no_tables
    )
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _cmd_live(args: argparse.Namespace) -> int:
    from pcapan.live import LiveCapture
    from pcapan.render import print_analysis

    if args.write:
        args.write = str(_output_file(args.write))
    analyzer = None
    if args.keylog:
        import pcapan

        # The key log is reread as it grows (clients append as they connect).
        analyzer = pcapan.Analyzer(
            idle_timeout_s=args.idle_timeout, max_half_open=args.max_half_open
        )
        try:
            analyzer.use_keylog(args.keylog, follow=True)
        except OSError as exc:
            raise PcapanError(
                f"cannot read key log {args.keylog!r}: {exc.strerror or exc}"
            ) from None
    cap = LiveCapture(
        args.interface,
        analyzer=analyzer,
        bpf_filter=args.filter,
        duration_s=args.duration,
        count=args.count,
        write=args.write,
        output=args.output,
        fmt=args.format,
        safe_csv=args.safe_csv,
        interval_s=args.interval,
        rotate=args.rotate,
        idle_timeout_s=args.idle_timeout,
        max_half_open=args.max_half_open,
    )
    print(
        f"pcapan: capturing on {args.interface}"
        + (f" ({args.filter})" if args.filter else "")
        + "; Ctrl-C to stop",
        file=sys.stderr,
    )
    res = cap.run(dashboard=sys.stdout.isatty() and not args.no_dashboard)
    for w in res.warnings:
        print(f"pcapan: warning: {w}", file=sys.stderr)
    print_analysis(res)
    st = res.stats["live"]
    print(
        f"pcapan: live: {st['packets']:,} packets ({st['bytes']:,} bytes) on {st['interface']} in "
        f"{st['duration_s']:.1f} s, stopped by {st['stopped_by']}; kernel: {st['kernel_packets']:,} received, "
        f"{st['kernel_drops']:,} dropped",
        file=sys.stderr,
    )
    written = [str(p) for p in st.get("parts", [])] or ([args.output] if args.output else [])
    written += [args.write] if args.write else []
    if written:
        print(f"wrote {', '.join(written)}", file=sys.stderr)
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from pcapan.frames.schema import TABLES

    tables = TABLES
    if args.table:
        if args.table not in TABLES:
            raise PcapanError(f"unknown table {args.table!r} (tables: {', '.join(TABLES)})")
        tables = {args.table: TABLES[args.table]}
    if args.format == "json":
        print(
            json.dumps(
                {
                    t: [
                        {"name": c.name, "dtype": c.dtype, "unit": c.unit, "doc": c.doc}
                        for c in cols
                    ]
                    for t, cols in tables.items()
                },
                indent=2,
            )
        )
    elif args.format == "markdown":
        for t, cols in tables.items():
            print(f"### {t}\n\n| column | type | unit | description |\n|---|---|---|---|")
            for c in cols:
                print(f"| `{c.name}` | {c.dtype} | {c.unit} | {c.doc} |")
            print()
    else:
        from pcapan.render import print_schema

        print_schema(tables)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # pcapan's Python warnings are also in Result.warnings, which every verb prints as one
    # "pcapan: warning:" line; Python's own rendering would print each a second time.
    warnings.filterwarnings("ignore", category=PcapanWarning)
    handlers = {
        "analyze": _cmd_analyze,
        "connections": _cmd_table,
        "http": _cmd_table,
        "tls": _cmd_table,
        "rtt": _cmd_table,
        "servers": _cmd_table,
        "findings": _cmd_table,
        "extract": _cmd_extract,
        "export": _cmd_export,
        "plot": _cmd_plot,
        "report": _cmd_report,
        "live": _cmd_live,
        "schema": _cmd_schema,
    }
    try:
        return handlers[args.verb](args)
    except PcapanError as exc:
        print(f"pcapan: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("pcapan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        # A file that cannot be written (disk full, permissions): one line, as for bad input.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"pcapan: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
