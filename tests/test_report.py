"""The HTML report: self-contained, escaped, complete, and checked in a real browser.

The hostile capture is built here (scapy, tests/tcpgen.py): every string a page could be
attacked with comes from packets whose bytes this file writes, so the expected text is known
without asking pcapan. The browser is headless Chromium (Debian's ``chromium``, installed by
.ci/run); its tests skip with the reason when it is absent.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

import pcapan
from pcapan.report import facts, page, template
from pcapan.report.figures import PLOTS

from .tcpgen import Conv, write

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (Debian package chromium; .ci/run installs it)",
)
# Seconds a headless Chromium run may take (it starts a browser per call: ~1-3 s here).
BROWSER_TIMEOUT_S = 120

# -- the hostile capture ------------------------------------------------------------------------
# Each payload, if it ever ran, would set the page title to PWNED.
EFFECT = "PWNED"
URI_XSS = f"/<script>document.title='{EFFECT}'</script>\"><svg/onload=document.title='{EFFECT}'>"
HOST_XSS = f"<img src=x onerror=\"document.title='{EFFECT}'\">"
SNI_XSS = f"<script>document.title='{EFFECT}'</script>"
UA = "pcapan-test"
CLIENT, SERVER = "10.0.0.1", "10.0.0.2"


def _record(ctype: int, body: bytes) -> bytes:
    return bytes([ctype]) + b"\x03\x03" + len(body).to_bytes(2, "big") + body


def _handshake(mtype: int, body: bytes) -> bytes:
    return _record(22, bytes([mtype]) + len(body).to_bytes(3, "big") + body)


def _ext(etype: int, data: bytes) -> bytes:
    return etype.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


def client_hello(sni: bytes) -> bytes:
    """TLS 1.2 ClientHello (RFC 5246 7.4.1.2) with one server_name (RFC 6066 3) and one suite."""
    name = b"\x00" + len(sni).to_bytes(2, "big") + sni
    exts = _ext(0, len(name).to_bytes(2, "big") + name)
    body = (
        b"\x03\x03"
        + b"R" * 32
        + b"\x00"
        + b"\x00\x02\xc0\x2f"
        + b"\x01\x00"
        + len(exts).to_bytes(2, "big")
        + exts
    )
    return _handshake(1, body)


def server_hello() -> bytes:
    """TLS 1.2 ServerHello selecting 0xc02f (ECDHE-RSA-AES128-GCM-SHA256)."""
    return _handshake(2, b"\x03\x03" + b"r" * 32 + b"\x00" + b"\xc0\x2f" + b"\x00")


def build_hostile(path: Path) -> Path:
    """Connection A (40000 -> 80): ``GET URI_XSS`` with ``Host: HOST_XSS``, answered 200 with a
    2-byte body, closed. Connection B (40001 -> 443): a ClientHello with SNI_XSS and the
    ServerHello, closed."""
    a = Conv(client=CLIENT, server=SERVER, cport=40000, sport=80)
    a.handshake()
    a.send(
        True,
        "PA",
        b"GET "
        + URI_XSS.encode()
        + b" HTTP/1.1\r\nHost: "
        + HOST_XSS.encode()
        + b"\r\nUser-Agent: "
        + UA.encode()
        + b"\r\n\r\n",
    )
    a.send(False, "PA", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    a.send(True, "A")
    a.close()
    b = Conv(
        client=CLIENT, server=SERVER, cport=40001, sport=443, t=a.t + 0.1, cisn=7000, sisn=9000
    )
    b.handshake()
    b.send(True, "PA", client_hello(SNI_XSS.encode()))
    b.send(False, "PA", server_hello())
    b.send(True, "A")
    b.close()
    return write(path, [a, b])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[pcapan.Result, Path, str]:
    d = tmp_path_factory.mktemp("hostile")
    cap = build_hostile(d / "hostile.pcap")
    res = pcapan.analyze(cap)
    out = res.report(d / "report.html")
    return res, out, out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[pcapan.Result, Path, str]:
    """A report over samples with HTTP, pipelining, TLS and an anomaly."""
    d = tmp_path_factory.mktemp("sample")
    files = [
        SAMPLES / n
        for n in ("rtt-pipelined.pcap", "tls-versions.pcap", "tls-alpn.pcap", "rst.pcap")
    ]
    res = pcapan.analyze(files)
    out = res.report(d / "report.html")
    return res, out, out.read_text(encoding="utf-8")


# -- reading the page back ----------------------------------------------------------------------
class Page(HTMLParser):
    """Tags, attributes and tables (caption -> header and rows, as text) of a report."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: dict[str, tuple[list[str], list[list[str]]]] = {}
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None
        self._head: list[str] = []
        self._rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._in_head = False
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self._head, self._rows, self._caption = [], [], None
        elif tag == "caption":
            self._caption = []
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption" and self._caption is not None:
            self._caption_text = "".join(self._caption)
            self._caption = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            (self._head.extend if self._in_head else self._rows.append)(self._row)
            self._row = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "table":
            self.tables[self._caption_text] = (self._head, self._rows)

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for buf in (self._cell, self._caption):
            if buf is not None:
                buf.append(data)

    def table(self, prefix: str) -> tuple[list[str], list[list[str]]]:
        hits = [k for k in self.tables if k.startswith(prefix)]
        assert len(hits) == 1, (prefix, list(self.tables))
        return self.tables[hits[0]]


