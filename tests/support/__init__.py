"""Helpers the tests share: the lab, backups, S3, PostgreSQL, restic, the ledger, leaks."""
