"""Runs as the service speaks of them: their records and what is due next.

``records`` is the vocabulary every layer shares (kinds, outcomes, host
results, the run-started/-finished/-refused records); ``due`` tells from
the ledger's history and the calendar what each client is due.
"""
