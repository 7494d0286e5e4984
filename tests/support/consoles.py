"""Wide consoles for commands run in-process, whatever ran before in the same process."""

from __future__ import annotations

import pytest


def widen_consoles(monkeypatch: pytest.MonkeyPatch, columns: int) -> None:
    """Make the command line's consoles COLUMNS wide for the test, then as they were.

    The consoles read COLUMNS once, when first imported: setting the variable
    alone works only if nothing imported them before.
    """
    from webmg_ops.cli import common

    monkeypatch.setenv("COLUMNS", str(columns))
    for console in (common.console, common.stdout_console):
        monkeypatch.setattr(console, "_width", columns)
