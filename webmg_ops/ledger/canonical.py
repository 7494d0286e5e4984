"""Canonical JSON, UTC timestamps and the hash chain.

The canonical form is what makes the chain reproducible by anyone. Each entry
carries the format it was hashed in (:data:`ENTRY_FORMATS`), so that entries
written before a change of form still verify:

- format 1 (:data:`LEGACY_FORMAT`, entries written before format 2): JSON with
  sorted keys, compact separators and UTF-8 text (:func:`canonical_json`); the
  hashed object is ``{seq, kind, client, at, actor, payload}``;
- format 2 (:data:`JCS_FORMAT`, every new entry): RFC 8785, the JSON
  Canonicalization Scheme (:func:`jcs_json`), which any language has an
  implementation of; the hashed object is ``{seq, kind, client, at, actor,
  format, payload}`` with ``format`` 2, so the format itself is hashed.

Datetimes are written as UTC ISO-8601 with ``Z``. An entry's hash is
``sha256(prev_hash || canonical JSON of the entry)``, where ``prev_hash`` is
the previous entry's hash (64 hex digits; 64 zeros for the first entry) and
``||`` is concatenation of the UTF-8 bytes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from json.encoder import py_encode_basestring
from typing import Any, cast

import rfc8785

from webmg_ops.errors import BadInput

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first entry."""

LEGACY_FORMAT = 1
"""Entries hashed with sorted-keys compact JSON (every entry before format 2)."""
JCS_FORMAT = 2
"""Entries hashed with RFC 8785 (JSON Canonicalization Scheme), format hashed too."""
CURRENT_FORMAT = JCS_FORMAT
"""The format of every entry appended now."""
ENTRY_FORMATS = (LEGACY_FORMAT, JCS_FORMAT)

MAX_SAFE_INTEGER = 2**53 - 1
"""RFC 8785 writes numbers as IEEE doubles: larger integers have no exact form."""

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


def _beyond_bmp(text: str) -> bool:
    return any(ord(char) > 0xFFFF for char in text)


def _needs_exact_jcs(value: object) -> bool:
    """Given a JSON-like value, return whether sorted compact JSON could differ from RFC 8785.

    The two agree on strings, integers, booleans and null, and on objects whose
    keys lie in the Basic Multilingual Plane (RFC 8785 sorts keys by UTF-16
    code units). Floats agree where Python writes them in plain decimals
    without a trailing ``.0``. Raise BadInput for a non-string key or an
    integer RFC 8785 cannot write exactly.
    """
    kind = type(value)
    if kind is dict:
        exact = False
        for key, item in cast(dict[Any, Any], value).items():
            if not isinstance(key, str):
                raise BadInput(f"JSON object key {key!r} is not a string")
            if not key.isascii() and _beyond_bmp(key):
                exact = True
            # Scalars that always agree are skipped here: a call per value costs more.
            if type(item) not in _AGREEING and _needs_exact_jcs(item):
                exact = True
        return exact
    if kind is list or kind is tuple:
        exact = False
        for item in cast(list[Any], value):
            if type(item) not in _AGREEING and _needs_exact_jcs(item):
                exact = True
        return exact
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise BadInput(
                f"integer {value} is beyond ±(2^53-1), which RFC 8785 canonical JSON "
                "cannot write exactly: record it as text"
            )
        return False
    if isinstance(value, float):
        text = float.__repr__(value)
        return "e" in text or text.endswith(".0")
    if isinstance(value, dict | list | tuple):  # subclasses: walked as their base
        return _needs_exact_jcs(
            dict(value) if isinstance(value, dict) else list(cast(list[Any], value))
        )
    return False


_AGREEING = frozenset({str, bool, type(None)})


def _plain(value: object) -> Any:
    """Given a JSON-like value, return it with datetimes as UTC text and tuples as lists."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return format_utc(value)
    return value


def jcs_json(value: Any) -> str:
    """Given a JSON-like value, return its RFC 8785 (JSON Canonicalization Scheme) text.

    Tuples are written as arrays and datetimes as UTC ``Z`` text, as in
    :func:`canonical_json`. Most payloads (no floats written with an exponent
    or as whole numbers, no keys beyond the Basic Multilingual Plane) are
    written by the C JSON encoder, whose text is then RFC 8785's; the others
    by the ``rfc8785`` library, which also names whatever cannot be written.
    Raise BadInput if the value holds a non-string key, NaN or infinity, an
    integer beyond ±(2^53-1), a naive datetime, a lone surrogate or anything
    JSON cannot represent.
    """
    if not _needs_exact_jcs(value):
        try:
            # Keys were checked by the walk: encode at once, as canonical_json does.
            text = _ENCODER.encode(value)
            if not text.isascii():
                text.encode()  # a lone surrogate has no UTF-8 form
            return text
        except (TypeError, ValueError):
            # What cannot be written is named by the library below, so that a bad value
            # gets one message whatever else the payload holds.
            pass
    try:
        return rfc8785.dumps(_plain(value)).decode()
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as error:
        raise BadInput(f"not canonical JSON: {error}") from None


def canonical_entry(
    seq: int,
    kind: str,
    client: str | None,
    at: str,
    actor: str,
    payload_json: str,
    entry_format: int = CURRENT_FORMAT,
) -> str:
    """Given an entry's stored columns, return the canonical JSON of the entry.

    ``at`` is the stored UTC text and ``payload_json`` the stored canonical JSON
    of the payload (in the entry's format). For format 1 the result equals
    ``canonical_json`` of ``{seq, kind, client, at, actor, payload}``; for
    format 2 it equals ``jcs_json`` of ``{seq, kind, client, at, actor,
    format, payload}`` (the keys are ASCII and the strings are quoted alike,
    so one composition serves both). The payload is not parsed again. Raise
    ValueError for an unknown format.
    """
    client_json = "null" if client is None else _quote(client)
    if entry_format == JCS_FORMAT:
        fmt = '"format":2,'
    elif entry_format == LEGACY_FORMAT:
        fmt = ""
    else:
        raise ValueError(f"unknown entry format {entry_format!r}")
    return (
        f'{{"actor":{_quote(actor)},"at":{_quote(at)},"client":{client_json},{fmt}'
        f'"kind":{_quote(kind)},"payload":{payload_json},"seq":{seq:d}}}'
    )


def chain_hash(prev_hash: str, entry_json: str) -> str:
    """Given the previous hash and an entry's canonical JSON, return the entry's hash.

    The hash is the hex SHA-256 of the UTF-8 bytes of ``prev_hash + entry_json``.
    """
    return hashlib.sha256((prev_hash + entry_json).encode()).hexdigest()
