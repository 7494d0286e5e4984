"""One probe of one health check: HTTP status, latency, TLS certificate, page weight.

The one module that speaks HTTP to the clients' services, through urllib3 (the
client botocore already brings). A probe never raises: every way a service can
fail to answer becomes a result with its cause, so that one broken service never
stops the monitor.

Causes: ``refused`` (nothing listens), ``dns`` (the name does not resolve),
``tls`` (handshake or certificate refused), ``timeout`` (no full answer within the
check's ``max_latency_ms``), ``redirect-loop`` (a redirect back to a URL already
visited, or more than :data:`MAX_REDIRECTS`), ``bad-status`` (not the expected
status), ``slow`` (answered, later than ``max_latency_ms``), ``connection`` (reset
or closed midway) and ``error`` (anything else, with its detail).
"""

from __future__ import annotations

import re
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from webmg_ops.config.contract import HealthCheck

#: Redirects followed before the probe gives up (as browsers do, with fewer hops).
MAX_REDIRECTS = 10
#: The most of a body read: a health page is small, an offer page with its images less
#: than this; a larger body is counted up to here.
MAX_BODY_BYTES = 20_000_000
#: Same-origin assets fetched for the page weight, at most.
MAX_ASSETS = 200
#: How long one asset of the page weight may take.
ASSET_TIMEOUT_S = 10.0
#: What the probes send: a mobile browser's weight is what the page-weight check measures.
HEADERS = {
    "User-Agent": "Mozilla/5.0 (Linux; Android 14; Mobile) webmg-ops-monitor",
    "Accept": "text/html,application/json,*/*",
}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DETAIL_LENGTH = 300


@dataclass(frozen=True)
class ProbeResult:
    """What one probe found.

    ``latency_ms`` is the time to the final answer's headers (redirects included);
    ``cert_days`` the days left on the certificate of an HTTPS answer (None over HTTP
    or when the handshake failed); ``page_bytes`` the page and its same-origin assets
    when the page weight was measured.
    """

    up: bool
    status: int | None
    latency_ms: float | None
    cert_days: float | None
    cause: str | None
    detail: str | None
    page_bytes: int | None = None


class _ProbeFailure(Exception):
    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.cause = cause
        self.detail = detail


#: The user and password a URL may carry (``https://user:secret@host/``).
_USERINFO = re.compile(r"(?<=//)[^/@\s]+@")


def _short(text: object) -> str:
    # One line, bounded, and no credentials a URL may have carried into a message.
    line = _USERINFO.sub("***@", " ".join(str(text).split()))
    return line[:_DETAIL_LENGTH]


