"""The lab's notification inbox: a webhook receiver on loopback that shows what arrives.

A rehearsal has no on-call phone: a contract's escalation step may name
``json://127.0.0.1:8025/oncall`` (or ``form://``), and ``webmg-ops lab inbox``
prints each notification that ``tick`` delivers there, as it arrives. It
listens on 127.0.0.1 only, answers every POST with 200, never shows a request's
``Authorization`` header (a webhook's password) and reads at most
:data:`MAX_BODY` bytes of a body.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

#: Where the inbox listens: loopback only, whatever the port.
ADDRESS = "127.0.0.1"
#: The inbox's port unless told otherwise.
DEFAULT_PORT = 8025
#: The largest body read; a larger one is cut (and says so).
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Delivery:
    """One notification received: when, on which path, its title and message."""

    at: datetime
    path: str
    title: str
    message: str

    def lines(self) -> list[str]:
        """Return the delivery as printed: a heading line, then the message indented."""
        heading = f"{self.at:%Y-%m-%d %H:%M:%S} UTC  {self.path}  {self.title}"
        return [heading, *(f"    {line}" for line in self.message.splitlines())]


def read_delivery(path: str, content_type: str, body: bytes, at: datetime) -> Delivery:
    """Given a request's path, content type and body, return what it delivered.

    Apprise's ``json://`` sends ``{"title": ..., "message": ...}``; its ``form://``
    the same fields form-encoded. Anything else is shown as text.
    """
    text = body.decode("utf-8", errors="replace")
    fields: dict[str, Any] = {}
    if "json" in content_type:
        try:
            loaded = json.loads(text)
        except ValueError:
            loaded = None
        fields = loaded if isinstance(loaded, dict) else {}
    elif "form" in content_type:
        fields = dict(parse_qsl(text))
    if not fields:
        return Delivery(at, path, "(not a notification)", text)
    return Delivery(at, path, str(fields.get("title", "")), str(fields.get("message", "")))


def _printable(text: str) -> str:
    # What arrives is shown on an operator's terminal: no escape sequence gets through.
    return "".join(ch if ch.isprintable() or ch == "\n" else "?" for ch in text)


def serve(port: int, on_delivery: Callable[[Delivery], None]) -> ThreadingHTTPServer:
    """Given a port (0: any free one) and what to do with each delivery, start the inbox
    in a thread and return its server (``server_address`` says the port;
    ``shutdown()`` stops it).

    Raise OSError if the port cannot be bound.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY + 1)
            body = self.rfile.read(length)
            delivery = read_delivery(
                _printable(self.path),
                self.headers.get("Content-Type", ""),
                body[:MAX_BODY],
                datetime.now(UTC),
            )
            if len(body) > MAX_BODY:
                delivery = Delivery(
                    delivery.at,
                    delivery.path,
                    delivery.title,
                    delivery.message + f"\n[cut at {MAX_BODY} bytes]",
                )
            # Shown before the answer: once the sender has its 200, the delivery is out.
            on_delivery(
                Delivery(
                    delivery.at,
                    delivery.path,
                    _printable(delivery.title),
                    _printable(delivery.message),
                )
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # each delivery is printed by on_delivery; the access log adds nothing

    server = ThreadingHTTPServer((ADDRESS, port), Handler)
    threading.Thread(target=server.serve_forever, name="lab-inbox", daemon=True).start()
    return server
