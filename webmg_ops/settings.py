"""Where the tool finds its clients, its ledger and its working files.

Settings are resolved once, at the command line's edge, from options and
environment variables, and passed down explicitly.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from webmg_ops.errors import EnvironmentProblem

DEFAULT_INVENTORIES = Path("inventories")
DEFAULT_VAR_DIR = Path("var")

UMASK = 0o077
"""The file mode creation mask of every command: what the tool writes is its owner's alone.

The ledger and its WAL, facts, run folders and logs then start 0600 (files)
and 0700 (folders), whatever the caller's own umask.
"""

VAR_DIR_MODE = 0o700
"""The mode of the var folder: nobody else may even look inside it."""

CACHE_DIR = Path("cache")
"""Where, under the var folder, commands keep what they may always work out again."""


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


def secure_var_dir(var_dir: Path) -> int | None:
    """Given the var folder, make it private to this user; return its old mode if it was not.

    A folder left open by an earlier version (or made by hand under a lax
    umask) is tightened to :data:`VAR_DIR_MODE`, which makes every file
    beneath it unreachable for other users, whatever their own modes. A
    missing folder is left to be made, private, by the first write.
    Raise EnvironmentProblem if it belongs to another user, who could read
    or rewrite the ledger and the run folders.
    """
    try:
        info = var_dir.stat()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise EnvironmentProblem(f"var folder {var_dir}: {error.strerror}") from None
    if info.st_uid != os.geteuid():
        raise EnvironmentProblem(
            f"var folder {var_dir} belongs to uid {info.st_uid}, not to this user "
            f"(uid {os.geteuid()}): its ledger and runs must be private; use another "
            "WEBMG_VAR or chown it"
        )
    mode = stat.S_IMODE(info.st_mode)
    if not mode & ~VAR_DIR_MODE:
        return None
    var_dir.chmod(VAR_DIR_MODE)
    return mode


def write_cache_file(var_dir: Path, name: str, text: str) -> None:
    """Given the var folder, a file name and its text, write ``var/cache/NAME`` atomically
    (a temporary file renamed over it: a reader sees the old text or the new).

    A cache only saves work: a var folder that does not exist is not made (a command
    on a fresh checkout creates nothing), and a file that cannot be written is left
    as it was, without an error.
    """
    if not var_dir.is_dir():
        return
    folder = var_dir / CACHE_DIR
    try:
        folder.mkdir(exist_ok=True, mode=VAR_DIR_MODE)
        descriptor, partial = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".partial")
    except OSError:
        return
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(partial).replace(folder / name)
    except OSError:
        Path(partial).unlink(missing_ok=True)
