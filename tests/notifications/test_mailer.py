"""The SMTP mailer against a real local server, and the CARNET_SMTP_URL it is built from."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword
from aiosmtpd.smtp import Session as SmtpSession
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from carnet.notifications.errors import InvalidNotification, MailerUnavailable, MessageRefused
from carnet.notifications.mailer import SmtpMailer, mailer_from_url
from carnet.settings import Settings
from notifications.mailserver import HOST, SENDER, MailDrop, SmtpServer, free_port


def _message(to: str = "lea.weber@example.lu") -> EmailMessage:
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = "Nouveau document dans votre dossier"
    message.set_content("Un document a été ajouté à votre dossier Carnet.")
    return message


class TestMailerFromUrl:
    def test_empty_url_means_email_is_off(self) -> None:
        assert mailer_from_url("", SENDER) is None
        assert mailer_from_url("  ", SENDER) is None

    def test_plain_smtp(self) -> None:
        mailer = mailer_from_url("smtp://relay.carnet.lu", SENDER)
        assert isinstance(mailer, SmtpMailer)
        assert (mailer.host, mailer.port, mailer.starttls, mailer.username) == (
            "relay.carnet.lu",
            25,
            False,
            None,
        )
        assert mailer.sender == SENDER

    def test_starttls_with_credentials_decoded(self) -> None:
        mailer = mailer_from_url("smtp+starttls://carnet%40lu:p%3Ass@mail.example:2587", SENDER)
        assert isinstance(mailer, SmtpMailer)
        assert (mailer.host, mailer.port, mailer.starttls, mailer.username) == (
            "mail.example",
            2587,
            True,
            "carnet@lu",
        )
        assert "p:ss" not in repr(mailer)

    def test_starttls_defaults_to_the_submission_port(self) -> None:
        mailer = mailer_from_url("smtp+starttls://mail.example", SENDER)
        assert isinstance(mailer, SmtpMailer)
        assert mailer.port == 587

    @pytest.mark.parametrize(
        "url",
        [
            "https://mail.example",
            "smtp://",
            "smtp://mail.example:99999",
            "smtp://mail.example/inbox",
            "smtp://mail.example?tls=1",
            "smtp://carnet:hunter2@mail.example",
        ],
    )
    def test_refuses_other_urls_without_repeating_them(self, url: str) -> None:
        with pytest.raises(InvalidNotification) as caught:
            mailer_from_url(url, SENDER)
        assert caught.value.field == "smtp_url"
        assert "hunter2" not in str(caught.value)


class TestSettings:
    def test_email_is_off_by_default(self) -> None:
        settings = Settings()
        assert settings.smtp_url is None
        assert settings.mail_from == "Carnet <no-reply@carnet.invalid>"

    def test_smtp_url_is_masked(self) -> None:
        shown = Settings(smtp_url="smtp+starttls://carnet:hunter2@mail.example").masked()
        assert shown["smtp_url"] == "********"


class TestSmtpMailer:
    def test_delivers_from_the_sender(self, smtp_server: SmtpServer) -> None:
        smtp_server.mailer().send(_message())
        [received] = smtp_server.messages
        assert received["From"] == SENDER
        assert received["To"] == "lea.weber@example.lu"
        assert received["Subject"] == "Nouveau document dans votre dossier"
        assert "ajouté à votre dossier" in received.get_content()

    def test_refused_message(self, smtp_server: SmtpServer) -> None:
        smtp_server.drop.refuse_data = "550 5.7.1 Message refused"
        with pytest.raises(MessageRefused) as caught:
            smtp_server.mailer().send(_message())
        assert caught.value.code == 550

    def test_refused_recipient(self, smtp_server: SmtpServer) -> None:
        smtp_server.drop.refused_recipients.add("nobody@example.lu")
        with pytest.raises(MessageRefused) as caught:
            smtp_server.mailer().send(_message("nobody@example.lu"))
        assert caught.value.code == 550
        assert "nobody" not in str(caught.value)

    def test_server_down(self) -> None:
        mailer = SmtpMailer(HOST, free_port(), sender=SENDER, timeout=2)
        with pytest.raises(MailerUnavailable) as caught:
            mailer.send(_message())
        assert not isinstance(caught.value, MessageRefused)


# --- STARTTLS and AUTH against a server with its own certificate ------------------------------


@dataclass
class TlsServer:
    port: int
    drop: MailDrop
    client_context: ssl.SSLContext
    logins: list[tuple[bytes, bytes]]


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "carnet test mail")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "mail.pem", directory / "mail.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    """A server that requires STARTTLS, then AUTH with carnet / s3cret."""
    cert_path, key_path = _certificate(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    logins: list[tuple[bytes, bytes]] = []

    def authenticate(
        server: SMTP, session: SmtpSession, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        # handled=False: aiosmtpd then answers 535 itself instead of leaving the client waiting.
        return AuthResult(
            success=(data.login, data.password) == (b"carnet", b"s3cret"), handled=False
        )

    drop = MailDrop()
    controller = Controller(
        drop,
        hostname=HOST,
        port=free_port(),
        tls_context=server_context,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    )
    controller.start()
    try:
        yield TlsServer(
            controller.port, drop, ssl.create_default_context(cafile=str(cert_path)), logins
        )
    finally:
        controller.stop()


def _tls_mailer(server: TlsServer, password: str) -> SmtpMailer:
    return SmtpMailer(
        HOST,
        server.port,
        sender=SENDER,
        starttls=True,
        username="carnet",
        password=password,
        timeout=5,
        ssl_context=server.client_context,
    )


class TestStartTls:
    def test_signs_in_over_tls_and_delivers(self, tls_server: TlsServer) -> None:
        _tls_mailer(tls_server, "s3cret").send(_message())
        assert tls_server.logins == [(b"carnet", b"s3cret")]
        assert [m["Subject"] for m in tls_server.drop.messages] == [
            "Nouveau document dans votre dossier"
        ]

    def test_wrong_password_makes_the_mailer_unavailable(self, tls_server: TlsServer) -> None:
        with pytest.raises(MailerUnavailable):
            _tls_mailer(tls_server, "wrong").send(_message())
        assert tls_server.drop.messages == []

    def test_untrusted_certificate_makes_the_mailer_unavailable(
        self, tls_server: TlsServer
    ) -> None:
        mailer = SmtpMailer(
            HOST, tls_server.port, sender=SENDER, starttls=True, username="carnet", timeout=5
        )
        with pytest.raises(MailerUnavailable):
            mailer.send(_message())
        assert tls_server.logins == []
