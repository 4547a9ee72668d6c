"""Reading a policy given on the command line: a file, or ``-`` for standard input."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.policy._errors import Report

__all__ = ["STDIN", "read_policy"]

STDIN = "-"


def read_policy(arg: str) -> Report:
    """The validation report of the file ``arg`` names, or of standard input for ``-``
    (findings then point at ``<stdin>``). Never raises for bad input."""
    from engine.policy import check_paths, check_text
    from engine.policy._check import _file_report
    from engine.policy._load import MAX_BYTES

    if arg != STDIN:
        (report,) = check_paths([Path(arg)])
        return report
    data = sys.stdin.buffer.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        return _file_report("<stdin>", "file.too-large", f"standard input holds more than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _file_report("<stdin>", "file.unreadable", f"standard input is not UTF-8 text: {exc}")
    return check_text(text, source="<stdin>")
