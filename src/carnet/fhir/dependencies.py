"""What every FHIR interaction needs: the platform, a transaction, the base URL.

The dependencies are ``async`` though they wait for nothing: FastAPI runs a plain function
dependency in its thread pool, and each hand-over there and back costs a request more than what
these compute (bench/RESULTS.md, "The thread pool's hand-overs").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from carnet.db import unit_of_work
from carnet.platform import Platform


async def platform_of(request: Request) -> Platform:
    """The running platform."""
    platform: Platform = request.app.state.platform
    return platform


@contextmanager
def transaction(platform: Platform) -> Iterator[Session]:
    """One request, one transaction, committed before the response is built.

    Not a FastAPI dependency on purpose: a dependency's exit code runs after the response has
    gone, so a failed commit — say, of the audit record of a read — would still have delivered
    the content. Here the commit comes first, and its failure is the response.
    """
    with unit_of_work(platform.sessions) as session:
        yield session


async def base_url(request: Request) -> str:
    """The FHIR base URL clients use (``CARNET_PUBLIC_URL`` + ``/fhir``)."""
    platform: Platform = request.app.state.platform
    return platform.settings.public_url.rstrip("/") + "/fhir"


CurrentPlatform = Annotated[Platform, Depends(platform_of)]
BaseUrl = Annotated[str, Depends(base_url)]
