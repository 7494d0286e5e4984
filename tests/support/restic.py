"""Shared values and helpers of the restic and drill tests."""

from pathlib import Path

#: The password of every test repository (also a canary: it must never reach an argv).
RESTIC_PASSWORD = "restic-canary-password-7f3a9c1e5b"


def damage_largest_pack(repository_location: str, damage: str) -> Path:
    """Damage the largest pack file of a local repository; return its path.

    ``damage`` is ``flip-byte`` (one byte in the middle), ``delete`` or
    ``truncate`` (half of it). The largest pack holds file data: losing a tree
    pack makes restic 0.14 retry reading it for minutes.
    """
    packs = [path for path in (Path(repository_location) / "data").rglob("*") if path.is_file()]
    pack = max(packs, key=lambda path: path.stat().st_size)
    if damage == "flip-byte":
        data = bytearray(pack.read_bytes())
        data[len(data) // 2] ^= 0xFF
        pack.write_bytes(bytes(data))
    elif damage == "delete":
        pack.unlink()
    elif damage == "truncate":
        pack.write_bytes(pack.read_bytes()[: pack.stat().st_size // 2])
    else:
        raise ValueError(f"unknown damage {damage!r}")
    return pack
