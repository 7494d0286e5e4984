#!/usr/bin/python3
"""The webmg demo booking site: the application the rehearsal lab's web hosts run.

``GET /health`` answers ``{"status": "ok", "version": ...}`` when the site
can read its bookings (500 otherwise); ``GET /records`` gives the number of
bookings and a digest of their content, so that backups and restore drills
can prove the data came back; ``POST /records`` adds a booking. The release
file installed by the package says which version this is and how its health
check queries the database.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RELEASE_FILE = Path("/usr/share/webmg-demo-app/release.json")
DATA_DIR = Path("/var/lib/webmg-demo")
DATABASE_NAME = "records.sqlite3"
SEED_BOOKINGS = 120


def load_release(path: Path = RELEASE_FILE) -> dict[str, str]:
    """Given the release file, return its fields (version, health_query)."""
    release: dict[str, str] = json.loads(path.read_text())
    return release


def connect(database: Path) -> sqlite3.Connection:
    """Given the database path, return a connection to it. Raise if it does not exist."""
    return sqlite3.connect(f"file:{database}?mode=rw", uri=True)


def init_database(database: Path) -> None:
    """Given the database path, create and seed it unless it exists."""
    if database.exists():
        return
    with sqlite3.connect(database) as connection:
        connection.execute(
            "CREATE TABLE bookings (id INTEGER PRIMARY KEY, guest TEXT NOT NULL,"
            " arrival TEXT NOT NULL, nights INTEGER NOT NULL)"
        )
        connection.executemany(
            "INSERT INTO bookings (id, guest, arrival, nights) VALUES (?, ?, ?, ?)",
            [
                (n, f"guest-{n:04d}", f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}", 1 + n % 14)
                for n in range(1, SEED_BOOKINGS + 1)
            ],
        )


def summarise(connection: sqlite3.Connection) -> dict[str, Any]:
    """Given a connection, return the bookings' count and a sha256 digest of their rows."""
    digest = hashlib.sha256()
    count = 0
    for row in connection.execute("SELECT id, guest, arrival, nights FROM bookings ORDER BY id"):
        digest.update(json.dumps(row).encode())
        count += 1
    return {"count": count, "digest": digest.hexdigest()}


class Handler(BaseHTTPRequestHandler):
    """Serves the site's few endpoints."""

    server_version = "webmg-demo-app"
    release: dict[str, str] = {}
    database: Path = DATA_DIR / DATABASE_NAME

    def _send(self, status: HTTPStatus, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """Answer /health, /records and / ."""
        version = self.release["version"]
        try:
            with connect(self.database) as connection:
                if self.path == "/health":
                    connection.execute(self.release["health_query"]).fetchone()
                    self._send(HTTPStatus.OK, {"status": "ok", "version": version})
                elif self.path == "/records":
                    self._send(HTTPStatus.OK, summarise(connection))
                elif self.path == "/":
                    self._send(HTTPStatus.OK, {"site": "webmg demo bookings", "version": version})
                else:
                    self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})
        except sqlite3.Error as error:
            self._send(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                {"status": "error", "version": version, "error": str(error)},
            )

    def do_POST(self) -> None:
        """Add a booking on /records and answer the new count."""
        if self.path != "/records":
            self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        try:
            with connect(self.database) as connection:
                (next_id,) = connection.execute(
                    "SELECT coalesce(max(id), 0) + 1 FROM bookings"
                ).fetchone()
                connection.execute(
                    "INSERT INTO bookings (id, guest, arrival, nights) VALUES (?, ?, ?, ?)",
                    (next_id, f"guest-{next_id:04d}", "2025-06-01", 1),
                )
                self._send(HTTPStatus.CREATED, {"id": next_id, **summarise(connection)})
        except sqlite3.Error as error:
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"status": "error", "error": str(error)})


def main() -> None:
    """Serve the site, or create its database with ``--init-db``."""
    parser = argparse.ArgumentParser(description="The webmg demo booking site.")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--init-db", action="store_true", help="create and seed the database")
    arguments = parser.parse_args()
    database = arguments.data_dir / DATABASE_NAME
    if arguments.init_db:
        init_database(database)
        return
    Handler.release = load_release()
    Handler.database = database
    ThreadingHTTPServer(("", arguments.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
