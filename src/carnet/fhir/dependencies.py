"""What every FHIR interaction needs: the platform, a transaction, the base URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from carnet.platform import Platform


def platform_of(request: Request) -> Platform:
    """The running platform."""
    platform: Platform = request.app.state.platform
    return platform


def transaction(request: Request) -> Iterator[Session]:
    """One request, one transaction: committed when the interaction returns, else rolled back."""
    platform = platform_of(request)
    with platform.sessions() as session, session.begin():
        yield session


def base_url(request: Request) -> str:
    """The FHIR base URL clients use (``CARNET_PUBLIC_URL`` + ``/fhir``)."""
    return platform_of(request).settings.public_url.rstrip("/") + "/fhir"


CurrentPlatform = Annotated[Platform, Depends(platform_of)]
Transaction = Annotated[Session, Depends(transaction)]
BaseUrl = Annotated[str, Depends(base_url)]
