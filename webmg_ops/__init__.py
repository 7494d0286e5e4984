"""webmg-ops: governed maintenance for client servers.

Controlled updates, security hardening and verified backups with restore
drills, each run recorded as a traceable maintenance action in a
tamper-evident ledger.
"""

__version__ = "0.1.0"
