"""Canonical JSON, UTC timestamps and the hash chain.

The canonical form is what makes the chain reproducible by anyone: JSON with
sorted keys, compact separators and UTF-8 text, datetimes written as UTC
ISO-8601 with ``Z``. An entry's hash is
``sha256(prev_hash || canonical_json({seq, kind, client, at, actor, payload}))``,
where ``prev_hash`` is the previous entry's hash (64 hex digits; 64 zeros for
the first entry) and ``||`` is concatenation of the UTF-8 bytes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from json.encoder import py_encode_basestring
from typing import Any

from webmg_ops.errors import BadInput

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first entry."""

try:  # the C implementation; the pure-Python one gives the same text
    from _json import encode_basestring as _quote
except ImportError:  # pragma: no cover - CPython always has _json
    _quote = py_encode_basestring


def format_utc(moment: datetime) -> str:
    """Given an aware datetime, return it as fixed-width UTC ISO-8601 text with ``Z``.

    The text always has microseconds (``2024-05-01T08:30:00.000000Z``), so that
    comparing two such texts orders them in time. Raise BadInput if ``moment``
    is naive: a record of when something happened must not guess a time zone.
    """
    offset = moment.utcoffset()
    if offset is None:
        raise BadInput(f"naive datetime {moment.isoformat()} has no time zone")
    try:
        utc = (moment - offset).replace(tzinfo=None)
    except OverflowError:
        raise BadInput(f"datetime {moment.isoformat()} is out of range in UTC") from None
    return utc.isoformat(timespec="microseconds") + "Z"


def parse_utc(text: str) -> datetime:
    """Given ISO-8601 text (a date, or a date and time), return an aware UTC datetime.

    Text without an offset is taken as UTC. Raise BadInput if it is not ISO-8601.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(
            f"{text!r} is not an ISO-8601 time (e.g. 2024-05-01 or 2024-05-01T08:30:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _encode_extra(value: object) -> str:
    if isinstance(value, datetime):
        return format_utc(value)
    raise TypeError(f"a {type(value).__name__} is not a JSON value")


_ENCODER = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    sort_keys=True,
    separators=(",", ":"),
    default=_encode_extra,
)


_CONTAINERS = (dict, list, tuple)


def _check_keys(value: object) -> None:
    # json would turn 1 and "1" into the same key; canonical text must be unambiguous.
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise BadInput(f"JSON object key {key!r} is not a string")
            if isinstance(item, _CONTAINERS):
                _check_keys(item)
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, _CONTAINERS):
                _check_keys(item)


def canonical_json(value: Any) -> str:
    """Given a JSON-like value, return its canonical JSON text.

    Keys are sorted, separators compact, non-ASCII text kept as is (the text is
    hashed as UTF-8), tuples written as arrays and datetimes as UTC ``Z`` text.
    Raise BadInput if the value holds a non-string key, NaN or infinity, a
    naive datetime, a lone surrogate or anything JSON cannot represent.
    """
    _check_keys(value)
    try:
        text = _ENCODER.encode(value)
        if not text.isascii():
            text.encode()  # a lone surrogate has no UTF-8 form
    except (TypeError, ValueError) as error:
        raise BadInput(f"not canonical JSON: {error}") from None
    return text


def canonical_entry(
    seq: int, kind: str, client: str | None, at: str, actor: str, payload_json: str
) -> str:
    """Given an entry's stored columns, return the canonical JSON of the entry.

    ``at`` is the stored UTC text and ``payload_json`` the stored canonical JSON
    of the payload; the result equals ``canonical_json`` of
    ``{seq, kind, client, at, actor, payload}`` without parsing the payload again.
    """
    client_json = "null" if client is None else _quote(client)
    return (
        f'{{"actor":{_quote(actor)},"at":{_quote(at)},"client":{client_json},'
        f'"kind":{_quote(kind)},"payload":{payload_json},"seq":{seq:d}}}'
    )


def chain_hash(prev_hash: str, entry_json: str) -> str:
    """Given the previous hash and an entry's canonical JSON, return the entry's hash.

    The hash is the hex SHA-256 of the UTF-8 bytes of ``prev_hash + entry_json``.
    """
    return hashlib.sha256((prev_hash + entry_json).encode()).hexdigest()
