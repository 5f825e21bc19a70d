"""The page around the report's sections: head (charset, Content-Security-Policy, styles) and
foot. Plain strings, no template engine; every value put into them is escaped by the caller."""

from __future__ import annotations

# What the page may load: nothing from anywhere, images only from data: URIs (the plots),
# styles only from the inline <style>. No script-src, so no script runs at all, even one that
# a missed escape let through; base-uri and form-action closed as well (they are not covered by
# default-src). Put in a <meta> tag, since a file opened from disk has no HTTP headers.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

STYLE = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 0 auto; max-width: 1200px; padding: 1em 2em; color: #1c2833; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 2px solid #d5dbdb; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
.sub { color: #566573; margin-top: 0; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 13px; }
caption { text-align: left; font-weight: 600; padding: 0.2em 0; }
th, td { border: 1px solid #d5dbdb; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #f2f4f4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td { overflow-wrap: break-word; word-break: break-word; max-width: 40em; }
.tables { display: flex; flex-wrap: wrap; gap: 0 2em; align-items: flex-start; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeded; }
figcaption { color: #566573; font-size: 13px; }
.note { color: #7b7d7d; font-style: italic; }
.warn { color: #a04000; }
footer { margin-top: 3em; color: #7b7d7d; font-size: 12px; }
"""

HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="pcapan {version}">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
"""

FOOT = """<footer>Made by pcapan {version}. Self-contained: no scripts, nothing loaded from the
network; the plots are SVG images inside this file.</footer>
</body>
</html>
"""
