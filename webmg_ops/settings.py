"""Where the tool finds its clients, its ledger and its working files.

Settings are resolved once, at the command line's edge, from options and
environment variables, and passed down explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_INVENTORIES = Path("inventories")
DEFAULT_VAR_DIR = Path("var")


@dataclass(frozen=True)
class Settings:
    """The paths and URLs one command works with.

    ``inventories`` holds one folder per client; ``var_dir`` holds the
    default SQLite ledger, run logs and the lab's state; ``ledger_url`` is a
    SQLAlchemy URL.
    """

    inventories: Path
    ledger_url: str
    var_dir: Path


def default_ledger_url(var_dir: Path) -> str:
    """Given the var directory, return the URL of the embedded SQLite ledger."""
    return f"sqlite:///{(var_dir / 'ledger.db').as_posix()}"


def resolve_settings(inventories: str | None = None, ledger_url: str | None = None) -> Settings:
    """Given the command-line values (or None), return the settings in force.

    Options win over ``WEBMG_INVENTORIES``, ``WEBMG_LEDGER_URL`` and
    ``WEBMG_VAR``, which win over the defaults.
    """
    var_dir = Path(os.environ.get("WEBMG_VAR", str(DEFAULT_VAR_DIR)))
    inventories_path = Path(
        inventories or os.environ.get("WEBMG_INVENTORIES", str(DEFAULT_INVENTORIES))
    )
    url = ledger_url or os.environ.get("WEBMG_LEDGER_URL") or default_ledger_url(var_dir)
    return Settings(inventories=inventories_path, ledger_url=url, var_dir=var_dir)
