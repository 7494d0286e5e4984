#!/usr/bin/python3
"""List the restic repository's locks and say which this host left behind, dead.

Usage: webmg_restic_locks.py [RESTIC_OPTION]...   (e.g. rclone.program=ssh)

The repository and its password come from the environment
(``RESTIC_REPOSITORY``, ``RESTIC_PASSWORD_FILE``), never argv. A lock is
stale here when this host made it (same host name) and its process no
longer exists: a backup killed before it could remove its lock. Locks of
other hosts are listed, never judged. Prints JSON: ``locks`` (each
``id``, ``hostname``, ``pid``, ``time``, ``exclusive``, ``stale``) and
``stale`` (their ids). Reads only (``--no-lock``); exits 1 if restic fails.
Standard library only.
"""

import json
import os
import socket
import subprocess
import sys


def restic(options, *arguments):
    """Run restic without taking a lock; return its standard output. Raise RuntimeError."""
    argv = [os.environ.get("WEBMG_RESTIC", "restic"), "--no-lock", "--quiet"]
    for option in options:
        argv += ["-o", option]
    done = subprocess.run(
        [*argv, *arguments], capture_output=True, text=True, check=False, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"restic {' '.join(arguments)}: {done.stderr.strip()}")
    return done.stdout


def process_exists(pid):
    """Given a PID, return whether a process with it exists on this host."""
    return pid > 0 and os.path.exists(f"/proc/{pid}")


def main(argv):
    me = socket.gethostname()
    try:
        ids = [line.strip() for line in restic(argv, "list", "locks").splitlines() if line.strip()]
        locks = []
        for lock_id in ids:
            try:
                data = json.loads(restic(argv, "cat", "lock", lock_id))
            except RuntimeError:
                continue  # removed meanwhile by its own process
            pid = int(data.get("pid") or 0)
            hostname = str(data.get("hostname", ""))
            locks.append(
                {
                    "id": lock_id,
                    "hostname": hostname,
                    "pid": pid,
                    "time": data.get("time"),
                    "exclusive": bool(data.get("exclusive")),
                    "stale": hostname == me and not process_exists(pid),
                }
            )
    except RuntimeError as error:
        print(str(error), file=sys.stderr)
        return 1
    print(json.dumps({"locks": locks, "stale": [lock["id"] for lock in locks if lock["stale"]]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
