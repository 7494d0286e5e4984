"""Helpers of the governance tests: ledger state the gates read."""

from __future__ import annotations

from webmg_ops.ledger import Ledger
from webmg_ops.runs.records import RUN_FINISHED


def record_diagnostic(ledger: Ledger, client: str) -> None:
    """Put a successful diagnostic of CLIENT on record, as governance looks for it.

    For the tests of the gate itself; the lab tests run a real diagnostic.
    """
    ledger.append(
        RUN_FINISHED,
        client,
        {"run_id": f"{client}-diagnose-test", "action": "diagnose", "outcome": "succeeded"},
    )
