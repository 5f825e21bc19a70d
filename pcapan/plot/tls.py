"""TLS plots: versions, selected cipher suites by strength class, ALPN offered vs selected,
resumption modes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcapan.plot._base import (
    category_ticks,
    check_limit,
    empty_figure,
    integer_ticks,
    no_data,
    short,
    two_row_figure,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from pcapan.api import Result

# Cipher suites shown, most used first: more bars than this make the names unreadable.
MAX_CIPHERS = 20
# Colour and legend name per cipher_strength_class (bits of security the suite reaches).
STRENGTH_COLORS = {
    0: ("#7b241c", "broken (<64 bit)"),
    64: ("#e74c3c", "64 bit"),
    80: ("#e67e22", "80 bit"),
    96: ("#f1c40f", "96 bit"),
    112: ("#d4ac0d", "112 bit"),
    128: ("#58d68d", "128 bit"),
    256: ("#1e8449", "256 bit"),
}
UNKNOWN_STRENGTH = ("#95a5a6", "unknown")


def strength_color(cls: object) -> tuple[str, str]:
    """(colour, legend name) of a cipher_strength_class value."""
    try:
        return STRENGTH_COLORS.get(int(cls), UNKNOWN_STRENGTH)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return UNKNOWN_STRENGTH


def version_counts(result: Result) -> pd.Series:
    return result.tls.version.fillna("(none)").value_counts().sort_index()


def cipher_counts(result: Result, limit: int | None = MAX_CIPHERS) -> pd.DataFrame:
    """Selected suites: cipher, strength class and handshakes, most used first (``limit``)."""
    t = result.tls[result.tls.cipher.notna()]
    g = t.groupby("cipher", sort=True).agg(
        n=("uid", "size"), strength=("cipher_strength_class", "first")
    )
    g = g.reset_index().sort_values(["n", "cipher"], ascending=[False, True], kind="stable")
    return g.head(limit if limit is not None else len(g)).reset_index(drop=True)


def alpn_counts(result: Result) -> pd.DataFrame:
    """Per ALPN protocol ID: handshakes that offered it and handshakes where it was selected."""
    from pcapan.frames.tlsmix import alpn_counts as counts

    return counts(result.tls)


def resumption_counts(result: Result) -> pd.Series:
    """Handshakes per mode: the resumption column (session_id, ticket, psk), else 'full' for an
    established handshake and 'not established' for the rest."""
    from pcapan.frames.tlsmix import resumption_modes

    return resumption_modes(result.tls).value_counts().sort_index()


def tls(result: Result, *, limit: int | None = MAX_CIPHERS) -> Figure:
    """TLS at a glance: negotiated versions, selected cipher suites coloured by strength class
    (the ``limit`` most used), ALPN protocols offered vs selected, resumption modes."""
    import numpy as np
    from matplotlib.patches import Patch

    limit = check_limit(limit)
    if not len(result.tls):
        return empty_figure("TLS handshakes", "no TLS handshakes in this capture")
    fig, (v_ax, a_ax, r_ax), c_ax = two_row_figure(3, height=8.0, title="TLS handshakes")
    v = version_counts(result)
    v_ax.bar(np.arange(len(v)), v.to_numpy(), color="#2e86de", label="handshakes")
    category_ticks(v_ax, [short(x, 16) for x in v.index], share=1 / 3)
    v_ax.set_xlabel("version")
    v_ax.set_ylabel("handshakes")
    integer_ticks(v_ax)

    c = cipher_counts(result, limit)
    if not len(c):
        no_data(c_ax, "no cipher suite selected")
    else:
        y = np.arange(len(c))
        styles = [strength_color(s) for s in c.strength]
        c_ax.barh(y, c.n.to_numpy(), color=[col for col, _ in styles], label="handshakes")
        c_ax.set_yticks(y, [short(n, 40) for n in c.cipher], fontsize="small")
        c_ax.invert_yaxis()
        c_ax.set_xlabel("handshakes")
        integer_ticks(c_ax, "x")
        c_ax.set_ylabel("cipher suite")
        seen = dict.fromkeys(styles)
        c_ax.legend(
            handles=[Patch(color=col, label=name) for col, name in seen],
            fontsize="small",
            title="strength",
            title_fontsize="small",
        )

    a = alpn_counts(result)
    if not len(a):
        no_data(a_ax, "no ALPN offered")
    else:
        x = np.arange(len(a))
        a_ax.bar(x - 0.2, a.offered.to_numpy(), width=0.4, label="offered", color="#85c1e9")
        a_ax.bar(x + 0.2, a.selected.to_numpy(), width=0.4, label="selected", color="#1f618d")
        category_ticks(a_ax, [short(p, 20) for p in a.protocol], share=1 / 3)
        a_ax.set_xlabel("ALPN protocol")
        a_ax.set_ylabel("handshakes")
        integer_ticks(a_ax)
        a_ax.legend(fontsize="small")

    r = resumption_counts(result)
    r_ax.bar(np.arange(len(r)), r.to_numpy(), color="#9b59b6", label="handshakes")
    category_ticks(r_ax, list(r.index), share=1 / 3)
    r_ax.set_xlabel("resumption mode")
    r_ax.set_ylabel("handshakes")
    integer_ticks(r_ax)
    return fig
