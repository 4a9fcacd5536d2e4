"""Authentication tests hash passwords at a low scrypt cost (see factories.auth)."""

from __future__ import annotations

import pytest

from factories.auth import cheap_password_hashing


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_password_hashing(monkeypatch)
