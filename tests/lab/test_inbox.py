"""The lab's notification inbox: ``webmg-ops lab inbox`` prints what ``tick`` delivers.

The inbox runs as its own process, as an operator starts it in a second terminal;
the incident and the ticks are riverton's (a P1's response budget is 20 minutes,
its first threshold 50 %), on a real ledger. Output that arrives is hostile text: no
terminal escape and no webhook password reaches the screen.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from support.service import open_incident
from support.waiting import wait_until

from webmg_ops.errors import ExitCode
from webmg_ops.lab import inbox

Cli = Callable[..., Any]
EditContract = Callable[[str, Callable[[dict[str, Any]], None]], Path]

LISTENING = re.compile(r"Inbox listening on 127\.0\.0\.1:(\d+)")


class Lines:
    """The lines a process writes on one stream, read as they come."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def finish(self) -> None:
        self._thread.join(timeout=10)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@contextmanager
def inbox_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], Lines, Lines]]:
    # Started with SIGINT ignored, as a shell's background job is: the inbox must still
    # stop on it.
    process = subprocess.Popen(
        [sys.executable, "-m", "webmg_ops.cli.main", "lab", "inbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert process.stdout is not None and process.stderr is not None
    out, err = Lines(process.stdout), Lines(process.stderr)
    try:
        yield process, out, err
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        out.finish()
        err.finish()


def test_tick_twice_and_the_inbox_shows_each_notification_once(
    cli: Cli, edit_contract: EditContract
) -> None:
    with inbox_process("--port", "0") as (process, out, err):
        assert wait_until(lambda: LISTENING.search(err.text) is not None, timeout_s=30), err.text
        match = LISTENING.search(err.text)
        assert match is not None
        port = int(match.group(1))

        def notify_the_inbox(data: dict[str, Any]) -> None:
            data["escalation"][0]["notify"] = [f"json://127.0.0.1:{port}/oncall"]

        edit_contract("riverton", notify_the_inbox)
        incident = open_incident(cli, "riverton")
        at = datetime.fromisoformat(incident["opened_at"]) + timedelta(minutes=11)
        sent = []
        for _ in range(2):
            ticked = cli("tick", "--at", at.isoformat(), "--json")
            assert ticked.code == ExitCode.OK, ticked
            sent.append(len(json.loads(ticked.out)["notifications"]))
        assert sent == [1, 0]
        title = f"[riverton] {incident['id']} P1: response clock reached 50%"
        assert wait_until(lambda: title in out.text, timeout_s=10), out.text

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        out.finish()
        err.finish()
    headings = [line for line in out.lines if not line.startswith("    ")]
    assert len(headings) == 1 and "/oncall" in headings[0] and title in headings[0], out.text
    assert "    Client: riverton" in out.lines
    assert "Inbox closed." in err.text and "Traceback" not in err.text


def _post(port: int, body: bytes) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/oncall",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": "Basic c2VjcmV0"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def test_a_hostile_delivery_shows_no_escape_and_no_password() -> None:
    received: list[inbox.Delivery] = []
    server = inbox.serve(0, received.append)
    try:
        port = server.server_address[1]
        # JSON's \u001b decodes to a real escape character: a title that would retitle
        # the operator's terminal and colour it.
        _post(
            port,
            json.dumps({"title": "\x1b]0;owned\x07red \x1b[31malert", "message": "m"}).encode(),
        )
        _post(port, json.dumps({"title": "big", "message": "x" * (inbox.MAX_BODY * 2)}).encode())
    finally:
        server.shutdown()
        server.server_close()
    hostile, big = received
    shown = "\n".join(hostile.lines())
    assert hostile.title == "?]0;owned?red ?[31malert"
    assert "\x1b" not in shown and "\x07" not in shown
    assert "c2VjcmV0" not in shown + "\n".join(big.lines())
    # A body past the limit is cut, and says so (cut, it is no longer JSON).
    assert big.title == "(not a notification)"
    assert big.message.endswith(f"[cut at {inbox.MAX_BODY} bytes]")
    assert len(big.message) < inbox.MAX_BODY + 100


def test_a_form_delivery_is_read_as_apprise_sends_it() -> None:
    at = datetime(2026, 11, 30, 9, 0)
    delivery = inbox.read_delivery(
        "/oncall", "application/x-www-form-urlencoded", b"title=Site+down&message=P1%0Anow", at
    )
    assert (delivery.title, delivery.message) == ("Site down", "P1\nnow")
    assert delivery.lines() == ["2026-11-30 09:00:00 UTC  /oncall  Site down", "    P1", "    now"]


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with inbox_process("--port", str(port)) as (process, _out, err):
            assert process.wait(timeout=30) == ExitCode.ENVIRONMENT
            err.finish()
    assert f"the inbox cannot listen on 127.0.0.1:{port}: Address already in use" in err.text
    assert "Traceback" not in err.text
