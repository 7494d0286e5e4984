"""The service the agency gives outside runs (incidents, changes, risks, notes...).

``records`` is the one module outside the engine that appends to the ledger:
notes, approvals and host-key enrolments, each a command of its own.
"""
