"""Backup manifests: what a backup set held, file by file, and proof that a restore matches.

A manifest lists every file of a backup set with its size and SHA-256
(computed with hashlib, in chunks). It is written just before the backup
and saved inside the snapshot, so a restore drill checks the restored
files against what was backed up, not against today's disk. The hosts
build it with the same format (``roles/backup/files/webmg_manifest.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

MANIFEST_VERSION = 1
#: Where the manifest lives on a host, and so inside every snapshot.
MANIFEST_PATH = "/var/backups/webmg/manifest.json"


class MismatchKind(StrEnum):
    """How a restored file differs from the manifest."""

    MISSING = "missing"
    SIZE = "size differs"
    CONTENT = "content differs"


@dataclass(frozen=True)
class Mismatch:
    """One restored file that does not match the manifest."""

    path: str
    kind: MismatchKind
    expected: str
    found: str


@dataclass(frozen=True)
class Verification:
    """The result of checking a restored tree against a manifest."""

    files_checked: int
    bytes_checked: int
    mismatches: tuple[Mismatch, ...]

    @property
    def ok(self) -> bool:
        """Return whether every file of the manifest was restored intact."""
        return not self.mismatches


def file_sha256(path: Path) -> str:
    """Given a file, return its SHA-256 in hex (streamed, any size)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _walk(paths: Iterable[Path]) -> Iterator[Path]:
    for root in paths:
        if root.is_file() and not root.is_symlink():
            yield root
            continue
        for folder, _dirs, files in os.walk(root):
            for name in sorted(files):
                candidate = Path(folder) / name
                if candidate.is_file() and not candidate.is_symlink():
                    yield candidate


def build_manifest(
    paths: Iterable[Path], *, host: str = "", extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Given the paths of a backup set, return its manifest (regular files; links skipped)."""
    roots = [Path(path) for path in paths]
    files = {
        str(file): {"size": file.stat().st_size, "sha256": file_sha256(file)}
        for file in sorted(_walk(roots))
    }
    return {
        "version": MANIFEST_VERSION,
        "created": datetime.now(UTC).isoformat(),
        "host": host,
        "paths": [str(root) for root in roots],
        "files": files,
        **(extra or {}),
    }


def read_manifest(file: Path) -> dict[str, Any]:
    """Given a manifest file, return it. Raise ValueError if it is not a manifest we know."""
    try:
        data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{file}: not a readable manifest: {error}") from error
    if data.get("version") != MANIFEST_VERSION or not isinstance(data.get("files"), dict):
        raise ValueError(f"{file}: not a webmg-ops manifest (version {data.get('version')!r})")
    return data


def verify_restore(manifest: dict[str, Any], restored_root: Path) -> Verification:
    """Given a manifest and the folder a snapshot was restored into, check every file.

    Each manifest path ``/a/b`` is looked for at ``restored_root/a/b``.
    Return the verification, naming every missing or different file.
    """
    # Files are hashed on every core: hashlib lets go of the GIL while it hashes.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        found = list(
            pool.map(lambda item: _check_file(restored_root, *item), manifest["files"].items())
        )
    mismatches = tuple(mismatch for mismatch, _size in found if mismatch is not None)
    return Verification(
        files_checked=len(found),
        bytes_checked=sum(size for _mismatch, size in found),
        mismatches=tuple(sorted(mismatches, key=lambda item: item.path)),
    )


def _check_file(
    restored_root: Path, path: str, expected: dict[str, Any]
) -> tuple[Mismatch | None, int]:
    """Return how one restored file differs from its manifest entry (None: it does not),
    and its size.
    """
    restored = restored_root / path.lstrip("/")
    if not restored.is_file():
        return Mismatch(path, MismatchKind.MISSING, "present", "absent"), 0
    size = restored.stat().st_size
    if size != expected["size"]:
        return (
            Mismatch(path, MismatchKind.SIZE, f"{expected['size']} bytes", f"{size} bytes"),
            size,
        )
    digest = file_sha256(restored)
    if digest != expected["sha256"]:
        return Mismatch(path, MismatchKind.CONTENT, expected["sha256"][:16], digest[:16]), size
    return None, size
