"""Every CLI verb and option is documented in the README (sqlite-utils style)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pcapan.cli import _parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _verbs() -> dict[str, argparse.ArgumentParser]:
    p = _parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_verb_and_option_in_readme() -> None:
    missing = []
    for verb, parser in _verbs().items():
        if f"pcapan {verb}" not in README:
            missing.append(f"verb {verb}")
        for action in parser._actions:
            for opt in action.option_strings:
                if opt in ("-h", "--help"):
                    continue
                if opt not in README:
                    missing.append(f"{verb} {opt}")
            if action.help in (None, "") and action.dest != "help":
                missing.append(f"{verb} {action.dest}: no help text")
    assert not missing, missing
