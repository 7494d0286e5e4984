"""A cache of parsed contracts, for the commands that read every client at once.

Parsing a ``client.yml`` (PyYAML's constructor, in Python) was most of what ``due``
and ``schedule`` cost over a fleet; the data it gives is kept here, as JSON, keyed by
the client's name and the SHA-256 of the file's bytes. An entry is used only for a
file whose bytes hash the same, so an edit is seen whatever the file's size and time
stamps say. What the cache gives is plain data: the caller validates it exactly as
data just parsed, and parses the file afresh when it does not validate. The file is
JSON, never pickle: reading it back runs no code, and a cache that is missing,
corrupt or of another format is ignored (and rewritten by the next save).

The cache is trusted no further than the var folder it lives in (private to the
operator, as the run folders are): an entry copied from another client, or written
for other bytes, is never used, and data that fails validation is parsed afresh; but
whoever can write the var folder could put valid data of their own under the digest
of a client's file.

The cache holds only what PyYAML's safe loader gives and JSON can carry back exactly:
mappings with text keys, lists, text, numbers, booleans, nulls, dates and times. A
contract holding anything else (a set, binary data, a key that is no text) is simply
not cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

from webmg_ops.settings import CACHE_DIR, write_cache_file

#: Where, under the var folder, the cache is kept.
CACHE_FILE = CACHE_DIR / "contracts.json"
#: The format of the file: another (an older or newer version's) is ignored.
FORMAT = 1
#: A key marking a date or time: data whose keys hold a NUL is not cached, so no
#: mapping of a contract can be mistaken for one.
_DATE = "\x00date"
_DATETIME = "\x00datetime"


def contract_cache_file(var_dir: Path) -> Path:
    """Given the var folder, return the file the contract cache lives in."""
    return var_dir / CACHE_FILE


def digest(raw: bytes) -> str:
    """Given a file's bytes, return the hex SHA-256 an entry is keyed by."""
    return hashlib.sha256(raw).hexdigest()


class _Uncacheable(Exception):
    """The data holds a value the cache cannot carry back exactly."""


def _encode(value: Any) -> Any:
    # Exact types only: a subclass (bool is an int) would not come back as itself.
    kind = type(value)
    if value is None or kind in (str, bool, int):
        return value
    if kind is float:
        if not math.isfinite(value):
            raise _Uncacheable  # JSON has no NaN or infinity
        return value
    if kind is datetime:
        return {_DATETIME: value.isoformat()}
    if kind is date:
        return {_DATE: value.isoformat()}
    if kind is list:
        return [_encode(item) for item in value]
    if kind is dict:
        if not all(type(key) is str and "\x00" not in key for key in value):
            raise _Uncacheable
        return {key: _encode(item) for key, item in value.items()}
    raise _Uncacheable


def _decode_object(mapping: dict[str, Any]) -> Any:
    if len(mapping) == 1:
        if _DATE in mapping:
            return date.fromisoformat(mapping[_DATE])
        if _DATETIME in mapping:
            return datetime.fromisoformat(mapping[_DATETIME])
    return mapping


def _read_entries(file: Path) -> dict[str, dict[str, Any]]:
    try:
        document = json.loads(file.read_bytes(), object_hook=_decode_object)
    except (OSError, ValueError, TypeError, RecursionError):
        return {}  # missing, unreadable or corrupt: as if empty
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return {}
    entries = document.get("contracts")
    if not isinstance(entries, dict):
        return {}
    return {
        name: entry
        for name, entry in entries.items()
        if isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and "data" in entry
    }


class ContractCache:
    """The parsed contracts of one cache file, read once and saved once.

    Read with :meth:`open`, asked with :meth:`data`, told with :meth:`remember`, and
    written back with :meth:`save` when something changed.
    """

    def __init__(self, file: Path, entries: dict[str, dict[str, Any]]) -> None:
        self.file = file
        self._entries = entries
        self._changed = False

    @classmethod
    def open(cls, file: Path) -> ContractCache:
        """Given the cache file, return its cache (empty if the file is missing, corrupt
        or of another format). Raises nothing."""
        return cls(file, _read_entries(file))

    def data(self, name: str, raw: bytes) -> Any | None:
        """Given a client's name and its contract file's bytes, return the data parsed
        from exactly these bytes, or None if the cache does not hold it.

        The data is not validated here: the caller validates it as freshly parsed data.
        """
        entry = self._entries.get(name)
        if entry is None or entry["sha256"] != digest(raw):
            return None
        return entry["data"]

    def remember(self, name: str, raw: bytes, data: Any) -> None:
        """Given a client's name, its contract file's bytes and the data they parse to,
        keep the data for the next :meth:`data` (nothing if it cannot be carried back
        exactly)."""
        try:
            _encode(data)
        except _Uncacheable:
            self._entries.pop(name, None)
            return
        self._entries[name] = {"sha256": digest(raw), "data": data}
        self._changed = True

    def save(self) -> None:
        """Write the cache back if something changed, atomically (a reader sees the old
        file or the new one). A cache that cannot be written is left as it was: it only
        ever saves time, so this raises nothing.

        The cache's folder is made in an existing var folder only: a command that only
        reads, on a fresh checkout, creates nothing.
        """
        if not self._changed:
            return
        contracts = {}
        for name, entry in self._entries.items():
            # An entry read from a hostile file may hold what JSON reads but the cache
            # never writes (NaN, a key with a NUL): it is dropped, not written back.
            with contextlib.suppress(_Uncacheable):
                contracts[name] = {"sha256": entry["sha256"], "data": _encode(entry["data"])}
        document = {"format": FORMAT, "contracts": contracts}
        # The cache's file is var/cache/<name>: written there as every cache file is.
        write_cache_file(
            self.file.parent.parent, self.file.name, json.dumps(document, separators=(",", ":"))
        )


__all__ = ["CACHE_FILE", "ContractCache", "contract_cache_file", "digest"]
