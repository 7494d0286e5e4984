"""Shared values of the restic and drill tests."""

#: The password of every test repository (also a canary: it must never reach an argv).
RESTIC_PASSWORD = "restic-canary-password-7f3a9c1e5b"
