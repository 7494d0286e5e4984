#!/usr/bin/python3
"""A backup between runs, started by the host's systemd timer; and the record of such backups.

Usage:
  webmg_timer_backup.py CONFIG          take one backup as the backup role does
  webmg_timer_backup.py --collect LOG   print the runs not yet recorded, and mark them recorded

CONFIG is the JSON the role writes (root only; no secret in it: the
repository password and S3 keys stay in their root-only files). A backup
is skipped (and recorded so) while an orchestrated backup holds the host
(its hold file is younger than ``hold_max_age_s``); otherwise it
dumps the host's databases (``webmg_db_dump.py``), writes the manifest
(``webmg_manifest.py``), and runs ``restic backup`` with the role's tags
plus the timer's own, exactly as the orchestrated backup does. Each run,
succeeded or not, appends one JSON line to the config's ``runs_log``: the
orchestrator collects those lines at its next backup run and records them
in the ledger. Exits 1 when the backup failed. Standard library only.
"""

import datetime
import fcntl
import json
import os
import subprocess
import sys
import time

#: restic's exit status for a snapshot taken although some files could not be read.
PARTIAL = 3


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _run(argv, env=None):
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)


def _summary(stdout):
    for line in reversed(stdout.splitlines()):
        if '"message_type":"summary"' in line.replace(" ", ""):
            return json.loads(line)
    return {}


def held_off(config):
    """Return whether an orchestrated backup of this host is writing its dumps and snapshot."""
    try:
        age = time.time() - os.stat(config["hold_file"]).st_mtime
    except OSError:
        return False
    return age < float(config["hold_max_age_s"])


def take_backup(config):
    """Given the role's config, take one backup; return the run's record."""
    started = time.monotonic()
    record = {"at": _now(), "host": config["host"], "ok": False}
    if held_off(config):
        record.update(skipped=True, error="skipped: an orchestrated backup was running")
        return record
    here = os.path.dirname(os.path.abspath(__file__))
    databases = []
    if config["databases"]:
        dumped = _run([sys.executable, os.path.join(here, "webmg_db_dump.py"),
                       config["dump_dir"], json.dumps(config["databases"])])
        if dumped.returncode != 0:
            record["error"] = "database dump: " + (dumped.stderr.strip()[-300:] or "failed")
            return record
        databases = [{key: item[key] for key in ("name", "engine", "dump", "row_counts")
                      if key in item} for item in json.loads(dumped.stdout)]
        record["databases"] = databases
    paths = [path for path in config["paths"] if os.path.exists(path)]
    manifest = _run([sys.executable, os.path.join(here, "webmg_manifest.py"),
                     "--output", config["manifest_file"], "--host", config["host"],
                     *[arg for path in config["excluded"] for arg in ("--exclude", path)],
                     "--databases", json.dumps(databases), *paths, config["dump_dir"]])
    if manifest.returncode != 0:
        record["error"] = "manifest: " + (manifest.stderr.strip()[-300:] or "failed")
        return record
    environment = {**os.environ, **config["environment"]}
    tags = [arg for tag in config["tags"] for arg in ("--tag", tag)]
    excluded = ["--exclude=" + path for path in config["excluded"]]
    done = _run([*config["restic_argv"], "backup", "--json", "--host", config["host"], *tags,
                 *excluded, "--", *paths, config["work_dir"]], env=environment)
    summary = _summary(done.stdout)
    record.update({
        "exit_status": done.returncode,
        "snapshot_id": summary.get("snapshot_id"),
        "files_new": summary.get("files_new"),
        "bytes_added": summary.get("data_added"),
        "partial": done.returncode == PARTIAL,
        "ok": done.returncode in (0, PARTIAL) and bool(summary.get("snapshot_id")),
    })
    if not record["ok"]:
        record["error"] = "restic backup: " + (done.stderr.strip()[-300:] or "failed")
    record["duration_s"] = round(time.monotonic() - started, 3)
    return record


def append_record(log, record):
    """Append one run's record to the log (root only), under a lock."""
    descriptor = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps(record, sort_keys=True) + "\n")


def collect(log):
    """Print the runs not yet recorded as a JSON list; move them to LOG.recorded."""
    if not os.path.exists(log):
        print("[]")
        return
    with open(log, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        lines = [line for line in handle.read().splitlines() if line.strip()]
        if lines:
            descriptor = os.open(log + ".recorded", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(descriptor, "a") as recorded:
                recorded.write("\n".join(lines) + "\n")
        handle.seek(0)
        handle.truncate()
    print(json.dumps([json.loads(line) for line in lines]))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--collect":
        collect(sys.argv[2])
        return 0
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    with open(sys.argv[1]) as handle:
        config = json.load(handle)
    record = take_backup(config)
    append_record(config["runs_log"], record)
    if not record["ok"] and not record.get("skipped"):
        sys.stderr.write(record.get("error", "backup failed") + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