def _refused(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def classify(error: BaseException) -> tuple[str, str]:
    """Given what a request raised, return its cause and a one-line detail."""
    detail = _short(error)
    cause = "error"
    # NewConnectionError derives from ConnectTimeoutError in urllib3: asked first.
    if isinstance(error, NameResolutionError):
        cause = "dns"
    elif isinstance(error, NewConnectionError):
        cause = "refused" if _refused(error) else "connection"
    elif isinstance(error, ConnectTimeoutError | ReadTimeoutError | TimeoutError):
        cause = "timeout"
    elif isinstance(error, SSLError | ssl.SSLError | ssl.CertificateError):
        cause = "tls"
    elif isinstance(error, ProtocolError | ConnectionError):
        cause = "connection"
    elif isinstance(error, LocationParseError):
        cause = "error"
    return cause, detail


def _cert_days(sock: object, now: float) -> float | None:
    if not isinstance(sock, ssl.SSLSocket):
        return None
    certificate = sock.getpeercert()
    not_after = certificate.get("notAfter") if certificate else None
    if not isinstance(not_after, str):
        return None
    return (ssl.cert_time_to_seconds(not_after) - now) / 86400


def _connect(url: str, timeout: float, ca_file: str | None) -> HTTPConnection:
    # A fresh connection (and handshake) per probe: the latency measured is what a
    # visitor meets, and the certificate is read on every probe, before the request
    # (a server that closes after its answer takes the socket away with it).
    parts = urlsplit(url)
    if parts.scheme == "https":
        return HTTPSConnection(
            parts.hostname or "",
            parts.port,
            timeout=timeout,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_file,
        )
    return HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _get(
    url: str, deadline: float, ca_file: str | None
) -> tuple[int, bytes, float | None, str | None]:
    """GET one URL, each step within the time left to the deadline; return the status,
    body, certificate days and the Location header. Raise what urllib3 raises."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("no answer within the check's max_latency_ms")
    connection = _connect(url, remaining, ca_file)
    try:
        connection.connect()
        cert_days = _cert_days(connection.sock, time.time())
        # Bytes as sent (the page weight is what travels), read up to a bound.
        connection.request(
            "GET", _path_of(url), headers=HEADERS, preload_content=False, decode_content=False
        )
        response = connection.getresponse()
        body = response.read(MAX_BODY_BYTES, decode_content=False)
        return response.status, body or b"", cert_days, response.headers.get("Location")
    finally:
        connection.close()


def _follow(check: HealthCheck, ca_file: str | None) -> tuple[int, bytes, float | None, str, float]:
    """Follow the check's redirects (unless it expects one); return the final status,
    body, certificate days, URL and latency. Raise _ProbeFailure or what urllib3 raises."""
    started = time.monotonic()
    deadline = started + check.max_latency_ms / 1000
    url = check.url
    seen = {url}
    cert_days: float | None = None
    for _hop in range(MAX_REDIRECTS + 1):
        status, body, days, location = _get(url, deadline, ca_file)
        if days is not None:
            cert_days = days if cert_days is None else min(cert_days, days)
        if status not in _REDIRECTS or status == check.expect_status or not location:
            return status, body, cert_days, url, (time.monotonic() - started) * 1000
        url = urljoin(url, location)
        if url in seen:
            raise _ProbeFailure("redirect-loop", f"redirect back to {url} (HTTP {status})")
        seen.add(url)
    raise _ProbeFailure("redirect-loop", f"more than {MAX_REDIRECTS} redirects")


class _AssetParser(HTMLParser):
    """Collects the URLs of a page's images, scripts, stylesheets and icons."""

    _LINK_RELS = frozenset({"stylesheet", "icon", "preload", "modulepreload", "apple-touch-icon"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value}
        if tag in ("img", "script", "source", "video", "audio", "iframe") and "src" in values:
            self.found.append(values["src"])
        if tag == "link" and "href" in values:
            rels = set((values.get("rel") or "").lower().split())
            if rels & self._LINK_RELS:
                self.found.append(values["href"])


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def same_origin_assets(page_url: str, html: str) -> list[str]:
    """Given a page's URL and its HTML, return the absolute URLs of its same-origin images,
    scripts, stylesheets and icons, each once, in page order (at most :data:`MAX_ASSETS`)."""
    parser = _AssetParser()
    parser.feed(html)
    origin = _origin(page_url)
    assets: list[str] = []
    for reference in parser.found:
        url = urljoin(page_url, reference).split("#", 1)[0]
        if _origin(url) == origin and url not in assets and url != page_url:
            assets.append(url)
    return assets[:MAX_ASSETS]


def _page_weight(page_url: str, body: bytes, ca_file: str | None) -> tuple[int, list[str]]:
    """Given the final page's URL and body, return its weight with its same-origin assets
    and the assets that could not be fetched."""
    total = len(body)
    missing: list[str] = []
    html = body.decode("utf-8", errors="replace")
    for asset in same_origin_assets(page_url, html):
        try:
            status, content, _days, _location = _get(
                asset, time.monotonic() + ASSET_TIMEOUT_S, ca_file
            )
        except (HTTPError, OSError) as error:
            missing.append(f"{asset}: {classify(error)[0]}")
            continue
        if status >= 400:
            missing.append(f"{asset}: HTTP {status}")
        total += len(content)
    return total, missing


def probe(
    check: HealthCheck, *, page_budget: int | None = None, ca_file: str | None = None
) -> ProbeResult:
    """Given a health check, probe it once and return what was found; never raise.

    With ``page_budget`` (bytes), the page and its same-origin assets are weighed too.
    ``ca_file`` names extra certificate authorities to trust (default: the system's,
    or the ``SSL_CERT_FILE`` environment variable's).
    """
    try:
        status, body, cert_days, final_url, latency = _follow(check, ca_file)
    except _ProbeFailure as failure:
        return ProbeResult(False, None, None, None, failure.cause, failure.detail)
    except Exception as error:  # every failure of a service is a result, never a crash
        cause, reason = classify(error)
        waited = float(check.max_latency_ms) if cause == "timeout" else None
        return ProbeResult(False, None, waited, None, cause, reason)
    page_bytes: int | None = None
    detail: str | None = None
    if page_budget is not None and status == check.expect_status:
        try:
            page_bytes, missing = _page_weight(final_url, body, ca_file)
        except Exception as error:  # weighing is extra: its failure only says so
            missing = [f"page weight not measured: {classify(error)[1]}"]
        if missing:
            detail = _short("assets not fetched: " + "; ".join(missing))
    if status != check.expect_status:
        return ProbeResult(
            False,
            status,
            latency,
            cert_days,
            "bad-status",
            f"HTTP {status}, expected {check.expect_status}",
        )
    if latency > check.max_latency_ms:
        return ProbeResult(
            False,
            status,
            latency,
            cert_days,
            "slow",
            f"answered in {latency:.0f} ms, more than {check.max_latency_ms} ms",
            page_bytes,
        )
    return ProbeResult(True, status, latency, cert_days, None, detail, page_bytes)


def utc_now() -> datetime:
    """Return the current instant in UTC."""
    return datetime.now(UTC)
