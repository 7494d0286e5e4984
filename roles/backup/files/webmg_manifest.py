#!/usr/bin/python3
"""Write the backup manifest of this host: every file's size and SHA-256, as JSON.

Usage: webmg_manifest.py --output FILE [--host NAME] [--exclude PATH]...
       [--databases JSON] PATH...

Walks each PATH (a file or a folder; symbolic links and special files are
skipped, as restic saves links as links) and writes, atomically and
readable by root only, the manifest in the format of
``webmg_ops/backups/manifest.py``: ``version`` (1), ``created`` (UTC, ISO 8601),
``host``, ``paths``, ``files`` (path -> ``size``, ``sha256``), plus
``databases`` (the dumps' names, engines, files and row counts) when given.
Files under an ``--exclude`` path, and the output file itself, are left
out, as the backup leaves them out. Hashes are computed in chunks, so a
file of any size is read in constant memory. Prints a one-line JSON
summary: ``files``, ``bytes``, ``duration_s``. Standard library only: it
runs with the host's python3.
"""

import argparse
import hashlib
import json
import os
import sys
import time
from datetime import datetime, timezone

MANIFEST_VERSION = 1
CHUNK_BYTES = 1024 * 1024


def file_sha256(path):
    """Given a file's path, return its SHA-256 in hex, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK_BYTES)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def _excluded(path, excludes):
    return any(path == item or path.startswith(item.rstrip("/") + "/") for item in excludes)


def walk(roots, excludes):
    """Given the roots and excluded paths, yield every regular file (links skipped)."""
    for root in roots:
        if _excluded(root, excludes):
            continue
        if os.path.isfile(root) and not os.path.islink(root):
            yield root
            continue
        for folder, dirs, files in os.walk(root):
            dirs[:] = [name for name in dirs if not _excluded(os.path.join(folder, name), excludes)]
            for name in sorted(files):
                candidate = os.path.join(folder, name)
                if _excluded(candidate, excludes):
                    continue
                if os.path.isfile(candidate) and not os.path.islink(candidate):
                    yield candidate


def build_manifest(roots, host, excludes, databases):
    """Given the roots, host name, excluded paths and database dumps, return the manifest."""
    files = {}
    for path in sorted(walk(roots, excludes)):
        try:
            files[path] = {"size": os.stat(path).st_size, "sha256": file_sha256(path)}
        except FileNotFoundError:
            continue  # removed while the tree was walked: the backup will not hold it either
    manifest = {
        "version": MANIFEST_VERSION,
        "created": datetime.now(timezone.utc).isoformat(),
        "host": host,
        "paths": list(roots),
        "files": files,
    }
    if databases is not None:
        manifest["databases"] = databases
    return manifest


def write_private(path, text):
    """Given a path and text, write it atomically, readable by its owner only."""
    folder = os.path.dirname(path) or "."
    partial = os.path.join(folder, "." + os.path.basename(path) + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(partial, path)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--host", default="")
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--databases", default=None, help="JSON list of the database dumps")
    parser.add_argument("paths", nargs="+")
    options = parser.parse_args(argv)
    for path in options.paths:
        if not os.path.isabs(path):
            parser.error(f"path {path!r} is not absolute")
    started = time.monotonic()
    databases = json.loads(options.databases) if options.databases is not None else None
    output = os.path.abspath(options.output)
    manifest = build_manifest(
        [os.path.normpath(path) for path in options.paths],
        options.host,
        [os.path.normpath(path) for path in options.exclude] + [output],
        databases,
    )
    write_private(output, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    summary = {
        "manifest": output,
        "files": len(manifest["files"]),
        "bytes": sum(item["size"] for item in manifest["files"].values()),
        "duration_s": round(time.monotonic() - started, 3),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