def frame_cells(df: pd.DataFrame, formats: page.Formats | None = None) -> list[list[str]]:
    """What page.table writes into the cells of ``df`` (text before HTML escaping)."""
    formats = formats or {}
    return [
        [formats.get(c, facts.format_value)(v) for c, v in zip(df.columns, row, strict=True)]
        for row in df.itertuples(index=False)
    ]


# -- self-contained and inert -------------------------------------------------------------------
@pytest.mark.parametrize("which", ["hostile", "sample_report"])
def test_self_contained(which: str, request: pytest.FixtureRequest) -> None:
    """No script, nothing to fetch: every src is a data: URI, every href an anchor in the page,
    no <link>/<script>/<iframe>/<object>, no url() or @import in the style; the CSP meta tag
    forbids everything but data: images and the inline style."""
    _, _, text = request.getfixturevalue(which)
    p = Page(text)
    tags = {t for t, _ in p.tags}
    assert not tags & {"script", "link", "iframe", "object", "embed", "base", "form"}, tags
    for tag, attrs in p.tags:
        assert attrs.get("src") is None or attrs["src"].startswith(
            ("data:image/svg+xml;base64,", "data:image/png;base64,")
        ), (tag, attrs)
        # anchors in the page, or links (navigation, not loads) into the CSV folder beside it
        assert attrs.get("href") is None or re.fullmatch(
            r"#[\w-]+|[\w.-]+_files/(\w+\.csv)?", attrs["href"]
        ), (tag, attrs)
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)  # no event handlers at all
    style = text[text.index("<style>") : text.index("</style>")]
    assert "url(" not in style and "@import" not in style
    csp = [a for t, a in p.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert [a["content"] for a in csp] == [template.CONTENT_SECURITY_POLICY]
    assert (
        "default-src 'none'" in template.CONTENT_SECURITY_POLICY
        and "script-src" not in template.CONTENT_SECURITY_POLICY
    )


def test_captured_text_is_escaped(hostile: tuple[pcapan.Result, Path, str]) -> None:
    """The URI, Host and SNI reach the tables, the report shows them character for character
    (as text: the parser gives back exactly what the packets carried) and the raw HTML holds
    no tag of theirs, only their escaped form."""
    res, _, text = hostile
    # What the packets carry reached the tables (so the report had something to escape).
    assert list(res.http.uri) == [URI_XSS] and list(res.http.host) == [HOST_XSS]
    assert list(res.tls.server_name) == [SNI_XSS]
    low = text.lower()
    assert "<script" not in low and "<svg" not in low and "<img src=x" not in low
    assert "onerror=" not in text.replace("onerror=&quot;", "")  # only inside escaped text
    assert (
        html_escaped(URI_XSS) in text
        and html_escaped(HOST_XSS) in text
        and html_escaped(SNI_XSS) in text
    )
    assert "&lt;script&gt;document.title=&#x27;PWNED&#x27;&lt;/script&gt;" in text
    p = Page(text)
    _, slow = p.table("slowest requests")
    assert [[r[2], r[3], r[4]] for r in slow] == [["GET", HOST_XSS, URI_XSS]]
    _, names = p.table("server names (SNI)")
    assert names == [[SNI_XSS, "1"]]
    _, servers = p.table("servers (client-server pairs)")
    # The servers table names a server by Host (HTTP) or SNI (TLS).
    assert {r[1] for r in servers} == {f"{HOST_XSS} ({SERVER}:80)", f"{SNI_XSS} ({SERVER}:443)"}


def html_escaped(s: str) -> str:
    import html

    return html.escape(s, quote=True)


def test_plot_svgs_escape_captured_text(hostile: tuple[pcapan.Result, Path, str]) -> None:
    """The plots draw the Host/SNI as labels: inside the embedded SVGs (well-formed XML) no
    element other than SVG's own, no <script>, and the hostile text only escaped."""
    _, _, text = hostile
    svgs = [
        base64.b64decode(m).decode()
        for m in re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', text)
    ]
    assert svgs, "no plot embedded"
    labelled = 0
    for svg in svgs:
        root = ET.fromstring(svg)
        tags = {el.tag.split("}")[-1] for el in root.iter()}
        assert "script" not in tags and "foreignObject" not in tags, tags
        assert "<script" not in svg.lower() and "<img" not in svg.lower()
        labelled += "&lt;script&gt;document.title" in svg or "&lt;img src=x" in svg
    assert labelled, "expected the hostile names in some plot's labels (escaped)"


# -- content --------------------------------------------------------------------------------------
def test_summary_and_tables_match_the_result(
    sample_report: tuple[pcapan.Result, Path, str],
) -> None:
    res, _, text = sample_report
    p = Page(text)
    s = res.summary()
    assert p.table("capture")[1] == [list(r) for r in facts.summary_rows(s)]
    assert p.table("connection states / services")[1] == [list(r) for r in facts.state_rows(s)]
    # Servers: sorted by connections then requests, all of them here (fewer than TOP_ROWS).
    head, rows = p.table("servers (client-server pairs)")
    assert head == list(facts.SERVER_COLUMNS_REPORT.values())
    srv = res.servers.sort_values(["connections", "requests"], ascending=False, kind="stable")
    assert len(rows) == len(srv) < page.TOP_ROWS
    assert [(r[0], int(r[2]), int(r[3])) for r in rows] == list(
        zip(srv.orig_h, srv.connections, srv.requests, strict=True)
    )
    # The TLS mix. tls-versions.pcap: tshark -Y tls.handshake.type==2 -e tls.handshake.version
    # -e tls.handshake.extensions.supported_version gives 0x0303 x3 and 0x0303 + 0x0304 once;
    # tls-alpn.pcap: two TLS 1.2 and one TLS 1.3 ServerHello. So TLSv12 5, TLSv13 2.
    assert p.table("versions")[1] == [["TLSv12", "5"], ["TLSv13", "2"]]
    # tls-alpn.pcap: three ClientHellos offer "h2,http/1.1"; the TLS 1.2 ServerHellos select h2
    # and http/1.1 (tshark tls.handshake.extensions_alpn_str); TLS 1.3's choice is encrypted.
    assert p.table("ALPN")[1] == [["h2", "3", "1"], ["http/1.1", "3", "1"]]
    # rst.pcap: the response is cut by the client's RST (samples/README.md): one http_truncated.
    assert p.table("by kind")[1] == [["http_truncated", "1"]]
    _, anomalies = p.table("rows")
    assert len(anomalies) == len(res.anomalies) == 1
    # rtt-pipelined.pcap: 3 pipelined GETs; rst.pcap: 1 GET. 4 responses with status 200.
    assert p.table("responses by status code")[1] == [["200", "4"]]
    _, slow = p.table("slowest requests")
    h = res.http[res.http.ttfb_s.notna()].sort_values("ttfb_s", ascending=False, kind="stable")
    assert [r[4] for r in slow] == list(h.uri)


def test_every_plot_with_data_is_embedded(sample_report: tuple[pcapan.Result, Path, str]) -> None:
    """These samples have HTTP, pipelining, TLS and RTT samples and are files on disk: all eight
    plots are drawn, each a well-formed SVG or PNG."""
    _, _, text = sample_report
    p = Page(text)
    figs = {a["id"]: a for t, a in p.tags if t == "figure"}
    assert set(figs) == {f"plot-{k}" for k, _ in PLOTS}
    imgs = [a["src"] for t, a in p.tags if t == "img"]
    assert len(imgs) == len(PLOTS)
    for src in imgs:
        data = base64.b64decode(src.split(",", 1)[1])
        if src.startswith("data:image/png;"):
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert ET.fromstring(data).tag.endswith("svg")
    assert "skipped" not in text


def test_plot_without_data_or_failing_is_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """http-keepalive.pcap has no TLS and no pipelined request: those plots are notes saying so;
    a plot that raises becomes a note with the error, and the report is still written."""
    from pcapan.plot import Plotter

    def boom(self: Plotter, **options: object) -> None:
        raise RuntimeError("<b>boom</b>")

    monkeypatch.setattr(Plotter, "rtt", boom)
    res = pcapan.analyze(SAMPLES / "http-keepalive.pcap")
    text = res.report(tmp_path / "r.html").read_text()
    notes = {
        a["id"]: a
        for t, a in Page(text).tags
        if t == "p" and (a.get("id") or "").startswith("plot-")
    }
    assert set(notes) == {"plot-tls", "plot-pipelining", "plot-rtt"}
    assert "tls: skipped (no TLS handshakes)" in text
    assert "pipelining: skipped (no pipelined requests)" in text
    assert "rtt: skipped (could not be drawn (RuntimeError: &lt;b&gt;boom&lt;/b&gt;))" in text


def test_no_plots_and_stdin(tmp_path: Path) -> None:
    """--no-plots draws none; from standard input the packet plots (io, timeseq) cannot re-read
    the capture and are skipped with that reason, the others drawn."""
    out = tmp_path / "a.html"
    cap = (SAMPLES / "http-pipelined.pcap").read_bytes()
    p = subprocess.run(
        [sys.executable, "-m", "pcapan.cli", "report", "-", "-o", str(out)],
        input=cap,
        capture_output=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    assert 'id="plot-io">io: skipped (' in text and "cannot be reopened" in text
    assert 'id="plot-waterfall"><img' in text
    assert (
        pcapan.analyze(SAMPLES / "http-pipelined.pcap")
        .report(tmp_path / "b.html", plots=False)
        .read_text()
        .count("<img")
        == 0
    )


def test_deterministic(tmp_path: Path) -> None:
    """The same capture gives the same file (no dates in the SVGs, fixed SVG ids)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = pcapan.analyze(SAMPLES / "http-pipelined.pcap").report(tmp_path / "a" / "r.html")
    b = pcapan.analyze(SAMPLES / "http-pipelined.pcap").report(tmp_path / "b" / "r.html")
    assert a.read_bytes() == b.read_bytes()


def test_empty_capture(tmp_path: Path) -> None:
    """No packets at all: a report with notes, not an error."""
    from .captures_builder import pcap_file

    cap = tmp_path / "empty.pcap"
    cap.write_bytes(pcap_file([]))
    text = pcapan.analyze(cap).report(tmp_path / "r.html").read_text()
    assert "waterfall: skipped (no TCP connections)" in text
    assert "no TLS handshakes" in text and "no HTTP requests" in text


def test_cli_report_title_escaped(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pcapan.cli",
            "report",
            str(SAMPLES / "http-keepalive.pcap"),
            "-o",
            str(out),
            "--title",
            "<i>t</i>",
            "--no-plots",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    assert f"wrote {out}" in p.stderr and p.stdout == ""
    text = out.read_text()
    assert "<title>&lt;i&gt;t&lt;/i&gt;</title>" in text and "<i>" not in text


def test_printable() -> None:
    """Control, format (bidi) characters and a backslash next to them are written as escapes."""
    assert facts.printable("/a?b=c d") == "/a?b=c d"
    assert facts.printable("\x1b[2J\\x\u202e") == "\\x1b[2J\\\\x\\u202e"
    assert facts.printable("caf\xe9") == "caf\xe9"


# -- the browser ----------------------------------------------------------------------------------
def chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on ``url``; console messages go to stderr (--enable-logging=stderr
    --v=0 logs them as ``INFO:CONSOLE:<line>] "<message>", source: <url>``). --no-sandbox: CI
    runs as root, where Chromium refuses its sandbox."""
    assert CHROMIUM is not None
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [
        CHROMIUM,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
        url,
    ]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT_S,
        env={**os.environ, "HOME": str(tmp_path)},
    )


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@needs_chromium
def test_browser_harness_sees_script_and_console(tmp_path: Path) -> None:
    """Control: without the report's protections, a script in a page does run (the dumped DOM
    shows its effect) and its console.error is logged. So the checks below can fail."""
    page_ = tmp_path / "control.html"
    page_.write_text(
        f"<!DOCTYPE html><title>ok</title><script>document.title='{EFFECT}';"
        "console.error('control-error')</script><p>x</p>"
    )
    p = chromium(tmp_path, page_.as_uri(), "--dump-dom")
    assert f"<title>{EFFECT}</title>" in p.stdout
    assert any("control-error" in m for m in console_messages(p.stderr)), p.stderr[-2000:]


@needs_chromium
def test_browser_renders_report_without_errors_and_scripts(
    hostile: tuple[pcapan.Result, Path, str], tmp_path: Path
) -> None:
    """Chromium loads the hostile report: no console message at all (no error, no CSP
    violation, no failed load), the title is the report's (no payload ran), the DOM holds no
    script/svg element and no element with an event handler, the payloads are visible text,
    and the screenshot is a picture (more than one colour)."""
    _, report, _ = hostile
    p = chromium(tmp_path, report.as_uri(), "--dump-dom")
    assert p.returncode == 0, p.stderr[-2000:]
    assert console_messages(p.stderr) == []
    dom = p.stdout
    assert "<title>pcapan report</title>" in dom and EFFECT not in dom.replace(
        "&#x27;PWNED&#x27;", ""
    ).replace("'PWNED'", "")
    dp = Page(dom)
    assert not {t for t, _ in dp.tags} & {"script", "svg", "iframe"}
    assert not [a for _, a in dp.tags if any(k.startswith("on") for k in a)]
    assert "&lt;script&gt;" in dom
    text = "".join(dp.text)
    assert URI_XSS in text and HOST_XSS in text and SNI_XSS in text

    assert_renders_cleanly(tmp_path, report)


@needs_chromium
def test_browser_renders_sample_report(
    sample_report: tuple[pcapan.Result, Path, str], tmp_path: Path
) -> None:
    """The report of real samples: no console message, every plot image decoded (natural size
    non-zero, checked by the layout: an undecodable image would log nothing but show 0x0, so the
    screenshot of the first plot region must not be blank either)."""
    _, report, _ = sample_report
    assert_renders_cleanly(tmp_path, report)


@needs_chromium
def test_csp_blocks_a_missed_escape(
    sample_report: tuple[pcapan.Result, Path, str], tmp_path: Path
) -> None:
    """The second line of defence: the report with a raw <script> and an external image forced
    in (as a missed escape would) still runs nothing and fetches nothing; Chromium logs the CSP
    refusals."""
    _, report, text = sample_report
    bad = tmp_path / "bad.html"
    bad.write_text(
        text.replace(
            "<body>",
            f"<body><script>document.title='{EFFECT}'</script>"
            '<img src="http://127.0.0.1:9/x.png">',
            1,
        )
    )
    p = chromium(tmp_path, bad.as_uri(), "--dump-dom")
    assert "<title>pcapan report</title>" in p.stdout
    msgs = console_messages(p.stderr)
    assert any("Content Security Policy" in m and "script" in m.lower() for m in msgs), msgs
    assert any("Content Security Policy" in m and "img-src" in m for m in msgs), msgs


def assert_renders_cleanly(tmp_path: Path, report: Path) -> None:
    """Chromium screenshots the report: it exits cleanly, logs no console message, and the
    picture is not blank."""
    shot = tmp_path / "shot.png"
    s = chromium(
        tmp_path,
        report.as_uri(),
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        "--hide-scrollbars",
    )
    assert s.returncode == 0 and shot.is_file(), s.stderr[-2000:]
    assert console_messages(s.stderr) == []
    assert_picture(shot)


def assert_picture(png: Path) -> None:
    """The screenshot is not blank: more than one colour, and not all but a few pixels white."""
    from matplotlib.image import imread

    img = imread(png)
    assert img.shape[0] >= 1000 and img.shape[1] == 1280
    flat = img.reshape(-1, img.shape[2])[:, :3]
    colours = {tuple(c) for c in flat[:: max(1, len(flat) // 200_000)].round(3).tolist()}
    assert len(colours) > 10, len(colours)
    non_white = (flat < 0.98).any(axis=1).mean()
    assert non_white > 0.02, non_white


def test_library_report_makes_missing_directories(tmp_path: Path) -> None:
    """``res.report(path)`` makes the missing directories of ``path``, as the CLI does (issue 15:
    a FileNotFoundError traceback before)."""
    res = pcapan.analyze(SAMPLES / "http-keepalive.pcap")
    # (without the CSV folder, whose export made the directories as a side effect)
    out = res.report(tmp_path / "new" / "dir" / "r.html", plots=False, tables=False)
    assert out.is_file() and not (tmp_path / "new" / "dir" / "r_files").exists()
