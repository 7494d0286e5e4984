"""The ledger's records: entries, drafts of entries, checkpoints, and their rules.

Kinds are validated strings (lowercase words joined by hyphens) rather than an
enum, so that later features add kinds without editing this module;
:data:`KNOWN_KINDS` lists the ones in use today.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from webmg_ops.errors import BadInput, Failed

KNOWN_KINDS: tuple[str, ...] = ("run-started", "run-finished", "note")
"""Entry kinds written today; any kind matching :data:`KIND_PATTERN` is accepted."""

KIND_PATTERN = re.compile(r"[a-z]+(?:-[a-z]+)*")
CLIENT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_KIND_LENGTH = 64
MAX_CLIENT_LENGTH = 128
MAX_ACTOR_LENGTH = 200

CORRECTS_KEY = "corrects"
"""Payload key naming the seq that an entry corrects."""
REASON_KEY = "reason"

_HASH_PATTERN = re.compile(r"[0-9a-f]{64}")
_CHECKPOINT_PATTERN = re.compile(r"([1-9][0-9]*):([0-9a-fA-F]{64})")


def validate_kind(kind: str) -> str:
    """Given an entry kind, return it. Raise BadInput if it is not lowercase words and hyphens."""
    if not (
        isinstance(kind, str) and len(kind) <= MAX_KIND_LENGTH and KIND_PATTERN.fullmatch(kind)
    ):
        raise BadInput(f"entry kind {kind!r} must be lowercase words joined by hyphens")
    return kind


def validate_client(client: str | None) -> str | None:
    """Given a client name or None (a global entry), return it.

    Raise BadInput if the name is empty, too long, or has characters other
    than letters, digits, dots, hyphens and underscores.
    """
    if client is None:
        return None
    if not (
        isinstance(client, str)
        and len(client) <= MAX_CLIENT_LENGTH
        and CLIENT_PATTERN.fullmatch(client)
    ):
        raise BadInput(
            f"client {client!r} must be letters, digits, '.', '-' or '_' "
            f"(at most {MAX_CLIENT_LENGTH} characters)"
        )
    return client


def validate_actor(actor: str) -> str:
    """Given who acts, return it. Raise BadInput if it is empty, too long or unprintable."""
    if not (
        isinstance(actor, str)
        and 0 < len(actor) <= MAX_ACTOR_LENGTH
        and actor.isprintable()
        and actor.strip() == actor
    ):
        raise BadInput(
            f"actor {actor!r} must be printable text without surrounding spaces "
            f"(1 to {MAX_ACTOR_LENGTH} characters)"
        )
    return actor


@dataclass(frozen=True)
class Checkpoint:
    """A point of the chain: an entry's seq and hash, written ``seq:hash``."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


def parse_checkpoint(text: str) -> Checkpoint:
    """Given ``SEQ:HASH`` text (as ``ledger head`` prints it), return the checkpoint.

    Raise BadInput if the seq is not a positive integer or the hash not 64 hex digits.
    """
    match = _CHECKPOINT_PATTERN.fullmatch(text.strip())
    if match is None:
        raise BadInput(
            f"checkpoint {text!r} must be SEQ:HASH, a positive seq and 64 hex digits "
            "(as printed by 'webmg-ops ledger head')"
        )
    return Checkpoint(seq=int(match.group(1)), hash=match.group(2).lower())


def is_hash(text: object) -> bool:
    """Given a value, return whether it is a hash as stored: 64 lowercase hex digits."""
    return isinstance(text, str) and _HASH_PATTERN.fullmatch(text) is not None


@dataclass(frozen=True)
class NewEntry:
    """An entry to append: what happened, for which client (None: global), by whom, when.

    ``actor`` None means the ledger's operator; ``at`` None means now.
    """

    kind: str
    client: str | None
    payload: Mapping[str, Any]
    actor: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class Entry:
    """One stored entry of the ledger, with its place in the hash chain.

    ``payload_json`` is the payload's canonical JSON as stored and hashed;
    :attr:`payload` is that JSON parsed (on first use). ``format`` is the
    canonical form it was hashed in (1: sorted compact JSON, 2: RFC 8785).
    """

    seq: int
    kind: str
    client: str | None
    at: datetime
    actor: str
    payload_json: str
    prev_hash: str
    hash: str
    format: int = 1

    @cached_property
    def payload(self) -> dict[str, Any]:
        """The payload: what happened, as a JSON object.

        Raise Failed if the stored text is not a JSON object (altered outside the ledger).
        """
        try:
            payload = json.loads(self.payload_json)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise Failed(
                f"ledger entry {self.seq} has an unreadable payload: run 'webmg-ops ledger verify'"
            )
        return payload

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint ``seq:hash`` of this entry."""
        return Checkpoint(self.seq, self.hash)

    @property
    def corrects(self) -> int | None:
        """The seq this entry corrects, or None if it corrects nothing."""
        value = self.payload.get(CORRECTS_KEY)
        return value if isinstance(value, int) and not isinstance(value, bool) else None


def make_correction(
    original: Entry, payload: Mapping[str, Any], *, reason: str, actor: str | None = None
) -> NewEntry:
    """Given a stored entry, its corrected payload and why, return the correcting entry.

    The ledger is append-only: a correction restates the entry (same kind and
    client) with the corrected payload, plus ``corrects`` (the original's seq)
    and ``reason``. Readers such as :meth:`Ledger.latest` then ignore the
    original. Raise BadInput if the reason is blank or the payload already
    names those keys.
    """
    if not reason.strip():
        raise BadInput("a correction needs a reason")
    clashing = {CORRECTS_KEY, REASON_KEY} & set(payload)
    if clashing:
        raise BadInput(f"a corrected payload must not set {sorted(clashing)}")
    return NewEntry(
        kind=original.kind,
        client=original.client,
        payload={**payload, CORRECTS_KEY: original.seq, REASON_KEY: reason.strip()},
        actor=actor,
    )
