"""S3DocumentStore against moto's S3 server over HTTP: what only an object store has.

The store contract runs against this store in test_store_contract.py. Here: the object
layout, tampering through the S3 API, outages (missing bucket, server stopped, server
silent, no credentials), the botocore configuration, error codes explained, concurrency,
and the parsing of ``s3://`` store URLs. Error codes moto cannot produce on demand
(AccessDenied, SlowDown, partial DeleteObjects failures) come from botocore's Stubber.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]

from carnet.storage import (
    ContentCorrupted,
    FilesystemDocumentStore,
    MasterKeyWrapper,
    S3DocumentStore,
    S3Location,
    StoredContent,
    StoreUnavailable,
    open_store,
)
from carnet.storage import s3 as s3_module
from storage.backends import (
    ALICE,
    BOB,
    MASTER,
    MAX_BYTES,
    PLAINTEXT,
    MotoServer,
    S3Backend,
    create_bucket,
    make_client,
)

DIGEST = hashlib.sha256(PLAINTEXT).hexdigest()
SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture
def backend(s3_client: Any, bucket: str) -> S3Backend:
    return S3Backend(s3_client, bucket)


@pytest.fixture
def store(backend: S3Backend) -> S3DocumentStore:
    return backend.make_store()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An AWS environment with nothing from this machine: no profile, no files, no IMDS."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.fixture
def aws_credentials(aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIACARNETTEST")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


@pytest.fixture
def closed_port() -> int:
    """A local port nobody listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts connections (in the kernel backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def wrapper() -> MasterKeyWrapper:
    return MasterKeyWrapper(MASTER, "k1")


def assert_fit_for_a_person(error: BaseException) -> None:
    message = str(error)
    assert message.startswith("The document store is unavailable: ")
    for leak in ("Traceback", "botocore", "urllib3", "An error occurred (", SECRET):
        assert leak not in message


# --- layout and tampering ------------------------------------------------------------------


def test_object_key_is_prefix_patient_digest(store: S3DocumentStore, backend: S3Backend) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    assert backend.entries() == [f"carnet/test/{ALICE}/{DIGEST}"]
    assert store.object_key(stored.key) == f"carnet/test/{ALICE}/{DIGEST}"
    head = backend.client.head_object(Bucket=backend.bucket, Key=store.object_key(stored.key))
    assert head["ContentType"] == "application/octet-stream"


def test_uploads_carry_content_md5_and_no_crc_checksum(store: S3DocumentStore) -> None:
    # Content-MD5 is what every S3-compatible server verifies; the CRC32 headers botocore
    # adds by default since 1.36 are what many of them reject.
    sent: list[dict[str, str]] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(
            {
                name.lower(): value.decode() if isinstance(value, bytes) else value
                for name, value in request.headers.items()
            }
        )

    events = store.client.meta.events
    events.register("before-send.s3.PutObject", capture)
    try:
        stored = store.put(ALICE, PLAINTEXT)
    finally:
        events.unregister("before-send.s3.PutObject", capture)
    [headers] = sent
    blob = S3Backend(store.client, store.bucket).read_raw(stored.key)
    assert headers["content-md5"] == base64.b64encode(hashlib.md5(blob).digest()).decode()
    assert not any(name.startswith("x-amz-checksum-") for name in headers)
    assert not any(name.startswith("x-amz-sdk-checksum") for name in headers)


def test_without_prefix_the_patient_id_leads(s3_client: Any, bucket: str) -> None:
    store = S3DocumentStore(s3_client, bucket, wrapper(), max_bytes=MAX_BYTES)
    store.put(ALICE, PLAINTEXT)
    assert S3Backend(s3_client, bucket, prefix="").entries() == [f"{ALICE}/{DIGEST}"]


def test_tampered_object_is_corrupted(store: S3DocumentStore, backend: S3Backend) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    object_key = store.object_key(stored.key)
    raw = bytearray(backend.client.get_object(Bucket=backend.bucket, Key=object_key)["Body"].read())
    raw[100] ^= 0x20
    backend.client.put_object(Bucket=backend.bucket, Key=object_key, Body=bytes(raw))
    with pytest.raises(ContentCorrupted) as excinfo:
        store.get(stored.key)
    assert excinfo.value.key == stored.key
    assert "authentication failed" in str(excinfo.value)
    assert "penicilline" not in str(excinfo.value)


def test_objects_copied_from_a_filesystem_store_stay_readable(
    store: S3DocumentStore, backend: S3Backend, tmp_path: Path
) -> None:
    # Same sealed format and associated data: a migration is a byte-for-byte copy.
    filesystem = FilesystemDocumentStore(tmp_path, wrapper(), max_bytes=MAX_BYTES)
    key = filesystem.put(BOB, PLAINTEXT).key
    backend.write_raw(key, (tmp_path / BOB / DIGEST[:2] / DIGEST).read_bytes())
    assert store.get(key) == PLAINTEXT


# --- outages -------------------------------------------------------------------------------


def test_missing_bucket_is_unavailable(s3_client: Any) -> None:
    store = S3DocumentStore(s3_client, "carnet-never-created", wrapper(), max_bytes=MAX_BYTES)
    key = f"{ALICE}/{DIGEST}"
    for operation in (
        store.check,
        lambda: store.put(ALICE, PLAINTEXT),
        lambda: store.get(key),
        lambda: store.delete(key),
        lambda: store.delete_patient(ALICE),
    ):
        with pytest.raises(StoreUnavailable, match="bucket 'carnet-never-created' does not exist"):
            operation()
    # A HEAD answer has no body: a missing bucket cannot be told from a missing object.
    assert store.exists(key) is False


def test_stopped_server_is_unavailable() -> None:
    server = MotoServer()
    client = make_client(server.endpoint, max_attempts=1)
    store = S3Backend(client, create_bucket(client)).make_store()
    key = store.put(ALICE, PLAINTEXT).key
    server.stop()
    operations = (
        store.check,
        lambda: store.put(BOB, PLAINTEXT),
        lambda: store.get(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.delete_patient(ALICE),
    )
    for operation in operations:
        with pytest.raises(StoreUnavailable) as excinfo:
            operation()
        assert f"the object store at {server.endpoint} cannot be reached" in str(excinfo.value)
        assert_fit_for_a_person(excinfo.value)
        assert excinfo.value.__cause__ is not None  # the botocore error, for the logs


@pytest.mark.usefixtures("aws_credentials")
def test_default_retries_give_up_within_seconds(closed_port: int) -> None:
    url = f"s3://carnet-docs?endpoint=http://127.0.0.1:{closed_port}&region=eu-west-1"
    store = open_store(url, wrapper(), max_bytes=MAX_BYTES)  # no I/O yet
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        store.check()
    # Three attempts, with jittered backoffs of at most 1 s and 2 s between them.
    assert time.monotonic() - started < 10


@pytest.mark.usefixtures("aws_credentials")
def test_silent_server_times_out(silent_port: int) -> None:
    url = (
        f"s3://carnet-docs?endpoint=http://127.0.0.1:{silent_port}&read_timeout=0.3&max_attempts=1"
    )
    store = open_store(url, wrapper(), max_bytes=MAX_BYTES)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="did not answer in time") as excinfo:
        store.get(f"{ALICE}/{DIGEST}")
    assert time.monotonic() - started < 5
    assert_fit_for_a_person(excinfo.value)


def test_without_credentials_the_store_is_unavailable(
    aws_env: pytest.MonkeyPatch, moto_server: MotoServer
) -> None:
    store = open_store(f"s3://carnet-docs?endpoint={moto_server.endpoint}", wrapper(), max_bytes=1)
    with pytest.raises(StoreUnavailable, match="no usable AWS credentials") as excinfo:
        store.check()
    assert_fit_for_a_person(excinfo.value)


# --- open_store, client configuration ------------------------------------------------------


@pytest.mark.usefixtures("aws_credentials")
def test_open_store_takes_credentials_from_the_environment(
    moto_server: MotoServer, s3_client: Any, bucket: str
) -> None:
    url = f"s3://{bucket}/carnet/prod?endpoint={moto_server.endpoint}&region=eu-west-1"
    store = open_store(url, wrapper(), max_bytes=MAX_BYTES)
    assert isinstance(store, S3DocumentStore)
    store.check()
    stored = store.put(ALICE, PLAINTEXT)
    assert store.get(stored.key) == PLAINTEXT
    assert S3Backend(s3_client, bucket).entries() == [f"carnet/prod/{ALICE}/{DIGEST}"]

    client = store.client
    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (3.0, 10.0)
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert config.s3 == {"addressing_style": "path"}
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == moto_server.endpoint
    assert SECRET not in repr(store)
    assert repr(store) == (
        f"S3DocumentStore(bucket={bucket!r}, prefix='carnet/prod', "
        f"endpoint={moto_server.endpoint!r}, max_bytes={MAX_BYTES})"
    )


# --- error codes explained -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        ("AccessDenied", 403, "access to the bucket '{bucket}' is denied; its policy must allow"),
        ("403", 403, "access to the bucket '{bucket}' is denied"),
        (
            "InvalidAccessKeyId",
            403,
            "the object store refused the credentials (InvalidAccessKeyId)",
        ),
        ("SignatureDoesNotMatch", 403, "the object store refused the credentials (Signature"),
        ("SlowDown", 503, "the object store is overloaded or failing (SlowDown); retry later"),
        ("InternalError", 500, "the object store is overloaded or failing (InternalError)"),
        ("InvalidRequest", 400, "the object store answered InvalidRequest"),
    ],
)
def test_error_codes_are_explained(
    store: S3DocumentStore, bucket: str, code: str, status: int, reason: str
) -> None:
    with Stubber(store.client) as stubber:
        stubber.add_client_error("head_bucket", code, http_status_code=status)
        stubber.add_client_error("get_object", code, http_status_code=status)
        with pytest.raises(StoreUnavailable) as on_check:
            store.check()
        with pytest.raises(StoreUnavailable) as on_get:
            store.get(f"{ALICE}/{DIGEST}")
    reason = reason.format(bucket=bucket)
    assert str(on_check.value).startswith(
        f"The document store is unavailable: could not reach the bucket: {reason}"
    )
    assert str(on_get.value).startswith(
        f"The document store is unavailable: could not read the document: {reason}"
    )


