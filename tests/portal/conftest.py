"""Portal tests: a served Carnet over the test's transaction, with cheap password hashing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from carnet.clock import FrozenClock
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.auth import Served, cheap_password_hashing, serve


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_password_hashing(monkeypatch)


@pytest.fixture
def web(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
) -> Iterator[Served]:
    """Carnet served over the test's own transaction."""
    with serve(session, store, clock, wrapper) as served:
        yield served
