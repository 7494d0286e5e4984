#!/usr/bin/env python3
"""Probe HTTP health checks from the controller (the client's view) and print JSON.

Given one argument, a JSON object with ``checks`` (each ``name``, ``url``,
``expect_status``, ``max_latency_ms``), ``attempts`` and ``interval_s``,
print one result per check: its status, latency in milliseconds, whether it
passed, and the error if no answer came. A check is tried again (up to
``attempts`` times) while it fails, because a service restarted by an
update may need a moment before it answers.
"""

import json
import sys
import time
import urllib.error
import urllib.request

TIMEOUT_S = 10


def probe_once(opener, check):
    """Given an opener and a check, return (status or None, latency in ms, error text)."""
    started = time.monotonic()
    try:
        with opener.open(check["url"], timeout=TIMEOUT_S) as answer:
            answer.read()
            status = answer.status
        error = ""
    except urllib.error.HTTPError as answer:
        status, error = answer.code, ""
    except (urllib.error.URLError, OSError) as problem:
        status, error = None, str(getattr(problem, "reason", problem))
    return status, round((time.monotonic() - started) * 1000), error


def probe(opener, check, attempts, interval_s):
    """Given an opener, a check and the retry settings, return the check's result."""
    expect = int(check.get("expect_status", 200))
    max_latency = int(check.get("max_latency_ms", 2000))
    for attempt in range(1, attempts + 1):
        status, latency, error = probe_once(opener, check)
        ok = status == expect and latency <= max_latency
        if ok or attempt == attempts:
            break
        time.sleep(interval_s)
    if not error and status != expect:
        error = f"status {status}, expected {expect}"
    elif not error and latency > max_latency:
        error = f"{latency} ms, slower than {max_latency} ms"
    return {
        "name": check.get("name", check["url"]),
        "url": check["url"],
        "expect_status": expect,
        "max_latency_ms": max_latency,
        "status": status,
        "latency_ms": latency,
        "ok": ok,
        "error": error,
        "attempts": attempt,
    }


def main():
    request = json.loads(sys.argv[1])
    # No proxy: the check measures the service as the client reaches it, directly.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    attempts = max(1, int(request.get("attempts", 1)))
    interval_s = float(request.get("interval_s", 0))
    print(json.dumps([probe(opener, check, attempts, interval_s) for check in request.get("checks", [])]))


if __name__ == "__main__":
    main()
