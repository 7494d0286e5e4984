"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 free when asked."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Mailbox:
    """What an SMTP server received: one message per delivery (recipients, subject, the
    raw message), and the logins it was offered.

    Given ``credentials`` (login, password), the server asks for them and refuses others.
    """

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self.messages: list[dict[str, Any]] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self, server: object, session: object, envelope: Any
    ) -> str:
        raw = bytes(envelope.content)
        message = message_from_bytes(raw)
        self.messages.append(
            {
                "to": list(envelope.rcpt_tos),
                "subject": str(message["Subject"]).replace("\n", ""),
                "raw": raw,
            }
        )
        return "250 Message accepted"

    def authenticate(
        self, server: object, session: object, envelope: object, mechanism: str, data: Any
    ) -> AuthResult:
        """aiosmtpd's authenticator: record the login, accept only the credentials."""
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == self.credentials)


@contextlib.contextmanager
def serve_mailbox(box: Mailbox) -> Iterator[int]:
    """Serve ``box`` on a free port of 127.0.0.1 (asking for its credentials when it has
    some, over plain SMTP: loopback only); yield the port; stop the server afterwards."""
    extra: dict[str, Any] = (
        {"authenticator": box.authenticate, "auth_require_tls": False}
        if box.credentials is not None
        else {}
    )
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), **extra)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server on a free port of 127.0.0.1: its mailbox and its port."""
    box = Mailbox()
    with serve_mailbox(box) as port:
        yield box, port
