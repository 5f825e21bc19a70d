"""Counts over the tls table that the plots, the report and the terminal all show."""

from __future__ import annotations

import numpy as np
import pandas as pd


def alpn_counts(tls: pd.DataFrame) -> pd.DataFrame:
    """Per ALPN protocol ID: handshakes that offered it and handshakes where it was selected (a
    TLS 1.3 server's choice is encrypted, so selected can be below what was used)."""
    offered = tls.alpn_offered.dropna().astype(str).str.split(",").explode().str.strip()
    offered = offered[offered != ""].value_counts()
    selected = tls.next_protocol.dropna().astype(str).value_counts()
    names = sorted(set(offered.index) | set(selected.index))
    return pd.DataFrame(
        {
            "protocol": names,
            "offered": [int(offered.get(n, 0)) for n in names],
            "selected": [int(selected.get(n, 0)) for n in names],
        }
    )


def resumption_modes(tls: pd.DataFrame) -> pd.Series:
    """Each handshake's mode: its resumption (session_id, ticket, psk), else 'full' when it was
    established and 'not established' for the rest."""
    est = tls.established.fillna(False).astype(bool).to_numpy()
    mode = np.where(
        tls.resumption.notna(),
        tls.resumption.astype(object),
        np.where(est, "full", "not established"),
    )
    return pd.Series(mode, dtype=object)
