"""MLLP over TLS with client certificates: who may connect, and what the handler is told.

A throwaway certificate authority, made here with ``cryptography``, issues the listener's
certificate and a laboratory's; another authority issues an intruder's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from carnet.mllp.handling import Peer
from carnet.mllp.listener import tls_context
from mllp.wire import RunningListener, closed_by_peer, exchange

NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Issued:
    certificate: Path
    key: Path
    sha256: str


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _authority(folder: Path, name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    (folder / f"{name}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return certificate, key


def _issue(
    folder: Path,
    authority: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    name: str,
    *,
    server: bool,
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(authority[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    certificate = builder.sign(authority[1], hashes.SHA256())
    issued = Issued(
        certificate=folder / f"{name}.crt",
        key=folder / f"{name}.key",
        sha256=hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest(),
    )
    issued.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    issued.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return issued


@dataclass(frozen=True)
class Pki:
    folder: Path
    server: Issued
    laboratory: Issued
    intruder: Issued

    @property
    def authority(self) -> Path:
        return self.folder / "carnet-ca.pem"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    carnet_ca = _authority(folder, "carnet-ca")
    other_ca = _authority(folder, "other-ca")
    return Pki(
        folder=folder,
        server=_issue(folder, carnet_ca, "localhost", server=True),
        laboratory=_issue(folder, carnet_ca, "laboratory", server=False),
        intruder=_issue(folder, other_ca, "intruder", server=False),
    )


def _client(pki: Pki, port: int, presented: Issued | None) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=pki.authority)
    if presented is not None:
        context.load_cert_chain(presented.certificate, presented.key)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


class TestClientCertificates:
    def test_a_laboratory_with_a_certificate_of_the_authority_is_served_and_named(
        self, pki: Pki
    ) -> None:
        peers: list[Peer] = []

        def handler(raw: bytes, peer: Peer) -> bytes:
            peers.append(peer)
            return b"MSA|AA"

        context = tls_context(pki.server.certificate, pki.server.key, pki.authority)
        with (
            RunningListener(handler, ssl_context=context) as running,
            _client(pki, running.port, pki.laboratory) as laboratory,
        ):
            assert exchange(laboratory, b"MSH|x") == b"MSA|AA"
        assert peers == [Peer(address="127.0.0.1", certificate_sha256=pki.laboratory.sha256)]

    @pytest.mark.parametrize("presented", ["none", "intruder"])
    def test_without_a_certificate_of_the_authority_the_handshake_fails(
        self, pki: Pki, presented: str
    ) -> None:
        handled: list[bytes] = []

        def handler(raw: bytes, peer: Peer) -> bytes:
            handled.append(raw)
            return b"MSA|AA"

        context = tls_context(pki.server.certificate, pki.server.key, pki.authority)
        with RunningListener(handler, ssl_context=context) as running:
            certificate = None if presented == "none" else pki.intruder
            # TLS 1.3 reports the refusal of the client's certificate after the handshake, on
            # the first read or write: either way nothing reaches the handler.
            with (  # noqa: PT012 — the refusal comes at the handshake or at the first read
                pytest.raises((ssl.SSLError, ConnectionError)),
                _client(pki, running.port, certificate) as intruder,
            ):
                intruder.sendall(b"\x0bMSH|x\x1c\x0d")
                if intruder.recv(1024) == b"":
                    raise ConnectionResetError("closed")
            # The listener is still there for the laboratory.
            with _client(pki, running.port, pki.laboratory) as laboratory:
                assert exchange(laboratory, b"MSH|y") == b"MSA|AA"
        assert handled == [b"MSH|y"]

    def test_a_plain_tcp_peer_on_the_tls_port_is_dropped(self, pki: Pki) -> None:
        context = tls_context(pki.server.certificate, pki.server.key, pki.authority)
        with (
            RunningListener(ssl_context=context) as running,
            socket.create_connection(("127.0.0.1", running.port), timeout=10) as plain,
        ):
            plain.sendall(b"\x0bMSH|x\x1c\x0d")
            assert closed_by_peer(plain)

    def test_tls_without_client_authorities_serves_any_client(self, pki: Pki) -> None:
        peers: list[Peer] = []

        def handler(raw: bytes, peer: Peer) -> bytes:
            peers.append(peer)
            return b"MSA|AA"

        context = tls_context(pki.server.certificate, pki.server.key)
        with (
            RunningListener(handler, ssl_context=context) as running,
            _client(pki, running.port, None) as laboratory,
        ):
            assert exchange(laboratory, b"MSH|x") == b"MSA|AA"
        assert peers == [Peer(address="127.0.0.1", certificate_sha256=None)]


class TestConfiguration:
    def test_a_missing_file_is_an_os_error(self, tmp_path: Path) -> None:
        with pytest.raises(OSError):  # noqa: PT011 — FileNotFoundError or ssl's own, both OSError
            tls_context(tmp_path / "absent.crt", tmp_path / "absent.key")

    def test_a_file_that_is_not_a_certificate_is_an_ssl_error(self, tmp_path: Path) -> None:
        (tmp_path / "bad.crt").write_text("not a certificate")
        with pytest.raises(ssl.SSLError):
            tls_context(tmp_path / "bad.crt", tmp_path / "bad.crt")
