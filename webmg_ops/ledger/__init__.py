"""The ledger: an append-only, hash-chained record of maintenance runs and decisions.

Each entry stores ``sha256(prev_hash || canonical JSON of {seq, kind, client,
at, actor, [format,] payload})`` in its format (RFC 8785 for new entries, see
:mod:`webmg_ops.ledger.canonical`); :func:`verify_ledger` recomputes the chain and names
the first broken entry. The database refuses UPDATE and DELETE; a correction
is a new entry naming the seq it corrects.

This package knows nothing of Ansible or of the rest of the tool: callers pass
it plain, already masked payloads.
"""

from __future__ import annotations

from webmg_ops.ledger.actor import OPERATOR_VARIABLE, require_operator, resolve_actor
from webmg_ops.ledger.canonical import (
    CURRENT_FORMAT,
    ENTRY_FORMATS,
    GENESIS_HASH,
    JCS_FORMAT,
    LEGACY_FORMAT,
    canonical_entry,
    canonical_json,
    chain_hash,
    format_utc,
    jcs_json,
    parse_utc,
)
from webmg_ops.ledger.database import SUPPORTED_BACKENDS, mask_url
from webmg_ops.ledger.export import CSV_COLUMNS, EXPORT_FORMATS, ExportFormat, export_entries
from webmg_ops.ledger.records import (
    CORRECTS_KEY,
    KNOWN_KINDS,
    REASON_KEY,
    Checkpoint,
    Entry,
    NewEntry,
    make_correction,
    parse_checkpoint,
    validate_kind,
)
from webmg_ops.ledger.store import Ledger, LedgerReader, StoredRow, open_ledger
from webmg_ops.ledger.verify import VerifyReport, verify_ledger

__all__ = [
    "CORRECTS_KEY",
    "CSV_COLUMNS",
    "CURRENT_FORMAT",
    "ENTRY_FORMATS",
    "EXPORT_FORMATS",
    "GENESIS_HASH",
    "JCS_FORMAT",
    "KNOWN_KINDS",
    "LEGACY_FORMAT",
    "OPERATOR_VARIABLE",
    "REASON_KEY",
    "SUPPORTED_BACKENDS",
    "Checkpoint",
    "Entry",
    "ExportFormat",
    "Ledger",
    "LedgerReader",
    "NewEntry",
    "StoredRow",
    "VerifyReport",
    "canonical_entry",
    "canonical_json",
    "chain_hash",
    "export_entries",
    "format_utc",
    "jcs_json",
    "make_correction",
    "mask_url",
    "open_ledger",
    "parse_checkpoint",
    "parse_utc",
    "require_operator",
    "resolve_actor",
    "validate_kind",
    "verify_ledger",
]
