"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 free when asked."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Mailbox:
    """What an SMTP server received: one message per delivery (recipients, subject, body)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self, server: object, session: object, envelope: Any
    ) -> str:
        message = message_from_bytes(envelope.content)
        part = message.get_payload(decode=True) if not message.is_multipart() else b""
        self.messages.append(
            {
                "to": list(envelope.rcpt_tos),
                "subject": str(message["Subject"]).replace("\n", ""),
                "body": part.decode(errors="replace") if isinstance(part, bytes) else "",
            }
        )
        return "250 Message accepted"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server on a free port of 127.0.0.1: its mailbox and its port."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()
