"""The engine: every run passes through here, and only here is a run recorded.

``execute`` runs one action for one client (plan, refusals, lock, preflight,
the play, the outcome, the run log) and appends its entries to the ledger;
``governance`` decides whether a run may start (window, freeze, approval);
``lock`` keeps two runs off one client; ``history`` reads what the ledger
says about past runs; ``offsite_step`` copies and publishes after a run.
"""
