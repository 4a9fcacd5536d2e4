"""Bearer authentication for routes: ``authenticated_actor`` and ``require_scope``.

Challenges follow RFC 6750 section 3: no token gets a bare ``Bearer realm="carnet"``; a bad
token gets ``error="invalid_token"`` with one description whatever went wrong; a token without
the scope a route needs gets 403 ``error="insufficient_scope"``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from carnet.access.actors import Actor, ActorKind
from carnet.access.scopes import Interaction, allows
from carnet.auth.errors import InvalidToken
from carnet.auth.tokens import TokenAuthority, authenticate, remembered
from carnet.platform import Platform

log = logging.getLogger(__name__)
REALM = 'Bearer realm="carnet"'
# The header naming the patient a representative's request acts for (see ``on_behalf_of``).
ON_BEHALF_OF = "On-Behalf-Of"


class BearerChallenge(HTTPException):
    """A 401 or 403 answer carrying its ``WWW-Authenticate`` challenge."""

    def __init__(self, status_code: int, detail: str, challenge: str) -> None:
        super().__init__(status_code, detail, headers={"WWW-Authenticate": challenge})


def authority_of(request: Request) -> TokenAuthority:
    """The application's token authority (built at startup)."""
    authority: TokenAuthority = request.app.state.authority
    return authority


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None when there is none."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # RFC 6750 section 3.1: a malformed Authorization header is an invalid_request.
        raise BearerChallenge(
            400,
            "The Authorization header must be 'Bearer <token>'.",
            f'{REALM}, error="invalid_request"',
        )
    return token.strip()


async def authenticated_actor(request: Request) -> Actor:
    """The actor the request's bearer token speaks for; 401 with a challenge otherwise.

    On the event loop when the process remembers the token and its revocation list is fresh
    (``tokens.remembered``: most requests), in the thread pool when the database must be asked:
    a hand-over to a thread and back costs more than the check itself.
    """
    token = _required(request)
    platform: Platform = request.app.state.platform
    authority = authority_of(request)
    try:
        actor = remembered(authority, token, clock=platform.clock)
        if actor is None:
            actor = await run_in_threadpool(_authenticate, platform, authority, token)
    except InvalidToken as error:
        raise _refusal(error) from None
    return _as_requested(request, actor)


def bearer_actor(request: Request) -> Actor:
    """``authenticated_actor`` for a way in already off the event loop (XDS.b's SOAP)."""
    token = _required(request)
    platform: Platform = request.app.state.platform
    authority = authority_of(request)
    try:
        actor = remembered(authority, token, clock=platform.clock) or _authenticate(
            platform, authority, token
        )
    except InvalidToken as error:
        raise _refusal(error) from None
    return _as_requested(request, actor)


def _required(request: Request) -> str:
    token = bearer_token(request)
    if token is None:
        raise BearerChallenge(401, "An access token is required.", REALM)
    return token


def _authenticate(platform: Platform, authority: TokenAuthority, token: str) -> Actor:
    # A short read-only session of its own: the key lookup and the revocation check.
    with platform.sessions() as session:
        return authenticate(session, authority, token, clock=platform.clock)


def _refusal(error: InvalidToken) -> BearerChallenge:
    log.info("bearer token refused: %s", error.detail)
    return BearerChallenge(
        401,
        InvalidToken.GENERIC,
        f'{REALM}, error="invalid_token", error_description="{InvalidToken.GENERIC}"',
    )


def _as_requested(request: Request, actor: Actor) -> Actor:
    # Where the request came from belongs in the audit trail.
    actor = replace(actor, network_address=request.client.host if request.client else None)
    actor = on_behalf_of(actor, request.headers.get(ON_BEHALF_OF))
    request.state.actor = actor
    return actor


def on_behalf_of(actor: Actor, header: str | None) -> Actor:
    """The actor acting for the patient named by an ``On-Behalf-Of`` header, if there is one.

    A patient's token may name someone they represent (``Patient/<id>``): the request then
    acts on that dossier only, as a token launched for them would (``launch_patient``). The
    policy checks the representation at each access and the audit trail names the patient
    acted for (``on_behalf_of``). Only a patient's token may, and not one already launched
    for somebody else: 403 otherwise, 400 for a value that names no patient.
    """
    if header is None:
        return actor
    reference = header.strip().removeprefix("Patient/")
    try:
        patient_id = uuid.UUID(reference)
    except ValueError:
        raise BearerChallenge(
            400,
            f"{ON_BEHALF_OF} must name a patient as Patient/<id>.",
            f'{REALM}, error="invalid_request"',
        ) from None
    if actor.kind is not ActorKind.PATIENT or actor.launch_patient not in (None, patient_id):
        raise BearerChallenge(
            403,
            f"Only a patient's token acts on behalf of someone they represent ({ON_BEHALF_OF}).",
            f'{REALM}, error="insufficient_scope"',
        )
    return replace(actor, acting_for=patient_id, launch_patient=patient_id)


CurrentActor = Annotated[Actor, Depends(authenticated_actor)]


def require_scope(
    resource: str, interaction: Interaction, *, context: str | None = None
) -> Callable[[Actor], Awaitable[Actor]]:
    """A dependency: the authenticated actor, if a token scope permits ``interaction``.

    Scopes only narrow what a token may do; the access policy still decides. Answers 403 with
    ``error="insufficient_scope"`` naming a scope that would do (RFC 6750 section 3.1).
    """

    async def dependency(actor: CurrentActor) -> Actor:
        if not allows(actor.scopes, resource, interaction, context=context):
            needed = f"{context or 'user'}/{resource}.{interaction.value}"
            raise BearerChallenge(
                403,
                "The access token's scopes do not allow this.",
                f'{REALM}, error="insufficient_scope", scope="{needed}"',
            )
        return actor

    return dependency
