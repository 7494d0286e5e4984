"""The ids of the service's items: ``<PREFIX>-<seq>``.

An item's id is its prefix and the ledger seq of the entry that created it
(``INC-42``, ``CHG-43``, ``RSK-44``, ``DEC-45``): globally unique and stable, since the
ledger is append-only. A risk that runs reported has no entry of its own; it
is named by the run-finished entry that first reported it and its place in
that entry's residual risks (``RSK-44.2``). The client of an item is the
creating entry's client, so commands take an id alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from webmg_ops.errors import BadInput

INCIDENT_PREFIX = "INC"
CHANGE_PREFIX = "CHG"
RISK_PREFIX = "RSK"
DECISION_PREFIX = "DEC"
#: A post-mortem's action in the backlog: ``ACT-<post-mortem seq>.<n>``.
ACTION_PREFIX = "ACT"

#: What each prefix names, for messages.
ITEM_NAMES: dict[str, str] = {
    INCIDENT_PREFIX: "incident",
    CHANGE_PREFIX: "change",
    RISK_PREFIX: "risk",
    DECISION_PREFIX: "decision",
    ACTION_PREFIX: "post-mortem action",
}

_ID_PATTERN = re.compile(r"([A-Z]+)-([1-9][0-9]*)(?:\.([1-9][0-9]*))?")


@dataclass(frozen=True)
class ItemId:
    """An item's id: its prefix, the seq of its creating entry, and its place in that entry
    (None: the entry creates one item)."""

    prefix: str
    seq: int
    index: int | None = None

    def __str__(self) -> str:
        suffix = f".{self.index}" if self.index is not None else ""
        return f"{self.prefix}-{self.seq}{suffix}"


def format_id(prefix: str, seq: int, index: int | None = None) -> str:
    """Given a prefix, a seq and an optional place, return the item's id as text."""
    return str(ItemId(prefix, seq, index))


def parse_id(text: str, prefix: str, *, indexed: bool = False) -> ItemId:
    """Given an id as typed and the prefix expected, return the parsed id.

    ``indexed`` allows a place after the seq (``RSK-44.2``). Raise BadInput if
    the text is not ``<PREFIX>-<seq>`` with that prefix.
    """
    match = _ID_PATTERN.fullmatch(text.strip().upper())
    example = f"{prefix}-42" + (f" or {prefix}-42.1" if indexed else "")
    if match is None or match.group(1) != prefix or (match.group(3) and not indexed):
        name = ITEM_NAMES[prefix]
        article = "an" if name[0] in "aeiou" else "a"
        raise BadInput(f"{text!r} is not {article} {name} id (expected {example})")
    index = int(match.group(3)) if match.group(3) else None
    return ItemId(prefix, int(match.group(2)), index)
