"""Backup manifests without restic: what a manifest lists (every regular file, its size and
SHA-256), which manifests a drill accepts, and how each kind of difference between a
restored tree and its manifest is named. Expectations come from hashlib and the files."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from webmg_ops.backups.manifest import (
    Mismatch,
    MismatchKind,
    UnsafePath,
    build_manifest,
    file_sha256,
    read_manifest,
    restored_path,
    verify_restore,
)

SHA = "ab" * 32


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A host's backup set: nested folders, an empty file, a file alone, symbolic links."""
    root = tmp_path / "host"
    (root / "app" / "deep" / "deeper").mkdir(parents=True)
    (root / "app" / "b.conf").write_bytes(b"beta\n")
    (root / "app" / "a.conf").write_bytes(b"alpha\n")
    (root / "app" / "deep" / "empty").write_bytes(b"")
    (root / "app" / "deep" / "deeper" / "big.bin").write_bytes(bytes(range(256)) * 5_000)
    (root / "app" / "link").symlink_to(root / "app" / "a.conf")
    (root / "db.dump").write_bytes(b"PGDMP dump")
    (root / "dump-link").symlink_to(root / "db.dump")
    return root


def test_a_manifest_lists_every_regular_file_with_its_size_and_sha256(tree: Path) -> None:
    """Files of folders at any depth and files named alone, sorted; links left out."""
    before = datetime.now(UTC)
    manifest = build_manifest(
        [tree / "db.dump", tree / "app", tree / "dump-link"],
        host="web1",
        extra={"databases": []},
    )
    after = datetime.now(UTC)
    regular = [
        tree / "app" / "a.conf",
        tree / "app" / "b.conf",
        tree / "app" / "deep" / "deeper" / "big.bin",
        tree / "app" / "deep" / "empty",
        tree / "db.dump",
    ]
    assert list(manifest["files"]) == sorted(str(path) for path in regular)
    for path in regular:
        data = path.read_bytes()
        assert manifest["files"][str(path)] == {"size": len(data), "sha256": _sha256(data)}
    assert manifest["version"] == 1
    assert manifest["host"] == "web1"
    assert manifest["paths"] == [str(tree / "db.dump"), str(tree / "app"), str(tree / "dump-link")]
    assert manifest["databases"] == []
    assert before <= datetime.fromisoformat(manifest["created"]) <= after
    assert build_manifest([tree / "db.dump"])["host"] == ""


def test_a_file_hash_is_its_sha256(tree: Path) -> None:
    big = tree / "app" / "deep" / "deeper" / "big.bin"
    assert file_sha256(big) == _sha256(big.read_bytes())


def _write(tmp_path: Path, document: Any) -> Path:
    file = tmp_path / "manifest.json"
    file.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return file


def _manifest(**changes: Any) -> dict[str, Any]:
    return {"version": 1, "files": {"/etc/a": {"size": 0, "sha256": SHA}}, **changes}


def test_a_valid_manifest_is_read_as_written(tmp_path: Path) -> None:
    """An empty file (size 0) and databases with their row counts are valid entries."""
    databases = [{"name": "demo", "engine": "postgresql", "dump": "/d", "row_counts": {"t": 0}}]
    written = _manifest(databases=databases, host="web1")
    assert read_manifest(_write(tmp_path, written)) == written
    assert read_manifest(_write(tmp_path, _manifest(databases=[{}]))) == _manifest(databases=[{}])


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not a readable manifest"),
        ([1, 2], "not a webmg-ops manifest$"),
        (_manifest(version=2), r"not a webmg-ops manifest \(version 2\)"),
        ({"files": {}}, r"not a webmg-ops manifest \(version None\)"),
        (_manifest(files=[]), r"not a webmg-ops manifest \(version 1\)"),
        (_manifest(files={"/a": {"size": -1, "sha256": SHA}}), "entry of '/a' is not a size"),
        (_manifest(files={"/a": {"size": True, "sha256": SHA}}), "entry of '/a' is not a size"),
        (_manifest(files={"/a": {"size": 1.0, "sha256": SHA}}), "entry of '/a' is not a size"),
        (_manifest(files={"/a": {"sha256": SHA}}), "entry of '/a' is not a size"),
        (_manifest(files={"/a": {"size": 1, "sha256": SHA.upper()}}), "entry of '/a'"),
        (_manifest(files={"/a": {"size": 1, "sha256": SHA[:-1]}}), "entry of '/a'"),
        (_manifest(files={"/a": {"size": 1, "sha256": "x" + SHA}}), "entry of '/a'"),
        (_manifest(files={"/a": {"size": 1}}), "entry of '/a'"),
        (_manifest(files={"/a": {"size": 1, "sha256": 5}}), "entry of '/a'"),
        (_manifest(files={"/a": [1, SHA]}), "entry of '/a'"),
        (_manifest(databases={"name": "demo"}), "'databases' is not a list"),
        (_manifest(databases=["demo"]), "'databases' is not a list"),
        (_manifest(databases=[{"name": 5}]), "'databases' is not a list"),
        (_manifest(databases=[{"engine": None}]), "'databases' is not a list"),
        (_manifest(databases=[{"dump": ["/d"]}]), "'databases' is not a list"),
        (_manifest(databases=[{"row_counts": [3]}]), "'databases' is not a list"),
        (_manifest(databases=[{"row_counts": {"t": "3"}}]), "'databases' is not a list"),
        (_manifest(databases=[{"row_counts": {"t": True}}]), "'databases' is not a list"),
    ],
)
def test_a_manifest_that_is_not_one_we_know_is_refused_with_why(
    tmp_path: Path, document: Any, message: str
) -> None:
    file = _write(tmp_path, document)
    with pytest.raises(ValueError, match=f"^{file}: .*{message}"):
        read_manifest(file)


