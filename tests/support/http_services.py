"""Real HTTP(S) services on loopback for the monitor's tests: up, failing, slow, looping.

A :class:`Service` is a threaded ``http.server`` on 127.0.0.1 whose paths answer as
its ``routes`` say, changeable while it runs (a service goes down and comes back).
A slow route blocks on an event that the service's teardown sets, so no test ever
sleeps. :func:`make_certificates` issues a short-lived certificate authority and a
server certificate for 127.0.0.1 with ``cryptography``.
"""

from __future__ import annotations

import http.server
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Route:
    """How one path answers: a status, a body, headers; or it blocks (``slow``)."""

    status: int = 200
    body: bytes = b'{"status": "ok"}'
    headers: dict[str, str] = field(default_factory=dict)
    slow: bool = False


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.server.hits.append(path)
        route = self.server.routes.get(path)
        if route is None:
            route = Route(status=404, body=b"not found")
        if route.slow:
            # Blocks until the test ends: longer than any probe's timeout.
            self.server.released.wait(60)
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Route]
    released: threading.Event
    hits: list[str]


@dataclass
class Service:
    """A running service: its base URL, its routes (change them at will), the paths hit."""

    base: str
    routes: dict[str, Route]
    hits: list[str]

    def url(self, path: str) -> str:
        """Given a path, return its absolute URL on this service."""
        return f"{self.base}{path}"


@contextmanager
def serve(
    routes: dict[str, Route] | None = None, *, tls: ssl.SSLContext | None = None
) -> Iterator[Service]:
    """Run a service on a free loopback port (HTTPS with ``tls``) for the block."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.routes = dict(routes or {})
    server.released = threading.Event()
    server.hits = []
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls is not None else "http"
    try:
        yield Service(
            f"{scheme}://127.0.0.1:{server.server_address[1]}", server.routes, server.hits
        )
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def refused_port() -> Iterator[int]:
    """Yield a loopback port that refuses connections: bound (nobody else takes it) but
    not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


@dataclass(frozen=True)
class Certificates:
    """A certificate authority's file, and a server's context and expiry."""

    ca_file: Path
    server_context: ssl.SSLContext
    not_after: datetime


def make_certificates(
    folder: Path, *, valid_for: timedelta = timedelta(days=10), expired: bool = False
) -> Certificates:
    """Given a folder, issue a CA and a certificate for 127.0.0.1 valid ``valid_for`` from
    now (or one that expired yesterday), write them there and return them."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "monitor test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=2))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = now - timedelta(days=1) if expired else now + valid_for
    # X.509 keeps whole seconds.
    not_after = not_after.replace(microsecond=0)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=2))
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file = folder / "server.pem"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file = folder / "server.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return Certificates(ca_file=ca_file, server_context=context, not_after=not_after)
