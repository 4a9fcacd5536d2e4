"""The OAuth 2.0 / OpenID Connect way in: authorize and the sign-in page, token, revoke, JWKS."""
