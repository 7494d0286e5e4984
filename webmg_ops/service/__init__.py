"""The service the agency gives outside runs (incidents, changes, risks, notes...).

``records`` is the one module outside the engine that appends to the ledger:
notes, approvals and host-key enrolments, each a command of its own, and the
service's items through ``record_derived``. Incidents: ``sla`` (the client's
business calendar and SLA time, pure), ``incidents`` (state derived from the
ledger, each command's entry decided, the SLA clocks; pure) and
``incident_commands`` (reads the ledger, lets ``incidents`` decide, records).
"""
