"""The engine: every run passes through here, and only here is a run recorded.

``plan`` computes what a run would do; ``governance`` decides whether it may
start (window, freeze, approval); ``lock`` keeps two runs off one client;
``execute`` runs one action for one client (the lock, preflight, the play,
the outcome, the run log) and appends its entries to the ledger, built by
``record``; ``reconcile`` closes the runs whose process died; ``cancel``
turns SIGINT/SIGTERM into a request to stop; ``history`` reads what the
ledger says about past runs; ``offsite_step`` copies and publishes after a
run.
"""
