"""Authentication errors: each names the OAuth 2.0 error code a way in answers with.

The codes are the protocol's own words (RFC 6749 section 5.2, RFC 6750 section 3.1), not HTTP
statuses: the web layer maps them once. Messages say what to fix without revealing whether an
account, a code or a token exists.
"""

from __future__ import annotations

from carnet.errors import CarnetError, InvalidInput, NotFound, StateRefused


class AuthError(CarnetError):
    """A refused authentication or authorization request; ``error`` is the OAuth error code."""

    error: str = "invalid_request"


class InvalidRequest(AuthError, InvalidInput):
    """A parameter is missing, repeated, malformed or unsupported (RFC 6749 section 5.2)."""

    error = "invalid_request"


class InvalidClient(AuthError, InvalidInput):
    """The client is unknown or its authentication failed."""

    error = "invalid_client"

    def __init__(self, message: str = "Client authentication failed.") -> None:
        super().__init__(message, field="client_id")


class InvalidGrant(AuthError, InvalidInput):
    """The code, refresh token or PKCE verifier is invalid, expired, used or not this client's."""

    error = "invalid_grant"


class UnauthorizedClient(AuthError, InvalidInput):
    """The client may not use this grant type."""

    error = "unauthorized_client"


class UnsupportedGrantType(AuthError, InvalidInput):
    """The grant type is not one Carnet offers."""

    error = "unsupported_grant_type"


class UnsupportedResponseType(AuthError, InvalidInput):
    """Only ``response_type=code`` is offered (no implicit flow)."""

    error = "unsupported_response_type"


class InvalidScope(AuthError, InvalidInput):
    """A requested scope is malformed, unknown, or none of them is allowed for the client."""

    error = "invalid_scope"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="scope")


class InvalidToken(AuthError, InvalidInput):
    """A bearer token is expired, forged, revoked or not meant for Carnet (RFC 6750 3.1).

    The message is deliberately the same for every cause: telling a caller *why* a token
    failed helps an attacker more than an honest client.
    """

    error = "invalid_token"
    GENERIC = "The access token is invalid or expired."

    def __init__(self, detail: str = "") -> None:
        super().__init__(self.GENERIC)
        # For the server's own debugging only; never shown to the caller.
        self.detail = detail


class SignInRefused(AuthError, InvalidInput):
    """The credentials do not match, or the account is locked: the same answer either way."""

    error = "access_denied"
    GENERIC = "The identifier, password, code or PIN is not correct."

    def __init__(self) -> None:
        super().__init__(self.GENERIC)


class CardRefused(SignInRefused):
    """A professional card was refused; ``reason`` (a ``card.CardRefusal``) says which rule.

    Unlike a password, a card is not guessed: telling its holder that it expired or was
    revoked helps them, not an attacker, so the reason is shown and audited.
    """

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class InvalidCardAuthority(AuthError, InvalidInput):
    """A certificate or CRL offered for a card authority cannot be trusted as given."""

    error = "invalid_request"


class StaffNotAllowed(AuthError, StateRefused):
    """A staff member asked to act for a professional who has not allowed them to."""

    error = "access_denied"


class UnknownSubject(AuthError, NotFound):
    """No patient, professional, client or organisation has this identifier."""

    error = "invalid_request"


class DemoIdentityProviderDisabled(AuthError, StateRefused):
    """The demo identity provider is off (``CARNET_DEMO_IDP=false``)."""

    error = "access_denied"

    def __init__(self) -> None:
        super().__init__(
            "The demo identity provider is disabled (CARNET_DEMO_IDP=false): demo sign-in "
            "and minted tokens are refused here; sign in through the configured identity provider."
        )


class PasskeyRefused(AuthError, InvalidInput):
    """A passkey could not be registered or removed: the ceremony expired, was not this
    session's, or the authenticator's answer does not verify."""

    error = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="credential")


class FederationRefused(CarnetError):
    """A sign-in through an external identity provider is refused (``carnet.auth.federation``).

    ``reason`` is one of ``REASONS``: the sign-in page says why in the person's language and
    the audit trail keeps it; ``detail`` is for the server's logs only.
    """

    REASONS = frozenset(
        {
            "unknown-provider",
            "unavailable",
            "state-mismatch",
            "provider-error",
            "wrong-issuer",
            "token-refused",
            "bad-signature",
            "wrong-audience",
            "expired",
            "wrong-nonce",
            "no-identifier",
            "too-low",
            "unknown-person",
        }
    )

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown federation refusal {reason!r}")
        super().__init__(f"federated sign-in refused: {reason}")
        self.reason = reason
        self.detail = detail


class ApprovalNotFound(NotFound):
    """The person has no approval of this app (already revoked, or never given)."""

    def __init__(self) -> None:
        super().__init__("This app has no access to revoke.", field="client_id")
