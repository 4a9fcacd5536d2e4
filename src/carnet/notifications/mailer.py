"""Sending e-mail: the ``Mailer`` port and its SMTP implementation (the standard library's).

``mailer_from_url`` builds the mailer ``CARNET_SMTP_URL`` names, or none when it is empty:
e-mail is then off and notices stay in the patients' inboxes only.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

from carnet.notifications.errors import InvalidNotification, MailerUnavailable, MessageRefused

# Submission ports: 25 for a relay next to Carnet, 587 for STARTTLS submission (RFC 6409).
_SCHEMES = {"smtp": (False, 25), "smtp+starttls": (True, 587)}


class Mailer(Protocol):
    """Hands e-mail to the outside world."""

    def send(self, message: EmailMessage) -> None:
        """Send ``message``, from the mailer's sender when it has no ``From``.

        Raises ``MessageRefused`` when this message was refused, ``MailerUnavailable`` when no
        message can be sent now.
        """
        ...


class SmtpMailer:
    """Sends each message over its own SMTP connection, optionally upgraded with STARTTLS."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.starttls = starttls
        self.username = username
        self._password = password
        self.timeout = timeout
        self._ssl_context = ssl_context

    def __repr__(self) -> str:
        tls = "+starttls" if self.starttls else ""
        return f"SmtpMailer(smtp{tls}://{self.host}:{self.port})"

    def send(self, message: EmailMessage) -> None:
        """Send ``message``; see ``Mailer.send``."""
        if message["From"] is None:
            message["From"] = self.sender
        try:
            connection = self._open()
        except (smtplib.SMTPException, OSError) as error:
            raise self._unavailable(error) from error
        with connection:
            try:
                connection.send_message(message)
            except smtplib.SMTPRecipientsRefused as error:
                code = next(iter(error.recipients.values()))[0]
                raise MessageRefused(
                    f"The mail server refused the recipient ({code}).", code=code
                ) from error
            except smtplib.SMTPDataError as error:
                raise MessageRefused(
                    f"The mail server refused the message ({error.smtp_code}).",
                    code=error.smtp_code,
                ) from error
            except (smtplib.SMTPException, OSError) as error:
                raise self._unavailable(error) from error

    def _open(self) -> smtplib.SMTP:
        connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:
                connection.starttls(context=self._ssl_context or ssl.create_default_context())
            if self.username is not None:
                connection.login(self.username, self._password or "")
        except BaseException:
            connection.close()
            raise
        return connection

    def _unavailable(self, error: Exception) -> MailerUnavailable:
        # The error's own text may quote the server's reply, which can name the recipient:
        # only its class goes into the message, which ends up in logs.
        return MailerUnavailable(
            f"The mail server {self.host}:{self.port} cannot take messages now "
            f"({type(error).__name__})."
        )


def mailer_from_url(url: str, sender: str) -> Mailer | None:
    """The mailer for ``smtp://host[:port]`` or ``smtp+starttls://[user:password@]host[:port]``.

    An empty URL means e-mail is off: None. Credentials are accepted only with STARTTLS, so a
    password never crosses the network in clear. Raises ``InvalidNotification`` (field
    ``smtp_url``) for any other URL; the message never repeats the URL, which may hold a password.
    """
    if not url.strip():
        return None
    parts = urlsplit(url.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        scheme is None
        or not parts.hostname
        or port == -1
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise InvalidNotification(
            "The SMTP URL must read smtp://host:port or smtp+starttls://user:password@host:port.",
            field="smtp_url",
        )
    starttls, default_port = scheme
    if parts.username is not None and not starttls:
        raise InvalidNotification(
            "SMTP credentials need smtp+starttls://, so that the password is encrypted.",
            field="smtp_url",
        )
    return SmtpMailer(
        parts.hostname,
        port or default_port,
        sender=sender,
        starttls=starttls,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )
