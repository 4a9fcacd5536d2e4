"""Authentication: Carnet's OAuth 2.0 / OpenID Connect server, accounts, tokens and keys."""
