"""Backup manifests: what a backup set held, file by file, and proof that a restore matches.

A manifest lists every file of a backup set with its size and SHA-256
(computed with hashlib, in chunks). It is written just before the backup
and saved inside the snapshot, so a restore drill checks the restored
files against what was backed up, not against today's disk. The hosts
build it with the same format (``roles/backup/files/webmg_manifest.py``).

A restored snapshot, its manifest included, is what a client's host sent:
root there may have written any path into the manifest and any symbolic
link into the snapshot. Every path a drill reads in the restored tree goes
through :func:`restored_path`, which keeps it inside the tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
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


#: A SHA-256 as the manifest writes it.
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class MismatchKind(StrEnum):
    """How a restored file differs from the manifest."""

    MISSING = "missing"
    SIZE = "size differs"
    CONTENT = "content differs"
    REFUSED = "path refused"


class UnsafePath(ValueError):
    """A path of a restored snapshot that is malformed or would lead out of the tree."""


def restored_path(root: Path, path: str) -> Path:
    """Given the folder a snapshot was restored into and a path as its host named it
    (absolute), return where that path lies in the folder, checked on disk.

    Raise UnsafePath if PATH is not a plain absolute path (relative, with a
    ``.`` or ``..`` or empty component, a NUL), if a component of it in the
    restored tree is a symbolic link, or if the result resolves outside ROOT.
    A component that does not exist ends the check (the caller finds it missing).
    """
    if not path.startswith("/") or "\0" in path:
        raise UnsafePath(f"{path!r} is not an absolute path")
    parts = path.split("/")[1:]
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafePath(f"{path!r} has an empty, '.' or '..' component")
    base = root.resolve()
    current = base
    for index, part in enumerate(parts):
        current = current / part
        # lstat, never stat: a link is refused, not followed, whatever it names.
        try:
            mode = current.lstat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            break
        except OSError as error:
            raise UnsafePath(f"{path!r}: {error.strerror}") from None
        if stat.S_ISLNK(mode):
            link = "/" + "/".join(parts[: index + 1])
            raise UnsafePath(f"{link} is a symbolic link in the restored snapshot")
    found = base.joinpath(*parts)
    if not found.resolve().is_relative_to(base):
        raise UnsafePath(f"{path!r} leads outside the restored snapshot")
    return found


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
            for name in files:  # build_manifest sorts every path it lists
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
    """Given a manifest file, return it. Raise ValueError if it is not a manifest we know,
    or if an entry is malformed (each file's size and SHA-256; each database's fields).
    """
    try:
        data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{file}: not a readable manifest: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{file}: not a webmg-ops manifest")
    if data.get("version") != MANIFEST_VERSION or not isinstance(data.get("files"), dict):
        raise ValueError(f"{file}: not a webmg-ops manifest (version {data.get('version')!r})")
    for path, entry in data["files"].items():
        if not _is_file_entry(entry):
            raise ValueError(f"{file}: the entry of {path!r} is not a size and a SHA-256")
    databases = data.get("databases") or []
    if not isinstance(databases, list) or not all(map(_is_database_entry, databases)):
        raise ValueError(f"{file}: 'databases' is not a list of name, engine, dump, row counts")
    return data


def _is_file_entry(entry: object) -> bool:
    """Return whether ENTRY is a file's entry: a size (bytes) and a SHA-256 in hex."""
    return (
        isinstance(entry, dict)
        and type(entry.get("size")) is int
        and entry["size"] >= 0
        and isinstance(entry.get("sha256"), str)
        and bool(_SHA256.match(entry["sha256"]))
    )


def _is_database_entry(entry: object) -> bool:
    """Return whether ENTRY is a database's entry: texts, and table -> row count."""
    if not isinstance(entry, dict):
        return False
    texts = all(isinstance(entry.get(key, ""), str) for key in ("name", "engine", "dump"))
    counts = entry.get("row_counts") or {}
    return texts and isinstance(counts, dict) and all(type(rows) is int for rows in counts.values())


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
    and its size. A path that would leave the restored tree is refused, never read.
    """
    try:
        restored = restored_path(restored_root, path)
    except UnsafePath as error:
        return Mismatch(path, MismatchKind.REFUSED, "a path inside the snapshot", str(error)), 0
    try:
        seen = restored.lstat()
        # A device node or FIFO of the snapshot is never opened: opening one may act.
        if not stat.S_ISREG(seen.st_mode):
            return Mismatch(path, MismatchKind.MISSING, "a file", "no regular file"), 0
        descriptor = os.open(restored, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # absent, or gone before it could be opened
        return Mismatch(path, MismatchKind.MISSING, "present", "absent"), 0
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if (info.st_dev, info.st_ino) != (seen.st_dev, seen.st_ino):
            return Mismatch(path, MismatchKind.REFUSED, "a file", "replaced while checked"), 0
        size = info.st_size
        if size != expected["size"]:
            return (
                Mismatch(path, MismatchKind.SIZE, f"{expected['size']} bytes", f"{size} bytes"),
                size,
            )
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    if digest != expected["sha256"]:
        return Mismatch(path, MismatchKind.CONTENT, expected["sha256"][:16], digest[:16]), size
    return None, size
