"""Document store on an S3-compatible object store (AWS S3, MinIO, Ceph RGW, Garage...).

Layout: one object per document at ``<prefix>/<patient_id>/<sha256>`` in a single bucket,
each a sealed blob (see carnet.storage.crypto) whose GCM associated data is the content key
``<patient_id>/<sha256>`` — the same as the filesystem store's, so a sealed object copied
byte for byte between the two stores stays readable, while one copied under another key or
patient fails to open. The patient id leads the key, so a per-patient purge is one prefix
listing and batched deletions.

Credentials never come from Carnet's configuration: boto3's standard chain finds them
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, web identity, instance
or container roles). The URL names only where the bucket is::

    s3://bucket[/prefix][?endpoint=https://host:port][&region=eu-west-1][&addressing=path]
      [&connect_timeout=3][&read_timeout=10][&max_attempts=3]

Deletion removes the current version only: on a bucket with versioning enabled, configure
a lifecycle rule that expires noncurrent versions, or a purge leaves sealed copies behind
(a ``put`` of content already stored also leaves one: it refreshes the object in place).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    CredentialRetrievalError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from carnet.storage.crypto import open_sealed, seal
from carnet.storage.errors import (
    ContentCorrupted,
    ContentNotFound,
    ContentTooLarge,
    EmptyContent,
    InvalidContentKey,
    StoreUnavailable,
)
from carnet.storage.ports import (
    ListedObject,
    StoredContent,
    content_key,
    is_sha256_hex,
    is_valid_patient_id,
    parse_content_key,
)

if TYPE_CHECKING:
    import datetime
    from collections.abc import Iterator, Sequence

    from carnet.storage.ports import KeyWrapper

Addressing = Literal["auto", "path", "virtual"]
_ADDRESSING: dict[str, Addressing] = {"auto": "auto", "path": "path", "virtual": "virtual"}

# S3's bucket naming rules (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html);
# the stricter of the S3-compatible servers apply the same ones.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# Safe characters only (docs: "Object key naming guidelines"), no '.' or '..' segments:
# a prefix ends up in URLs, logs and bucket policies.
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9_.-]{1,255}")
_REGION = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ATTEMPTS = re.compile(r"[0-9]{1,2}")
_PARAMETERS = (
    "endpoint",
    "region",
    "addressing",
    "connect_timeout",
    "read_timeout",
    "max_attempts",
)
_DELETE_BATCH = 1000  # the most keys one DeleteObjects request accepts
_MAX_TIMEOUT = 300.0
_MAX_ATTEMPTS = 10

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_CREDENTIALS_REFUSED = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "InvalidClientTokenId",
    }
)
_DENIED = frozenset({"403", "AccessDenied", "AllAccessDisabled", "AccountProblem"})
_BUSY = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "RequestLimitExceeded",
        "Throttling",
        "InternalError",
        "503",
        "500",
    }
)


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where the store lives and how to reach it, as parsed from an ``s3://`` URL.

    Holds no secret: credentials come from boto3's standard chain, never from the URL.
    """

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None
    addressing: Addressing = "auto"
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    max_attempts: int = 3

    @classmethod
    def from_url(cls, url: str) -> S3Location:
        """Parse ``s3://bucket[/prefix][?endpoint=...&region=...]``.

        Raises ValueError with a message fit for an operator. Messages never echo the URL
        as a whole, nor any parameter value that could be a secret pasted by mistake.
        """
        scheme, _, rest = url.partition("://")
        if scheme.lower() != "s3" or not rest:
            raise ValueError("An S3 store URL starts with s3://bucket, e.g. s3://carnet-documents.")
        parts = urlsplit(url)
        if "@" in parts.netloc:
            raise ValueError(
                "The S3 store URL holds credentials (user:secret@): they are refused there, "
                "because URLs end up in logs and `carnet config`. Give them through "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role "
                "- and rotate them if this URL was shared."
            )
        if parts.fragment:
            raise ValueError("The S3 store URL must not have a #fragment.")
        bucket = parts.netloc
        if not bucket:
            raise ValueError(
                "The S3 store URL names no bucket: write s3://bucket or s3://bucket/prefix."
            )
        if _BUCKET.fullmatch(bucket) is None or ".." in bucket:
            hint = (
                " (the server goes in ?endpoint=http://host:port)"
                if ":" in bucket
                else " (3 to 63 lowercase letters, digits, '.' and '-')"
            )
            raise ValueError(f"{bucket[:63]!r} is not a valid S3 bucket name{hint}.")
        prefix = _parse_prefix(unquote(parts.path))
        params = _parse_query(parts.query)
        endpoint = _parse_endpoint(params["endpoint"]) if "endpoint" in params else None
        region = params.get("region")
        if region is not None and _REGION.fullmatch(region) is None:
            raise ValueError(f"{region[:64]!r} is not a region name (e.g. eu-west-1).")
        # Path-style requests by default off AWS: most S3-compatible servers (and a bare
        # IP endpoint) have no per-bucket DNS names.
        addressing = _ADDRESSING.get(params.get("addressing", "path" if endpoint else "auto"))
        if addressing is None:
            raise ValueError("addressing must be path, virtual or auto.")
        return cls(
            bucket=bucket,
            prefix=prefix,
            endpoint=endpoint,
            region=region,
            addressing=addressing,
            connect_timeout=_parse_seconds(params, "connect_timeout", 3.0),
            read_timeout=_parse_seconds(params, "read_timeout", 10.0),
            max_attempts=_parse_attempts(params),
        )

    def client_config(self) -> Config:
        """The botocore configuration: bounded waits, standard retries, a shared pool."""
        return Config(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            # "standard" retries throttling, 5xx and connection errors with jittered
            # exponential backoff. botocore's own "max_attempts" counts retries only;
            # "total_max_attempts" counts the first try too, as the URL parameter does.
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            # One client serves every request thread (uvicorn's pool has 40 threads).
            max_pool_connections=32,
            # botocore >= 1.36 adds CRC32 checksums to every upload by default, which many
            # S3-compatible servers reject; the store sends Content-MD5 itself instead,
            # which every S3 implementation verifies.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": self.addressing},
        )


