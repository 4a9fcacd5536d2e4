"""Fixtures of the storage tests: one moto S3 server per run, spoken to over real HTTP.

The server is moto's server mode in a thread of the test process, bound to 127.0.0.1 on a
port the kernel picks; the stores reach it through botocore exactly as they would reach
AWS S3, MinIO or Ceph (signing, retries, timeouts, XML errors). Each test gets a fresh
bucket, so tests never see each other's objects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carnet.storage import DocumentStore
from storage.backends import (
    Backend,
    FilesystemBackend,
    MotoServer,
    S3Backend,
    create_bucket,
    make_client,
)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    # Werkzeug logs every request at INFO: hundreds of lines in any failure report.
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    server = MotoServer()
    try:
        yield server
    finally:
        server.stop()
        werkzeug.setLevel(level)


@pytest.fixture(scope="session")
def s3_client(moto_server: MotoServer) -> Any:
    """One client for the whole run: building one loads botocore's models (~0.5 s)."""
    return make_client(moto_server.endpoint)


@pytest.fixture
def bucket(s3_client: Any) -> str:
    """A fresh, empty bucket."""
    return create_bucket(s3_client)


@pytest.fixture(params=["filesystem", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each backing storage in turn: a temporary directory, then a fresh S3 bucket."""
    if request.param == "filesystem":
        return FilesystemBackend(tmp_path)
    client = request.getfixturevalue("s3_client")
    return S3Backend(client, request.getfixturevalue("bucket"))


@pytest.fixture
def store(backend: Backend) -> DocumentStore:
    """A store over the backend, master key "k1", 64 KiB limit."""
    return backend.make_store()
