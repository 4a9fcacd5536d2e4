"""What the store contract tests need from each backing storage, beyond the DocumentStore API.

A backend builds stores over one shared location (a directory, or a bucket and prefix) and
reaches the raw sealed objects behind the store's back, the way an attacker, a faulty disk
or a careless operator would: to read them, tamper with them, or see what is left.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import boto3  # type: ignore[import-untyped]
from moto.server import ThreadedMotoServer

from carnet.storage import (
    DocumentStore,
    FilesystemDocumentStore,
    MasterKeyWrapper,
    S3DocumentStore,
    S3Location,
)
from carnet.storage.ports import is_sha256_hex

MASTER = bytes(range(32))
OTHER_MASTER = bytes(range(100, 132))
ALICE = "3f1c2a9e-0000-4000-8000-000000000001"
BOB = "7d0e5b21-0000-4000-8000-000000000002"
MAX_BYTES = 64 * 1024
PLAINTEXT = b"".join(
    b"Compte rendu %03d: HbA1c 7.2%%, allergie penicilline, Mme Lefebvre-Dupont.\n" % i
    for i in range(50)
)

REGION = "eu-west-1"


class MotoServer:
    """A moto S3 server on 127.0.0.1; ``stop`` closes its socket (connections are refused)."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()


def make_client(endpoint: str, **config: Any) -> Any:
    """A boto3 client for the test server, with the store's own configuration.

    Credentials are given explicitly (moto accepts any) so that no credentials of the
    machine running the tests are ever used.
    """
    session = boto3.session.Session(
        aws_access_key_id="carnet-test", aws_secret_access_key="carnet-test-secret"
    )
    location = S3Location(
        bucket="unused", endpoint=endpoint, region=REGION, addressing="path", **config
    )
    return session.client(
        "s3", endpoint_url=endpoint, region_name=REGION, config=location.client_config()
    )


def create_bucket(client: Any) -> str:
    name = f"carnet-{uuid.uuid4().hex[:20]}"
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


class Backend(Protocol):
    """Raw access to where a store keeps its objects."""

    name: str
    hypothesis_examples: int  # each example costs two round trips on a remote backend

    def make_store(
        self,
        key: bytes = MASTER,
        key_id: str = "k1",
        *,
        previous: dict[str, bytes] | None = None,
        max_bytes: int = MAX_BYTES,
    ) -> DocumentStore:
        """A store over this backend's location (every call: the same location)."""
        ...

    def read_raw(self, key: str) -> bytes:
        """The sealed bytes stored under content key ``key``."""
        ...

    def write_raw(self, key: str, blob: bytes) -> None:
        """Put ``blob`` where content key ``key`` lives, bypassing the store."""
        ...

    def remove_raw(self, key: str) -> None:
        """Remove the object under content key ``key``, bypassing the store."""
        ...

    def entries(self) -> list[str]:
        """Everything present at the location (files and directories, or objects); sorted."""
        ...

    def keys(self) -> list[str]:
        """Every stored object as its content key, anything else by its raw name; sorted.

        So ``keys() == [key]`` also fails on a leftover temporary or a stray object.
        """
        ...


def wrapper(key: bytes, key_id: str, previous: dict[str, bytes] | None) -> MasterKeyWrapper:
    return MasterKeyWrapper(key, key_id, previous=previous)


@dataclass
class FilesystemBackend:
    root: Path
    name: str = "filesystem"
    hypothesis_examples: int = 150

    def make_store(
        self,
        key: bytes = MASTER,
        key_id: str = "k1",
        *,
        previous: dict[str, bytes] | None = None,
        max_bytes: int = MAX_BYTES,
    ) -> FilesystemDocumentStore:
        return FilesystemDocumentStore(
            self.root, wrapper(key, key_id, previous), max_bytes=max_bytes
        )

    def path(self, key: str) -> Path:
        patient_id, digest = key.split("/")
        return self.root / patient_id / digest[:2] / digest

    def read_raw(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def write_raw(self, key: str, blob: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)

    def remove_raw(self, key: str) -> None:
        self.path(key).unlink()

    def entries(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*"))

    def keys(self) -> list[str]:
        found = []
        for path in self.root.rglob("*") if self.root.exists() else ():
            if path.is_file():
                parts = path.relative_to(self.root).parts
                if len(parts) == 3 and is_sha256_hex(parts[2]) and parts[1] == parts[2][:2]:
                    found.append(f"{parts[0]}/{parts[2]}")
                else:
                    found.append("/".join(parts))
        return sorted(found)


@dataclass
class S3Backend:
    client: Any  # a boto3 S3 client; the stores built here share it (it is thread-safe)
    bucket: str
    prefix: str = "carnet/test"
    name: str = "s3"
    hypothesis_examples: int = 25

    def make_store(
        self,
        key: bytes = MASTER,
        key_id: str = "k1",
        *,
        previous: dict[str, bytes] | None = None,
        max_bytes: int = MAX_BYTES,
    ) -> S3DocumentStore:
        return S3DocumentStore(
            self.client,
            self.bucket,
            wrapper(key, key_id, previous),
            max_bytes=max_bytes,
            prefix=self.prefix,
        )

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def read_raw(self, key: str) -> bytes:
        response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        return bytes(response["Body"].read())

    def write_raw(self, key: str, blob: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=blob)

    def remove_raw(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def entries(self) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        return sorted(
            str(item["Key"])
            for page in paginator.paginate(Bucket=self.bucket)
            for item in page.get("Contents", [])
        )

    def keys(self) -> list[str]:
        start = f"{self.prefix}/" if self.prefix else ""
        return sorted(
            entry[len(start) :] if entry.startswith(start) else entry for entry in self.entries()
        )
