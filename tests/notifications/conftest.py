"""A real SMTP server on a free localhost port, started by the test (see mailserver)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from notifications.mailserver import HOST, MailDrop, SmtpServer, free_port


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An aiosmtpd server on a free port, stopped after the test."""
    drop = MailDrop()
    controller = Controller(drop, hostname=HOST, port=free_port())
    controller.start()
    try:
        yield SmtpServer(controller.port, drop)
    finally:
        controller.stop()