def test_partial_purge_failure_is_reported(store: S3DocumentStore, bucket: str) -> None:
    object_key = store.object_key(f"{ALICE}/{DIGEST}")
    with Stubber(store.client) as stubber:
        stubber.add_response(
            "list_objects_v2", {"Contents": [{"Key": object_key}], "IsTruncated": False}
        )
        stubber.add_response(
            "delete_objects",
            {"Errors": [{"Key": object_key, "Code": "AccessDenied", "Message": "Denied"}]},
        )
        with pytest.raises(StoreUnavailable) as excinfo:
            store.delete_patient(ALICE)
    assert str(excinfo.value) == (
        "The document store is unavailable: could not delete 1 of the patient's objects "
        "(AccessDenied); run the purge again"
    )
    assert object_key not in str(excinfo.value)


# --- scale and concurrency -----------------------------------------------------------------


def test_purge_pages_through_the_listing(
    store: S3DocumentStore, backend: S3Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of 2 keys stand for S3's pages of 1000: each page is deleted before the next
    # is listed, so the continuation token must survive the deletions.
    monkeypatch.setattr(s3_module, "_DELETE_BATCH", 2)
    for i in range(5):
        store.put(ALICE, PLAINTEXT + bytes([i]))
    bob = store.put(BOB, PLAINTEXT)
    assert store.delete_patient(ALICE) == 5
    assert backend.keys() == [bob.key]


def test_one_store_serves_many_threads(store: S3DocumentStore) -> None:
    errors: list[BaseException] = []
    stored: list[tuple[StoredContent, bytes]] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            for i in range(3):
                content = PLAINTEXT + b"thread %d document %d" % (n, i)
                receipt = store.put(f"patient-{n}", content)
                assert store.get(receipt.key) == content
                with lock:
                    stored.append((receipt, content))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len({receipt.key for receipt, _ in stored}) == 24


# --- store URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://carnet-docs", S3Location(bucket="carnet-docs")),
        ("s3://carnet-docs/", S3Location(bucket="carnet-docs")),
        ("S3://carnet.docs.lu/a/b-c/", S3Location(bucket="carnet.docs.lu", prefix="a/b-c")),
        (
            "s3://carnet-docs/prod?endpoint=http://127.0.0.1:9000&region=eu-west-1",
            S3Location(
                bucket="carnet-docs",
                prefix="prod",
                endpoint="http://127.0.0.1:9000",
                region="eu-west-1",
                addressing="path",
            ),
        ),
        (
            "s3://carnet-docs?endpoint=https://s3.example.org/&addressing=virtual"
            "&connect_timeout=1.5&read_timeout=30&max_attempts=5",
            S3Location(
                bucket="carnet-docs",
                endpoint="https://s3.example.org",
                addressing="virtual",
                connect_timeout=1.5,
                read_timeout=30.0,
                max_attempts=5,
            ),
        ),
    ],
)
def test_s3_urls_are_parsed(url: str, expected: S3Location) -> None:
    assert S3Location.from_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://", "An S3 store URL starts with s3://bucket"),
        ("s3:///prefix", "names no bucket"),
        ("s3://Carnet/x", "'Carnet' is not a valid S3 bucket name (3 to 63 lowercase"),
        ("s3://ab", "'ab' is not a valid S3 bucket name"),
        ("s3://a..b", "is not a valid S3 bucket name"),
        ("s3://minio:9000/carnet", "(the server goes in ?endpoint=http://host:port)"),
        ("s3://carnet-docs/a//b", "segments of letters, digits"),
        ("s3://carnet-docs/a/../b", "without '.' or '..' segments"),
        ("s3://carnet-docs/a b", "segments of letters, digits"),
        ("s3://carnet-docs#x", "must not have a #fragment"),
        ("s3://carnet-docs?endpoint=ftp://host", "must be http(s)://host[:port]"),
        ("s3://carnet-docs?endpoint=http://host/path", "with no path"),
        ("s3://carnet-docs?endpoint=http://host:99999", "port is not a number from 1 to 65535"),
        ("s3://carnet-docs?endpoint=", "parameter 'endpoint' has no value"),
        ("s3://carnet-docs?region", "parameter 'region' has no value"),
        ("s3://carnet-docs?region=a&region=b", "parameter 'region' is given twice"),
        ("s3://carnet-docs?region=eu west", "'eu west' is not a region name"),
        ("s3://carnet-docs?addressing=dns", "addressing must be path, virtual or auto"),
        ("s3://carnet-docs?read_timeout=0", "read_timeout must be a number of seconds above 0"),
        ("s3://carnet-docs?connect_timeout=nan", "connect_timeout must be a number of seconds"),
        ("s3://carnet-docs?read_timeout=301", "at most 300"),
        ("s3://carnet-docs?max_attempts=0", "max_attempts must be a whole number from 1 to 10"),
        ("s3://carnet-docs?max_attempts=2.5", "max_attempts must be a whole number"),
        ("s3://carnet-docs?max_attempts=²", "max_attempts must be a whole number"),
        ("s3://carnet-docs?verify=false", "Unknown S3 store URL parameter 'verify'; known:"),
    ],
)
def test_bad_s3_urls_are_refused_readably(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        open_store(url, wrapper(), max_bytes=MAX_BYTES)


@pytest.mark.parametrize(
    "url",
    [
        f"s3://AKIACARNETTEST:{SECRET}@carnet-docs/prod",
        f"s3://carnet-docs?endpoint=http://AKIACARNETTEST:{SECRET}@127.0.0.1:9000",
        f"s3://carnet-docs?aws_secret_access_key={SECRET}",
    ],
)
def test_credentials_in_the_url_are_refused_and_never_echoed(url: str) -> None:
    with pytest.raises(ValueError, match=r"AWS_ACCESS_KEY_ID|Credentials come from") as excinfo:
        open_store(url, wrapper(), max_bytes=MAX_BYTES)
    assert SECRET not in str(excinfo.value)
    assert "AKIACARNETTEST" not in str(excinfo.value)
