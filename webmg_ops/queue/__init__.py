"""The job queue: runs submitted for later and carried out by workers on any controller.

Procrastinate keeps the queue in PostgreSQL (the ledger's database, or the one
``WEBMG_QUEUE_URL`` names): no other service to run, LISTEN/NOTIFY to wake the
workers, a lock per client so that one client never has two runs at once across
the fleet. This package is the only one that imports it. A job is a run request;
a worker carries it out with ``webmg-ops run``, the same engine as a run by hand,
so the ledger, run logs, governance and crash safety are those of any run.
"""
