"""A real SMTP server for the notification tests: aiosmtpd keeping what it received."""

from __future__ import annotations

import email
import email.policy
import socket
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from carnet.notifications.mailer import SmtpMailer

SENDER = "Carnet <no-reply@carnet.test>"
HOST = "127.0.0.1"


@dataclass
class MailDrop:
    """An aiosmtpd handler: keeps each message, or refuses as told."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse_data: str | None = None
    refused_recipients: set[str] = field(default_factory=set)

    async def handle_RCPT(  # noqa: N802 — the hook's name is aiosmtpd's
        self, server: SMTP, session: SmtpSession, envelope: Envelope, address: str, _: list[str]
    ) -> str:
        if address in self.refused_recipients:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 — the hook's name is aiosmtpd's
        self, server: SMTP, session: SmtpSession, envelope: Envelope
    ) -> str:
        if self.refuse_data is not None:
            return self.refuse_data
        # SMTP carries CRLF line ends; the tests read the text as Python writes it.
        content = (envelope.original_content or b"").replace(b"\r\n", b"\n")
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


@dataclass
class SmtpServer:
    """The running server: where it listens and what it received."""

    port: int
    drop: MailDrop

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message accepted so far, parsed."""
        return self.drop.messages

    def mailer(self) -> SmtpMailer:
        """A mailer sending to this server."""
        return SmtpMailer(HOST, self.port, sender=SENDER, timeout=5)


def free_port() -> int:
    """A localhost port nothing listens on (the OS picked it, then it was released)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port
