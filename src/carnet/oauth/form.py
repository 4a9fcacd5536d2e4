"""The form every OAuth endpoint and sign-in step receives: an ``x-www-form-urlencoded`` body
read as RFC 6749 wants it, each parameter screened before anything uses it."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request

from carnet.auth.errors import InvalidRequest
from carnet.auth.models import AuthorizationCode, OAuthClient
from carnet.errors import InvalidValue
from carnet.storable import check_text, column_limit

_MAX_FORM_BYTES = 64 * 1024


async def form_fields(request: Request) -> dict[str, str]:
    """The ``application/x-www-form-urlencoded`` body as a dict (RFC 6749 section 3.1).

    A repeated parameter is refused, as the RFC requires; so are other content types.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if content_type != "application/x-www-form-urlencoded" or len(body) > _MAX_FORM_BYTES:
        raise InvalidRequest("Send the parameters as application/x-www-form-urlencoded.")
    fields: dict[str, str] = {}
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidRequest("The form is not valid UTF-8.") from None
    for name, value in pairs:
        if name in fields:
            raise InvalidRequest(f"The parameter {name!r} is repeated.", field=name)
        screen_parameter(name, value)
        fields[name] = value
    return fields


# Parameters Carnet keeps, by the column that keeps them: the limit is the schema's own.
_KEPT_IN = {
    "nonce": AuthorizationCode.__table__.c.nonce,
    "code_challenge": AuthorizationCode.__table__.c.code_challenge,
    "redirect_uri": AuthorizationCode.__table__.c.redirect_uri,
    "client_id": OAuthClient.__table__.c.client_id,
}


def screen_parameter(name: str, value: str) -> None:
    """``InvalidRequest`` naming the parameter if it holds a control character or is too long.

    No OAuth parameter is free text: RFC 6749 appendix A allows printable ASCII (and, for a few,
    spaces); Carnet refuses control characters and what its columns cannot keep.
    """
    try:
        shown = check_text(name, field="parameter name", free_text=False)
        column = _KEPT_IN.get(name)
        check_text(
            value,
            field=shown,
            free_text=False,
            limit=column_limit(column) if column is not None else _MAX_FORM_BYTES,
        )
    except InvalidValue as refused:
        raise InvalidRequest(refused.message, field=refused.field) from None


Form = Annotated[dict[str, str], Depends(form_fields)]
