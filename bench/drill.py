"""Benchmark the restore drill against bare restic plus a hashlib verification.

Run: ``.venv/bin/python bench/drill.py [--megabytes N] [--rounds R]``. It
backs up N MB of files (with their manifest) into a local repository, then
measures side by side, in alternating rounds, on the same snapshot:

- A: ``webmg_ops.drill.run_drill`` (structure check and snapshot lookup beside the
  restore, then every file verified);
- B: ``restic restore`` run directly, then every file hashed with hashlib and
  compared with the manifest.

Prints the median of each, MB/s, and the ratio A/B pair by pair. Asserts nothing.
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

from webmg_ops.drill import run_drill
from webmg_ops.manifest import build_manifest
from webmg_ops.restic import Repository, backup, init_repository


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


def bare_drill(repository: Repository, snapshot: str, target: Path, manifest: Path) -> float:
    """Restore with restic directly and verify with hashlib; return the seconds taken."""
    started = time.perf_counter()
    subprocess.run(
        ["restic", "--quiet", "restore", snapshot, "--target", str(target)],
        env={**os.environ, **repository.env()},
        check=True,
    )
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
        ours: list[float] = []
        bare: list[float] = []
        for round_number in range(options.rounds + 1):
            scratch_a, scratch_b = work / f"a{round_number}", work / f"b{round_number}"
            started = time.perf_counter()
            result = run_drill(
                repository,
                scratch_a,
                rpo_target=timedelta(days=1),
                rto_target=timedelta(days=1),
                snapshot_id=snapshot,
                manifest_path=str(manifest_file),
            )
            elapsed_a = time.perf_counter() - started
            if not result.ok:
                raise SystemExit(f"drill failed: {result.failures}")
            elapsed_b = bare_drill(repository, snapshot, scratch_b, manifest_file)
            shutil.rmtree(scratch_a)
            shutil.rmtree(scratch_b)
            if round_number:  # the first round warms the caches
                ours.append(elapsed_a)
                bare.append(elapsed_b)
        ratios = [a / b for a, b in zip(ours, bare, strict=True)]
        print(f"Restore drill of {total_mb:.0f} MB, {options.rounds} rounds (target ratio <= 1.05)")
        for label, times in (("webmg-ops drill", ours), ("restic restore + hashlib", bare)):
            median = statistics.median(times)
            print(f"  {label:<26} median {median:6.2f} s  {total_mb / median:7.1f} MB/s")
        print(
            f"  ratio drill / bare: median {statistics.median(ratios):.3f} "
            f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