def test_a_missing_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"not a readable manifest: .*No such file"):
        read_manifest(tmp_path / "absent.json")


@pytest.fixture
def restored(tmp_path: Path, tree: Path) -> tuple[dict[str, Any], Path]:
    """A manifest of TREE and a copy of TREE restored under a scratch folder."""
    manifest = build_manifest([tree / "app", tree / "db.dump"], host="web1")
    scratch = tmp_path / "scratch"
    for path in manifest["files"]:
        target = scratch / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(path).read_bytes())
    return manifest, scratch


def test_an_intact_restore_proves_every_file_and_byte(
    restored: tuple[dict[str, Any], Path], tree: Path
) -> None:
    manifest, scratch = restored
    result = verify_restore(manifest, scratch)
    sizes = [Path(path).stat().st_size for path in manifest["files"]]
    assert (result.ok, result.mismatches) == (True, ())
    assert (result.files_checked, result.bytes_checked) == (5, sum(sizes))


def test_every_difference_is_named_by_path_and_kind(
    restored: tuple[dict[str, Any], Path], tree: Path
) -> None:
    """Missing, resized, altered, not a file, behind a link or outside the tree: each file
    is named, sorted by path, with what was expected and found; bytes read still count."""
    manifest, scratch = restored

    def at(path: Path) -> Path:
        return scratch / str(path).lstrip("/")

    a, b = tree / "app" / "a.conf", tree / "app" / "b.conf"
    big, dump = tree / "app" / "deep" / "deeper" / "big.bin", tree / "db.dump"
    empty = tree / "app" / "deep" / "empty"
    at(a).unlink()
    at(b).write_bytes(b"beta, longer\n")
    altered = bytearray(big.read_bytes())
    altered[1000] ^= 0x01
    at(big).write_bytes(bytes(altered))
    at(dump).unlink()
    os.mkfifo(at(dump))  # opening a FIFO would block: it must not be read
    at(empty).unlink()
    at(empty).mkdir()
    # A folder of the restored tree replaced by a link to the live tree: never followed.
    outside = tree / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s" * 77)
    (scratch / str(tree).lstrip("/") / "elsewhere").symlink_to(outside)
    manifest["files"][str(tree / "elsewhere" / "secret")] = {"size": 77, "sha256": SHA}
    manifest["files"]["relative/path"] = {"size": 1, "sha256": SHA}
    result = verify_restore(manifest, scratch)
    digest = _sha256(bytes(altered))
    assert not result.ok
    assert result.mismatches == (
        Mismatch(str(a), MismatchKind.MISSING, "present", "absent"),
        Mismatch(str(b), MismatchKind.SIZE, "5 bytes", "13 bytes"),
        Mismatch(str(big), MismatchKind.CONTENT, _sha256(big.read_bytes())[:16], digest[:16]),
        Mismatch(str(empty), MismatchKind.MISSING, "a file", "no regular file"),
        Mismatch(str(dump), MismatchKind.MISSING, "a file", "no regular file"),
        Mismatch(str(tree / "elsewhere" / "secret"), MismatchKind.REFUSED,
                 "a path inside the snapshot",
                 f"{tree / 'elsewhere'} is a symbolic link in the restored snapshot"),
        Mismatch("relative/path", MismatchKind.REFUSED, "a path inside the snapshot",
                 "'relative/path' is not an absolute path"),
    )  # fmt: skip
    assert [m.path for m in result.mismatches] == sorted(m.path for m in result.mismatches)
    assert result.files_checked == 7
    assert result.bytes_checked == 13 + big.stat().st_size


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("etc/passwd", "'etc/passwd' is not an absolute path"),
        ("/etc/pass\0wd", r"'/etc/pass\\x00wd' is not an absolute path"),
        ("/etc//passwd", "'/etc//passwd' has an empty, '.' or '..' component"),
        ("/etc/./passwd", "'/etc/./passwd' has an empty"),
        ("/srv/../etc/passwd", "'/srv/../etc/passwd' has an empty"),
        ("/" + "a" * 300, "File name too long"),
    ],
)
def test_a_path_refused_says_why(tmp_path: Path, path: str, message: str) -> None:
    with pytest.raises(UnsafePath, match=message):
        restored_path(tmp_path, path)