def _parse_prefix(path: str) -> str:
    prefix = path.strip("/")
    if not prefix:
        return ""
    segments = prefix.split("/")
    for segment in segments:
        if _PREFIX_SEGMENT.fullmatch(segment) is None or segment in (".", ".."):
            raise ValueError(
                "The S3 key prefix must be segments of letters, digits, '_', '.' and '-' "
                "separated by single '/', without '.' or '..' segments, e.g. s3://bucket/carnet/prod."
            )
    return prefix


def _parse_query(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        name, sep, value = item.partition("=")
        name = unquote(name)
        if name not in _PARAMETERS:
            # The name only: a misplaced secret would be in the value.
            raise ValueError(
                f"Unknown S3 store URL parameter {name[:40]!r}; known: {', '.join(_PARAMETERS)}. "
                "Credentials come from the AWS environment variables or profile, not the URL."
            )
        if not sep or not value:
            raise ValueError(f"The S3 store URL parameter {name!r} has no value.")
        if name in params:
            raise ValueError(f"The S3 store URL parameter {name!r} is given twice.")
        params[name] = unquote(value)
    return params


def _parse_endpoint(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if "@" in parts.netloc:
        raise ValueError(
            "The S3 endpoint holds credentials (user:secret@): give them through "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead, and rotate them."
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError("The S3 endpoint's port is not a number from 1 to 65535.") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or port == 0
    ):
        raise ValueError(
            "The S3 endpoint must be http(s)://host[:port] with no path, e.g. "
            "endpoint=https://s3.example.org or endpoint=http://127.0.0.1:9000."
        )
    return f"{parts.scheme}://{parts.netloc}"


def _parse_seconds(params: dict[str, str], name: str, default: float) -> float:
    if name not in params:
        return default
    try:
        seconds = float(params[name])
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= _MAX_TIMEOUT:  # also refuses nan
        raise ValueError(f"{name} must be a number of seconds above 0 and at most 300.")
    return seconds


def _parse_attempts(params: dict[str, str]) -> int:
    value = params.get("max_attempts", "3")
    # Not str.isdigit(): it accepts digits such as "²" that int() then refuses.
    if _ATTEMPTS.fullmatch(value) is None or not 1 <= int(value) <= _MAX_ATTEMPTS:
        raise ValueError("max_attempts must be a whole number from 1 to 10 (1 = no retry).")
    return int(value)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3DocumentStore:
    """Encrypted, content-addressed document store in one bucket of an S3-compatible server.

    ``client`` is a boto3 S3 client: thread-safe, so one instance serves every request
    thread (a boto3 *session* is not; ``connect`` creates a private one). Every failure of
    the server, the network or the credentials is raised as StoreUnavailable with a reason
    fit for a person; the botocore exception is chained for the logs.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        wrapper: KeyWrapper,
        *,
        max_bytes: int,
        prefix: str = "",
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be a positive number of bytes.")
        self._client = client
        self._bucket = bucket
        self._prefix = _parse_prefix(prefix)
        self._wrapper = wrapper
        self._max_bytes = max_bytes

    @classmethod
    def connect(
        cls, location: S3Location, wrapper: KeyWrapper, *, max_bytes: int
    ) -> S3DocumentStore:
        """Build the client for ``location`` (no request is made: see ``check``).

        Credentials and, unless the URL gives one, the region come from boto3's standard
        chain.
        """
        session = boto3.session.Session()
        client = session.client(
            "s3",
            endpoint_url=location.endpoint,
            region_name=location.region,
            config=location.client_config(),
        )
        return cls(client, location.bucket, wrapper, max_bytes=max_bytes, prefix=location.prefix)

    def __repr__(self) -> str:
        endpoint = self._client.meta.endpoint_url
        return (
            f"S3DocumentStore(bucket={self._bucket!r}, prefix={self._prefix!r}, "
            f"endpoint={endpoint!r}, max_bytes={self._max_bytes})"
        )

    @property
    def client(self) -> Any:
        """The boto3 S3 client in use (thread-safe)."""
        return self._client

    @property
    def bucket(self) -> str:
        """The bucket holding every patient namespace."""
        return self._bucket

    @property
    def prefix(self) -> str:
        """The key prefix under which the store lives, without slashes at its ends."""
        return self._prefix

    @property
    def max_bytes(self) -> int:
        """Largest accepted document, in bytes."""
        return self._max_bytes

    def object_key(self, key: str) -> str:
        """The S3 object key of content key ``key``: ``<prefix>/<patient_id>/<sha256>``."""
        patient_id, sha256hex = parse_content_key(key)
        return self._patient_prefix(patient_id) + sha256hex

    def _patient_prefix(self, patient_id: str) -> str:
        # The trailing '/' matters: without it, patient "ab" would also match "abc".
        return f"{self._prefix}/{patient_id}/" if self._prefix else f"{patient_id}/"

    def _unavailable(self, action: str, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"could not {action}: {self._reason(exc)}")

    def _reason(self, exc: Exception) -> str:  # noqa: PLR0911 — one answer per failure kind
        endpoint = self._client.meta.endpoint_url
        if isinstance(exc, ClientError):
            code = _error_code(exc)
            if code == "NoSuchBucket":
                return f"the bucket {self._bucket!r} does not exist at {endpoint}"
            if code in _CREDENTIALS_REFUSED:
                return (
                    f"the object store refused the credentials ({code}); check the AWS_* settings"
                )
            if code in _DENIED:
                return (
                    f"access to the bucket {self._bucket!r} is denied; its policy must allow "
                    "s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket"
                )
            if code in _BUSY:
                return f"the object store is overloaded or failing ({code}); retry later"
            return f"the object store answered {code or 'an error'}"
        if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
            return (
                "no usable AWS credentials were found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or give the host a role"
            )
        if isinstance(exc, EndpointConnectionError):  # includes the connect timeout
            return f"the object store at {endpoint} cannot be reached"
        if isinstance(exc, ReadTimeoutError):
            return f"the object store at {endpoint} did not answer in time"
        if isinstance(exc, ConnectionClosedError | ResponseStreamingError | IncompleteReadError):
            return f"the connection to the object store at {endpoint} broke off"
        return f"the S3 client failed ({type(exc).__name__})"

    def put(self, patient_id: str, content: bytes) -> StoredContent:
        """Encrypt and store ``content`` for the patient; return its key, hash and size.

        Durable when it returns (S3 acknowledges a PUT once the object is stored). Idempotent:
        identical content already stored for the same patient is not rewritten, only copied
        onto itself, which refreshes its LastModified (the sweeper's sign that the object is
        wanted again: see ``remove_unchanged``). Two puts
        racing past the existence check both write a complete sealed object of the same
        content, and S3's last writer wins: readers see one whole object or the other, never
        a mix, so no conditional write (which not every S3-compatible server implements)
        is needed.
        """
        if not is_valid_patient_id(patient_id):
            raise InvalidContentKey(patient_id)
        size = len(content)
        if size == 0:
            raise EmptyContent()
        if size > self._max_bytes:
            raise ContentTooLarge(limit=self._max_bytes, size=size)
        sha256hex = hashlib.sha256(content).hexdigest()
        key = content_key(patient_id, sha256hex)
        stored = StoredContent(key=key, sha256=sha256hex, size=size)
        if self._touch(key):
            return stored
        blob = seal(content, aad=key.encode("ascii"), wrapper=self._wrapper)
        # Content-MD5 has the server check the bytes it received (BadDigest otherwise):
        # integrity in transit, not a security measure (GCM is).
        digest = hashlib.md5(blob, usedforsecurity=False).digest()
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=self.object_key(key),
                Body=blob,
                ContentMD5=base64.b64encode(digest).decode("ascii"),
                ContentType="application/octet-stream",
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable("write the document", exc) from exc
        return stored

    def _touch(self, key: str) -> bool:
        """Refresh the object's LastModified in place (same bytes); False if it is absent."""
        object_key = self.object_key(key)
        try:
            # S3 refuses to copy an object onto itself unless something changes: REPLACE
            # (with the same metadata) is that change, and the server copies no byte out.
            self._client.copy_object(
                Bucket=self._bucket,
                Key=object_key,
                CopySource={"Bucket": self._bucket, "Key": object_key},
                MetadataDirective="REPLACE",
                ContentType="application/octet-stream",
            )
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                return False
            raise self._unavailable("write the document", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("write the document", exc) from exc
        return True

    def _head(self, key: str, *, action: str) -> bool:
        try:
            self._client.head_object(Bucket=self._bucket, Key=self.object_key(key))
        except ClientError as exc:
            # A HEAD response has no body, so a missing bucket is a bare 404 too: it then
            # reads as "absent", and the PUT or GET that follows names the missing bucket.
            if _error_code(exc) in _NOT_FOUND:
                return False
            raise self._unavailable(action, exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable(action, exc) from exc
        return True

    def get(self, key: str) -> bytes:
        """Return the decrypted content stored under ``key``, verified against its hash."""
        _, sha256hex = parse_content_key(key)
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=self.object_key(key))
            with contextlib.closing(response["Body"]) as body:
                blob = bytes(body.read())
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise ContentNotFound(key) from None
            raise self._unavailable("read the document", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("read the document", exc) from exc
        try:
            plaintext = open_sealed(blob, aad=key.encode("ascii"), wrapper=self._wrapper)
        except ContentCorrupted as exc:
            raise ContentCorrupted(key, detail=exc.detail) from exc
        # Defence in depth: GCM already authenticated the bytes, this also catches a
        # buggy writer that stored content under the wrong hash.
        if hashlib.sha256(plaintext).hexdigest() != sha256hex:
            raise ContentCorrupted(key, detail="the content does not match its SHA-256 key")
        return plaintext

    def exists(self, key: str) -> bool:
        """Tell whether an object is stored under ``key`` (one HEAD request, no decryption)."""
        return self._head(key, action="look the document up")

    def delete(self, key: str) -> None:
        """Remove the object under ``key``; a missing object is not an error (S3 agrees)."""
        object_key = self.object_key(key)
        try:
            self._client.delete_object(Bucket=self._bucket, Key=object_key)
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable("delete the document", exc) from exc

    def delete_patient(self, patient_id: str) -> int:
        """Remove every object under the patient's prefix; return how many documents it held.

        Objects under the prefix that are not documents (none are ever written) are removed
        too but not counted. Raises StoreUnavailable if any deletion failed; repeating the
        call then finishes the purge.
        """
        if not is_valid_patient_id(patient_id):
            raise InvalidContentKey(patient_id)
        patient_prefix = self._patient_prefix(patient_id)
        removed = 0
        try:
            for batch in self._batches(patient_prefix):
                response = self._client.delete_objects(
                    Bucket=self._bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
                if errors := response.get("Errors"):
                    codes = sorted({str(error.get("Code", "?")) for error in errors})
                    raise StoreUnavailable(
                        f"could not delete {len(errors)} of the patient's objects "
                        f"({', '.join(codes)}); run the purge again"
                    )
                removed += sum(is_sha256_hex(k[len(patient_prefix) :]) for k in batch)
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable("delete the patient's documents", exc) from exc
        return removed

    def _batches(self, patient_prefix: str) -> Iterator[list[str]]:
        # Each listed page (at most 1000 keys) is deleted before the next is fetched;
        # ListObjectsV2's continuation token stays valid while keys are deleted.
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(
            Bucket=self._bucket,
            Prefix=patient_prefix,
            PaginationConfig={"PageSize": _DELETE_BATCH},
        ):
            keys = [str(item["Key"]) for item in page.get("Contents", [])]
            if keys:
                yield keys

    def iter_objects(self, *, start_after: str | None = None) -> Iterator[ListedObject]:
        """Every stored object in key order, one listing page (1000 keys) at a time."""
        root = f"{self._prefix}/" if self._prefix else ""
        options = {"StartAfter": self.object_key(start_after)} if start_after else {}
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self._bucket, Prefix=root, **options):
                for item in page.get("Contents", []):
                    key = str(item["Key"])[len(root) :]
                    patient_id, _, sha256hex = key.partition("/")
                    if is_valid_patient_id(patient_id) and is_sha256_hex(sha256hex):
                        yield ListedObject(key, int(item["Size"]), item["LastModified"])
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable("list the documents", exc) from exc

    def remove_unchanged(self, objects: Sequence[ListedObject]) -> list[ListedObject]:
        """Remove each listed object whose LastModified is still the listed one.

        Each is looked at again (HEAD) just before a batched DeleteObjects: a ``put`` of the
        same content that refreshed it since the listing saves it. S3 has no portable
        conditional delete, so a refresh landing between that HEAD and the deletion (a
        window of one request) is not seen: the sweeper's grace period is what makes such
        a put of an object unreferenced for that long improbable (see carnet.lifecycle.sweep).
        """
        unchanged = []
        for listed in objects:
            try:
                head = self._client.head_object(
                    Bucket=self._bucket, Key=self.object_key(listed.key)
                )
            except ClientError as exc:
                if _error_code(exc) in _NOT_FOUND:
                    continue
                raise self._unavailable("look the document up", exc) from exc
            except BotoCoreError as exc:
                raise self._unavailable("look the document up", exc) from exc
            if head["LastModified"] == listed.modified_at:
                unchanged.append(listed)
        for start in range(0, len(unchanged), _DELETE_BATCH):
            batch = [
                {"Key": self.object_key(o.key)} for o in unchanged[start : start + _DELETE_BATCH]
            ]
            try:
                response = self._client.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except (ClientError, BotoCoreError) as exc:
                raise self._unavailable("remove unreferenced documents", exc) from exc
            if errors := response.get("Errors"):
                raise StoreUnavailable(f"could not remove {len(errors)} unreferenced objects")
        return unchanged

    def sweep_temporaries(self, older_than: datetime.timedelta) -> int:
        """Return 0: an S3 PUT is atomic and single-part, so no write leaves leftovers."""
        if older_than.total_seconds() < 0:
            raise ValueError("older_than must not be negative.")
        return 0

    def check(self) -> None:
        """Verify that the bucket exists and answers with these credentials (HEAD bucket).

        Raises StoreUnavailable otherwise. Writes nothing: /health is polled often, and
        probe objects would pile up as versions in a versioned bucket. A policy without
        s3:PutObject therefore shows on the first write, not here.
        """
        try:
            self._client.head_bucket(Bucket=self._bucket)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise StoreUnavailable(
                    f"the bucket {self._bucket!r} does not exist at "
                    f"{self._client.meta.endpoint_url}"
                ) from exc
            raise self._unavailable("reach the bucket", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("reach the bucket", exc) from exc
