"""Benchmark the restore drill against bare restic plus a hashlib verification.

Run: ``.venv/bin/python bench/drill.py [--megabytes N] [--rounds R]``. It
backs up N MB of files (with their manifest) into a local repository, then
measures side by side, in alternating rounds, on the same snapshot:

- A: ``webmg_ops.backups.restore.run_drill`` (snapshot lookup and structure check beside
  the restore, then every file verified);
- B: the same drill by bare commands, one after the other as a script would
  run them: ``restic snapshots`` (the snapshot's time, for the RPO), ``restic
  check``, ``restic restore``, then every file hashed with hashlib and
  compared with the manifest;
- C: ``restic restore`` and the hashlib verification alone (no lookup, no
  check): the floor any drill stands on.

Prints the median of each, MB/s, and the ratios A/B (the target) and A/C
pair by pair. Asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from webmg_ops.backups.manifest import build_manifest
from webmg_ops.backups.restic import Repository, backup, init_repository
from webmg_ops.backups.restore import run_drill

#: What is timed: the drill, the same drill by bare commands, and restore plus hashing alone.
LABELS = (
    "webmg-ops drill",
    "bare snapshots+check+restore+hashlib",
    "bare restore+hashlib",
)


def make_data(root: Path, megabytes: int) -> None:
    """Write MEGABYTES of files of mixed sizes under ROOT."""
    root.mkdir(parents=True)
    sizes = [4_000, 60_000, 1_000_000]
    written, index = 0, 0
    while written < megabytes * 1_000_000:
        size = sizes[index % len(sizes)]
        (root / f"file-{index:05d}.bin").write_bytes(os.urandom(size))
        written += size
        index += 1


def bare_restic(repository: Repository, *arguments: str) -> str:
    """Run one restic command directly on the repository; return its output."""
    return subprocess.run(
        ["restic", "--quiet", *arguments],
        env={**os.environ, **repository.env()},
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def bare_drill(
    repository: Repository, snapshot: str, target: Path, manifest: Path, *, full: bool
) -> float:
    """Drill with restic directly and hashlib; return the seconds taken.

    ``full`` adds what a drill needs besides the restore: the snapshot's time
    (``restic snapshots``) and the repository's structure (``restic check``).
    """
    started = time.perf_counter()
    if full:
        (listed,) = [
            s
            for s in json.loads(bare_restic(repository, "snapshots", "--json"))
            if s["id"].startswith(snapshot)
        ]
        assert listed["time"]
        bare_restic(repository, "check")
    bare_restic(repository, "restore", snapshot, "--target", str(target))
    files = json.loads((target / str(manifest).lstrip("/")).read_text())["files"]
    for path, expected in files.items():
        with (target / path.lstrip("/")).open("rb") as handle:
            if hashlib.file_digest(handle, "sha256").hexdigest() != expected["sha256"]:
                raise SystemExit(f"bare drill: {path} differs")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200, help="Size of the backup set.")
    parser.add_argument("--rounds", type=int, default=5, help="Counted rounds.")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="webmg-drill-bench-"))
    try:
        data = work / "live"
        make_data(data / "app", options.megabytes)
        manifest_file = data / "manifest.json"
        manifest_file.write_text(json.dumps(build_manifest([data / "app"])))
        repository = Repository(str(work / "repo"), password="bench-password", cache_dir=work / "c")
        init_repository(repository)
        snapshot = backup(repository, [data]).snapshot_id
        total_mb = sum(p.stat().st_size for p in (data / "app").iterdir()) / 1e6
        times: dict[str, list[float]] = {label: [] for label in LABELS}
        for round_number in range(options.rounds + 1):
            scratch = {label: work / f"s{i}-{round_number}" for i, label in enumerate(LABELS)}
            started = time.perf_counter()
            result = run_drill(
                repository,
                scratch[LABELS[0]],
                rpo_target=timedelta(days=1),
                rto_target=timedelta(days=1),
                snapshot_id=snapshot,
                manifest_path=str(manifest_file),
            )
            elapsed = [time.perf_counter() - started]
            if not result.ok:
                raise SystemExit(f"drill failed: {result.failures}")
            for label, full in ((LABELS[1], True), (LABELS[2], False)):
                elapsed.append(
                    bare_drill(repository, snapshot, scratch[label], manifest_file, full=full)
                )
            for folder in scratch.values():
                shutil.rmtree(folder)
            if round_number:  # the first round warms the caches
                for label, seconds in zip(LABELS, elapsed, strict=True):
                    times[label].append(seconds)
        print(f"Restore drill of {total_mb:.0f} MB, {options.rounds} rounds (target ratio <= 1.05)")
        for label, spent in times.items():
            median = statistics.median(spent)
            print(f"  {label:<40} median {median:6.2f} s  {total_mb / median:7.1f} MB/s")
        ours = times[LABELS[0]]
        for label in LABELS[1:]:
            ratios = [a / b for a, b in zip(ours, times[label], strict=True)]
            print(
                f"  ratio drill / {label}: median {statistics.median(ratios):.3f} "
                f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