def test_a_link_deep_in_the_tree_is_named_by_its_host_path(tmp_path: Path) -> None:
    (tmp_path / "srv" / "app").mkdir(parents=True)
    (tmp_path / "srv" / "app" / "data").symlink_to("/etc")
    with pytest.raises(UnsafePath, match=r"^/srv/app/data is a symbolic link in the restored"):
        restored_path(tmp_path, "/srv/app/data/passwd")
    assert restored_path(tmp_path, "/srv/app/other") == tmp_path.resolve() / "srv/app/other"


def _swapped_on_open(monkeypatch: pytest.MonkeyPatch, target: Path, swap: Any) -> list[int]:
    """Make the manifest's open of TARGET find it swapped by SWAP (after its lstat, before
    its open: the race a hostile restore could try); return the flags each open asked."""
    real_open = os.open
    flags_seen: list[int] = []

    def racing_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(path) == target:
            flags_seen.append(flags)
            swap(target)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", racing_open)
    return flags_seen


def _replace_with_file(target: Path) -> None:
    # Made before the old one goes: the new file cannot get its inode back.
    new = target.with_name("new")
    new.write_bytes(target.read_bytes())  # the same bytes, another file
    new.replace(target)


def _replace_with_fifo(target: Path) -> None:
    new = target.with_name("new")
    os.mkfifo(new)
    new.replace(target)


def _replace_with_link(target: Path) -> None:
    copy = target.with_name("copy")
    copy.write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(copy)


@pytest.mark.parametrize(
    ("swap", "expected"),
    [
        (_replace_with_file, (MismatchKind.REFUSED, "a file", "replaced while checked")),
        (_replace_with_fifo, (MismatchKind.REFUSED, "a file", "replaced while checked")),
        (_replace_with_link, (MismatchKind.MISSING, "present", "absent")),
    ],
)
def test_a_file_swapped_between_its_check_and_its_open_is_never_read_as_the_file(
    restored: tuple[dict[str, Any], Path],
    tree: Path,
    monkeypatch: pytest.MonkeyPatch,
    swap: Any,
    expected: tuple[MismatchKind, str, str],
) -> None:
    """Another file (even with the same bytes), a FIFO (opening one may block or act) or
    a link swapped in after the file was looked at: the file is refused or missing, its
    bytes are not counted, and the open never blocks nor follows a link."""
    manifest, scratch = restored
    a = tree / "app" / "a.conf"
    flags = _swapped_on_open(monkeypatch, scratch / str(a).lstrip("/"), swap)
    result = verify_restore(manifest, scratch)
    assert result.mismatches == (Mismatch(str(a), *expected),)
    sizes = [Path(path).stat().st_size for path in manifest["files"] if path != str(a)]
    assert (result.files_checked, result.bytes_checked) == (5, sum(sizes))
    (asked,) = flags
    assert asked & os.O_NONBLOCK and asked & os.O_NOFOLLOW
    assert asked & (os.O_WRONLY | os.O_RDWR) == 0


def test_a_folder_swapped_for_a_link_after_its_check_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder checked (not a link), then swapped for a link to the live tree before the
    path is resolved: the path leads outside the restored snapshot, and is refused."""
    root = tmp_path / "restored"
    (root / "srv" / "app").mkdir(parents=True)
    outside = tmp_path / "live"
    outside.mkdir()
    real_lstat = Path.lstat
    folder = (root / "srv" / "app").resolve()
    swapped: list[Path] = []

    def racing_lstat(self: Path) -> os.stat_result:
        seen = real_lstat(self)
        if self == folder and not swapped:
            swapped.append(folder)
            folder.rmdir()
            folder.symlink_to(outside)
        return seen

    monkeypatch.setattr(Path, "lstat", racing_lstat)
    with pytest.raises(UnsafePath, match=r"^'/srv/app/passwd' leads outside the restored"):
        restored_path(root, "/srv/app/passwd")
