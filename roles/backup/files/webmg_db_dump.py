#!/usr/bin/python3
"""Dump this host's databases just before the backup, and count the rows of each table.

Usage: webmg_db_dump.py DUMP_DIR JSON

JSON is a list of databases: ``name``, ``engine`` (``postgresql`` or
``sqlite``) and, for SQLite, ``path``. Each dump is written atomically,
readable by root only, to ``DUMP_DIR/<name>.dump``:

- PostgreSQL: ``pg_dump -Fc`` run as the ``postgres`` account; the row
  counts are read from the dump itself (``pg_restore --data-only`` to
  standard output, one line per row of each COPY), so they are exactly
  what a restore of this dump brings back, whatever was written meanwhile.
- SQLite: the online backup API (a consistent copy while the application
  runs); the rows are counted in the copy.

Row counts are keyed ``<database>.<table>`` (``<database>.<schema>.<table>``
for a PostgreSQL schema other than ``public``). Prints a JSON list: per
database ``name``, ``engine``, ``dump``, ``bytes``, ``row_counts`` and
``duration_s``. Exits 1 with a message on stderr if a dump fails.
Standard library only.

The script runs as root, and a name comes from the contract: every name is
checked before anything is written (a plain identifier, so it can be
neither a path nor a libpq conninfo string; exits 2 otherwise), the dump
file is built from the checked name and must resolve inside DUMP_DIR, and
pg_dump is given a conninfo that names the database and nothing else.
"""

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.parse

#: The contract's database name pattern: a plain SQL identifier.
DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
COPY_HEADER = re.compile(r'^COPY ((?:"[^"]+"|[^ .(]+))\.((?:"[^"]+"|[^ (]+)) .*FROM stdin;$')


def _unquote(identifier):
    if identifier.startswith('"') and identifier.endswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier


def _table_key(database, schema, table):
    return f"{database}.{table}" if schema == "public" else f"{database}.{schema}.{table}"


class RefusedName(ValueError):
    """A database name that is not a plain identifier."""


def check_name(name):
    """Given a database name from the play, return it. Raise RefusedName unless it is a
    plain identifier (no '/', '.', '=', space or leading '-')."""
    if not isinstance(name, str) or not DATABASE_NAME.match(name):
        raise RefusedName(
            f"database name {name!r} is not a plain identifier "
            "(letters, digits and '_', not starting with a digit)"
        )
    return name


def dump_path(dump_dir, name):
    """Given the dump folder and a database name, return the dump file inside it.
    Raise RefusedName if the name is not a plain identifier, or the file would
    resolve outside the folder."""
    target = os.path.join(dump_dir, check_name(name) + ".dump")
    folder = os.path.realpath(dump_dir)
    if os.path.dirname(os.path.realpath(target)) != folder:
        raise RefusedName(f"database {name}: dump file {target} resolves outside {folder}")
    return target


def conninfo(name):
    """Given a database name, return the libpq conninfo naming that database alone.

    pg_dump reads a ``--dbname`` holding '=' as a conninfo string (host,
    user, sslmode...): quoted as ``dbname='...'``, the name is only a name."""
    return "dbname='{}'".format(name.replace("\\", "\\\\").replace("'", "\\'"))


def _partial(target):
    return os.path.join(os.path.dirname(target), "." + os.path.basename(target) + ".partial")


def dump_postgresql(database, target):
    """Given a database name and the dump file, dump it and return the row counts per table."""
    partial = _partial(target)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", "pg_dump", "-Fc", "--dbname", conninfo(database)],
            stdout=handle,
            stderr=subprocess.PIPE,
            check=False,
            cwd="/",
        )
    if done.returncode != 0:
        os.unlink(partial)
        raise RuntimeError(f"pg_dump {database}: {done.stderr.decode(errors='replace').strip()}")
    os.replace(partial, target)
    return count_dump_rows(database, target)


def count_dump_rows(database, dump):
    """Given a database name and its pg_dump custom-format file, return the rows per table."""
    reader = subprocess.Popen(
        ["pg_restore", "--data-only", "--file", "-", dump],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    counts = {}
    current = None
    for raw in reader.stdout:
        line = raw.rstrip(b"\n")
        if current is None:
            match = COPY_HEADER.match(line.decode("utf-8", errors="replace"))
            if match:
                current = _table_key(database, _unquote(match[1]), _unquote(match[2]))
                counts[current] = 0
        elif line == b"\\.":
            current = None
        else:
            counts[current] += 1
    stderr = reader.stderr.read().decode(errors="replace")
    if reader.wait() != 0:
        raise RuntimeError(f"pg_restore {dump}: {stderr.strip()}")
    return dict(sorted(counts.items()))


def dump_sqlite(database, path, target):
    """Given a database name, its file and the dump file, copy it and return the rows per table."""
    if not path or not os.path.isfile(path):
        raise RuntimeError(f"SQLite database {database}: file {path!r} not found")
    partial = _partial(target)
    if os.path.exists(partial):
        os.unlink(partial)
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
    # Quoted: a '?' or '#' in the path must not add URI parameters.
    source = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True)
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy)
        tables = [
            row[0]
            for row in copy.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        counts = {
            _table_key(database, "public", table): copy.execute(
                'SELECT count(*) FROM "{}"'.format(table.replace('"', '""'))
            ).fetchone()[0]
            for table in sorted(tables)
        }
    finally:
        copy.close()
        source.close()
    os.replace(partial, target)
    return counts


def main(argv):
    if len(argv) != 2:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    dump_dir, databases = argv[0], json.loads(argv[1])
    try:
        # Every name is checked before anything is written.
        targets = [dump_path(dump_dir, database.get("name")) for database in databases]
    except RefusedName as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    os.makedirs(dump_dir, mode=0o700, exist_ok=True)
    results = []
    for database, target in zip(databases, targets):
        name = database["name"]
        engine = database.get("engine", "postgresql")
        started = time.monotonic()
        try:
            if engine == "postgresql":
                counts = dump_postgresql(name, target)
            elif engine == "sqlite":
                counts = dump_sqlite(name, database.get("path"), target)
            else:
                raise RuntimeError(f"database {name}: unknown engine {engine!r}")
        except (OSError, RuntimeError, sqlite3.Error) as error:
            print(f"dump failed: {error}", file=sys.stderr)
            return 1
        results.append(
            {
                "name": name,
                "engine": engine,
                "dump": target,
                "bytes": os.stat(target).st_size,
                "row_counts": counts,
                "duration_s": round(time.monotonic() - started, 3),
            }
        )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
