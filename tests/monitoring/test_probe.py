"""A probe against real services on loopback: each way a service fails is a result with
its cause (refused, timeout, bad status, redirect loop, TLS), never an exception; an
HTTPS answer gives its certificate's days left; a hotel's page weight counts the page
and its same-origin assets only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from support.http_services import Route, make_certificates, refused_port, serve

from webmg_ops.config.contract import HealthCheck
from webmg_ops.monitoring.probe import probe, same_origin_assets


def check(url: str, **fields: object) -> HealthCheck:
    """Return a health check of ``url`` (fields as a contract would write them)."""
    return HealthCheck.model_validate({"name": "site", "url": url, **fields})


def test_a_service_that_answers_is_up_with_its_status_and_latency() -> None:
    with serve({"/health": Route()}) as service:
        result = probe(check(service.url("/health")))
    assert result.up, result
    assert result.status == 200
    assert result.latency_ms is not None and 0 < result.latency_ms < 2000
    assert result.cause is None and result.cert_days is None  # plain HTTP has no certificate


def test_nothing_listening_is_refused() -> None:
    with refused_port() as port:
        result = probe(check(f"http://127.0.0.1:{port}/health"))
    assert not result.up
    assert result.cause == "refused", result


def test_a_service_slower_than_the_check_allows_times_out() -> None:
    with serve({"/health": Route(slow=True)}) as service:
        started = datetime.now(UTC)
        result = probe(check(service.url("/health"), max_latency_ms=300))
        waited = (datetime.now(UTC) - started).total_seconds()
    assert not result.up
    assert result.cause == "timeout", result
    # The probe gives up at the check's budget, not at some longer default.
    assert waited < 5


def test_an_unexpected_status_is_a_failure_naming_both_statuses() -> None:
    with serve({"/health": Route(status=500, body=b"boom")}) as service:
        result = probe(check(service.url("/health")))
    assert not result.up
    assert result.cause == "bad-status"
    assert result.status == 500
    assert "500" in (result.detail or "") and "200" in (result.detail or "")


def test_a_redirect_is_followed_and_a_redirect_loop_is_a_failure() -> None:
    routes = {
        "/old": Route(status=301, headers={"Location": "/health"}),
        "/health": Route(),
        "/a": Route(status=302, headers={"Location": "/b"}),
        "/b": Route(status=302, headers={"Location": "/a"}),
    }
    with serve(routes) as service:
        followed = probe(check(service.url("/old")))
        looping = probe(check(service.url("/a")))
        hits = list(service.hits)
    assert followed.up and followed.status == 200
    assert not looping.up
    assert looping.cause == "redirect-loop", looping
    # Each URL of the loop asked once: the probe stops as soon as it comes back.
    assert hits.count("/a") == 1 and hits.count("/b") == 1


def test_https_gives_the_days_left_on_the_certificate(tmp_path: Path) -> None:
    certificates = make_certificates(tmp_path)
    with serve({"/health": Route()}, tls=certificates.server_context) as service:
        result = probe(check(service.url("/health")), ca_file=str(certificates.ca_file))
    assert result.up, result
    expected = (certificates.not_after - datetime.now(UTC)).total_seconds() / 86400
    assert result.cert_days is not None
    assert abs(result.cert_days - expected) < 0.01


def test_a_certificate_not_trusted_or_expired_is_a_tls_failure(tmp_path: Path) -> None:
    trusted = make_certificates(_folder(tmp_path / "trusted"))
    expired = make_certificates(_folder(tmp_path / "expired"), expired=True)
    with serve({"/health": Route()}, tls=trusted.server_context) as service:
        unknown_ca = probe(check(service.url("/health")))  # the system's CAs only
    with serve({"/health": Route()}, tls=expired.server_context) as service:
        outdated = probe(check(service.url("/health")), ca_file=str(expired.ca_file))
    for result in (unknown_ca, outdated):
        assert not result.up
        assert result.cause == "tls", result
    assert "certificate" in (outdated.detail or "").lower()


def test_plain_http_on_an_https_check_is_a_tls_failure() -> None:
    with serve({"/health": Route()}) as service:
        result = probe(check(service.url("/health").replace("http:", "https:")))
    assert not result.up and result.cause == "tls", result


def test_page_weight_counts_the_page_and_its_same_origin_assets(tmp_path: Path) -> None:
    image, script, style = b"i" * 40_000, b"s" * 7_000, b"c" * 3_000
    page = (
        b"<html><head><link rel='stylesheet' href='/site.css'>"
        b"<script src='http://elsewhere.invalid/tracker.js'></script></head>"
        b"<body><img src='/hero.jpg'><img src='hero.jpg'><script src='/app.js'></script>"
        b"</body></html>"
    )
    routes = {
        "/offers": Route(body=page),
        "/hero.jpg": Route(body=image),
        "/app.js": Route(body=script),
        "/site.css": Route(body=style),
    }
    with serve(routes) as service:
        result = probe(check(service.url("/offers")), page_budget=30_000)
        hits = list(service.hits)
    # The page and each same-origin asset once; the other origin's script is not fetched.
    assert result.page_bytes == len(page) + len(image) + len(script) + len(style)
    assert hits.count("/hero.jpg") == 1
    # Over budget is recorded with the sample; availability stays a separate matter.
    assert result.up


def test_same_origin_assets_keep_the_page_origin_only() -> None:
    html = (
        "<img src='/a.png'><img src='https://127.0.0.1:8443/b.png'>"
        "<link rel='icon' href='//127.0.0.1:8080/c.ico'><link rel='canonical' href='/d'>"
    )
    assert same_origin_assets("http://127.0.0.1:8080/page", html) == [
        "http://127.0.0.1:8080/a.png",
        "http://127.0.0.1:8080/c.ico",
    ]


def _folder(folder: Path) -> Path:
    folder.mkdir()
    return folder
