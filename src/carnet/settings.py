"""Carnet's configuration: one typed object read from ``CARNET_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_MIB = 1024 * 1024


class ExternalIssuer(BaseModel):
    """An identity provider whose tokens Carnet accepts (a national professional IdP, an eID).

    Tokens are verified with the issuer's JWKS; the identifier in ``identifier_claim`` (of
    ``identifier_system``) names the Carnet patient or professional the token speaks for.
    """

    issuer: str = Field(description="The exact `iss` of the provider's tokens.")
    jwks_url: str = Field(description="Where the provider publishes its signing keys (JWKS).")
    audience: str | None = Field(
        default=None,
        description="The `aud` API tokens must carry for Carnet; without one, the provider's "
        "tokens are not accepted by the API (a sign-in-only provider).",
    )
    actor_kind: Literal["patient", "professional"] = Field(
        description="Whom the provider authenticates."
    )
    identifier_claim: str = Field(description="The claim holding the national identifier.")
    identifier_system: str = Field(description="The identifier's system (a Carnet system URI).")
    assurance_claim: str = Field(
        default="acr", description="The claim telling how strongly the person authenticated."
    )
    assurance_levels: dict[str, Literal["low", "substantial", "high"]] = Field(
        default_factory=dict,
        description="Values of assurance_claim and the level each means; others count as low.",
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["ES256", "RS256"],
        description="Signature algorithms accepted from this provider (never none or HS*).",
    )
    # --- federated sign-in in the browser (Carnet as an OpenID Connect relying party) ---------
    # A provider with a client_id also signs people in to the portals (carnet.auth.federation);
    # without one it is only trusted for API tokens, as before.
    name: str = Field(
        default="",
        pattern=r"^[a-z0-9-]{0,32}$",
        description="Short name in Carnet's URLs (e.g. franceconnect); needed with a client_id.",
    )
    display_name: dict[str, str] = Field(
        default_factory=dict,
        description='The button\'s label by language, e.g. {"fr": "FranceConnect+", "en": …}.',
    )
    client_id: str | None = Field(
        default=None, description="Carnet's client id at the provider; enables the button."
    )
    client_auth: Literal["client_secret_basic", "client_secret_post", "private_key_jwt"] = Field(
        default="client_secret_basic",
        description="How Carnet authenticates at the provider's token endpoint.",
    )
    client_secret: SecretStr | None = Field(
        default=None, description="The client secret (client_secret_basic or _post)."
    )
    client_key_path: Path | None = Field(
        default=None,
        description="PEM private key signing Carnet's client assertions (private_key_jwt); "
        "its public half is registered at the provider.",
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["openid"], description="Scopes asked of the provider."
    )
    acr_values: list[str] = Field(
        default_factory=list, description="acr_values asked of the provider (e.g. eidas3)."
    )
    discovery_url: str | None = Field(
        default=None,
        description="The provider's metadata; default <issuer>/.well-known/openid-configuration.",
    )
    minimum_assurance: Literal["low", "substantial", "high"] = Field(
        default="substantial",
        description="Sign-ins whose acr maps below this level are refused.",
    )

    @model_validator(mode="after")
    def _relying_party_complete(self) -> ExternalIssuer:
        # Caught at start-up rather than at the first person's click.
        if self.client_id is None:
            return self
        if not self.name:
            raise ValueError(f"{self.issuer}: a provider with a client_id needs a name")
        if "openid" not in self.scopes:
            raise ValueError(f"{self.issuer}: the scopes must include openid")
        if self.client_auth == "private_key_jwt" and self.client_key_path is None:
            raise ValueError(f"{self.issuer}: private_key_jwt needs client_key_path")
        if self.client_auth != "private_key_jwt" and self.client_secret is None:
            raise ValueError(f"{self.issuer}: {self.client_auth} needs client_secret")
        return self

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        # A shared-secret (HS*) or unsigned (none) algorithm would let anyone holding the
        # public JWKS mint tokens: refuse them at configuration time (RFC 8725 section 3.1).
        refused = [alg for alg in value if alg.lower() == "none" or alg.upper().startswith("HS")]
        if refused or not value:
            raise ValueError(f"external issuers need asymmetric algorithms, not {refused}")
        return value


class Settings(BaseSettings):
    """Effective settings; every field can be set as ``CARNET_<FIELD>``.

    Built explicitly (``Settings()``) by each way in — the CLI callback, ``create_app`` —
    never at import time, so tests can build their own.
    """

    model_config = SettingsConfigDict(env_prefix="CARNET_", extra="ignore")

    var_dir: Path = Field(
        default=Path("var"),
        description="Where the embedded database, the document store and keys live by default.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite at <var_dir>/carnet.db. "
        "postgresql:// URLs use the psycopg 3 driver.",
    )
    database_pool_size: int = Field(
        default=20,
        ge=1,
        le=500,
        description="PostgreSQL connections each worker keeps open (its requests run in up to 40 "
        "threads; a connection opened and closed per request costs the database milliseconds).",
    )
    audit_group_commit: bool = Field(
        default=False,
        description="On PostgreSQL, write the consultation audit events of many requests in one "
        "transaction, by a writer thread per worker (each request still waits until its event "
        "is committed). Off by default: with PostgreSQL on the same 2-core machine it was 20 % "
        "slower than recording in the request's transaction (bench/RESULTS.md); measure before "
        "turning it on. SQLite always records in the request's transaction.",
    )
    store_url: str = Field(
        default="", description="Document store; empty means file://<var_dir>/store."
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 of the 32-byte key that wraps each document's data key. "
        "When unset, it is read from master_key_file.",
    )
    master_key_file: Path | None = Field(
        default=None,
        description="File holding the master key; empty means <var_dir>/master.key, "
        "created on first use with mode 0600.",
    )
    max_document_bytes: int = Field(
        default=50 * _MIB, gt=0, description="Largest document accepted."
    )
    host: str = Field(default="127.0.0.1")
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)

    # --- Serving under load (issue 15): worker restarts, and the limits checked before a
    # request is read (carnet.web.limits).
    worker_healthcheck_seconds: int = Field(
        default=30,
        ge=1,
        le=600,
        description="Seconds a worker may take to answer the supervisor's health check before it "
        "is killed and replaced (uvicorn's own default, 5, kills workers still starting on a busy "
        "machine, and each replacement adds to the load).",
    )
    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest request body outside uploads, FHIR publications and OAuth: portal "
        "forms, FHIR searches and Consents.",
    )
    max_auth_body_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Largest request body on the OAuth endpoints (token, revocation, authorize "
        "and its sign-in forms, userinfo).",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Largest request line and headers together; larger is refused with 431.",
    )
    max_header_count: int = Field(
        default=100, ge=10, description="Most header fields in a request; more is refused with 431."
    )
    # --- The MLLP listener (issue 17): HL7 v2 from laboratories (carnet.mllp).
    mllp_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of the MLLP listener for laboratories' HL7 v2 messages; when set, "
        "`carnet serve` starts it beside the HTTP workers (`carnet mllp serve` runs it alone).",
    )
    mllp_host: str = Field(default="127.0.0.1", description="Interface the MLLP listener binds.")
    mllp_tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate chain of the MLLP listener; with mllp_tls_key, the listener "
        "speaks only TLS.",
    )
    mllp_tls_key: Path | None = Field(default=None, description="PEM private key of mllp_tls_cert.")
    mllp_tls_client_ca: Path | None = Field(
        default=None,
        description="PEM certificates of the authorities whose client certificates the MLLP "
        "listener accepts; when set, every sender must present one (mutual TLS).",
    )
    mllp_max_message_bytes: int = Field(
        default=4 * _MIB,
        ge=1024,
        description="Largest HL7 v2 message accepted over MLLP; a larger frame closes the "
        "connection before the rest is read.",
    )
    mllp_processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description="MLLP listener processes sharing the port (SO_REUSEPORT): one fills a core; "
        "up to the cores left beside the HTTP workers.",
    )
    mllp_idle_seconds: int = Field(
        default=300,
        ge=1,
        description="Seconds an MLLP connection may stay silent before the listener closes it.",
    )
    demo_seed: int = Field(
        default=20261123, description="Seed of the deterministic demo population."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Carnet's public base URL: the token issuer; tokens are for <public_url>/fhir.",
    )
    timezone: str = Field(
        default="Europe/Luxembourg",
        description="The time zone in which the portals show dates and times (IANA name).",
    )
    access_token_seconds: int = Field(
        default=300, ge=30, le=3600, description="Lifetime of access tokens, in seconds."
    )
    revocation_refresh_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="How old each worker's copy of the revoked access tokens may grow before it "
        "is read again: a token revoked through one worker is refused by all within this time "
        "(0: the table is asked on every request).",
    )
    refresh_token_days: int = Field(
        default=30, ge=1, le=365, description="Lifetime of refresh tokens, in days."
    )
    demo_idp: bool = Field(
        default=True,
        description="Serve the demo identity provider (demo accounts, professional cards) and "
        "allow `carnet token`; turn off where a real identity provider signs people in.",
    )
    external_issuers: list[ExternalIssuer] = Field(
        default_factory=list,
        description="JSON list of external identity providers whose tokens Carnet accepts.",
    )
    # --- XDS.b (issue 18): SAML 2.0 assertions (IHE XUA, ITI-40) in the SOAP header.
    xua_trusted_certs: Path | None = Field(
        default=None,
        description="PEM file of the certificates whose SAML assertions the XDS.b endpoints "
        "accept (the national identity providers', and Carnet's own if it issues them); "
        "without it, XDS.b callers authenticate with a Carnet access token only.",
    )
    xua_audience: str | None = Field(
        default=None,
        description="The Audience an accepted SAML assertion must name (default: "
        "<public_url>/xds).",
    )
    smtp_url: SecretStr | None = Field(
        default=None,
        description="Where notices are e-mailed: smtp://host:port or "
        "smtp+starttls://user:password@host:port; empty means e-mail is off (the inbox only).",
    )
    mail_from: str = Field(
        default="Carnet <no-reply@carnet.invalid>",
        description="The From of the e-mails Carnet sends.",
    )
    opening_delay_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="Days between the invitation letter and the automatic opening of a dossier.",
    )
    activation_code_days: int = Field(
        default=60,
        ge=1,
        le=365,
        description="Days an activation code printed on an invitation letter stays valid.",
    )
    retention_years: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Years a closed dossier's documents are kept (out of reach) before the purge.",
    )
    jobs_interval_seconds: int = Field(
        default=300,
        ge=0,
        description="How often each server worker runs the scheduled jobs (opening, digests, "
        "purge); 0 switches the server's schedule off (`carnet jobs run` still works).",
    )
    # The store sweeper (carnet.lifecycle.sweep): unreferenced objects, left by refused or
    # interrupted publications, are removed once older than the grace period.
    store_sweep_grace_seconds: int = Field(
        default=86_400,
        ge=3_600,
        description="Age an unreferenced stored object must reach before the sweeper removes "
        "it; longer than any publication (or bulk load) takes from storing content to "
        "committing its row. At least an hour.",
    )
    store_sweep_interval_seconds: int = Field(
        default=86_400,
        ge=0,
        description="Time between the start of two full sweeps of the document store by the "
        "scheduled jobs; 0 switches the scheduled sweep off (`carnet store sweep` still works).",
    )
    store_sweep_objects_per_run: int = Field(
        default=100_000,
        ge=1_000,
        description="Objects one run of the scheduled jobs examines at most; the next run "
        "resumes the sweep where this one stopped.",
    )

    # --- The audit trail against the database owner (issue 15): signing key, checkpoints,
    # the migration role.
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description="Carnet's Ed25519 audit key (PEM, or base64 of the 32-byte seed): seals every "
        "audit chain head and signs the checkpoints. Keep it out of the database's reach. "
        "When unset, it is read from audit_signing_key_file.",
    )
    audit_signing_key_file: Path | None = Field(
        default=None,
        description="File holding the audit key; empty means <var_dir>/audit-signing.key, "
        "created on first use with mode 0600.",
    )
    audit_retired_public_keys: list[str] = Field(
        default_factory=list,
        description="JSON list of the public keys (PEM, from `carnet audit key`) of audit keys "
        "rotated out: chain heads they sealed are still extended and verified.",
    )
    audit_checkpoints: str = Field(
        default="",
        description="Where the scheduled jobs append signed checkpoints of the audit chain heads "
        "(file:///path/checkpoints.jsonl, an append-only log kept away from the database); "
        "empty means no scheduled checkpoint (`carnet audit checkpoint --to` still works).",
    )
    audit_checkpoint_minutes: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description="Minutes between scheduled checkpoints: the window in which the database "
        "owner can truncate a chain back to an earlier signed head unnoticed.",
    )
    migration_database_url: str = Field(
        default="",
        description="The URL `carnet db upgrade` and `carnet db grant` use: the role that owns the "
        "tables. Empty means database_url. Carnet itself runs as database_url's role, which "
        "`carnet db grant` gives only what it needs.",
    )

    @field_validator(
        "mllp_port", "mllp_tls_cert", "mllp_tls_key", "mllp_tls_client_ca", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # ``CARNET_MLLP_PORT=`` in an environment file switches the listener off, not a failure.
        return None if value == "" else value

    @model_validator(mode="after")
    def _mllp_tls_complete(self) -> Settings:
        # Caught at start-up: a certificate without its key (or client authorities without a
        # certificate) would otherwise mean a listener silently speaking plain TCP.
        if (self.mllp_tls_cert is None) != (self.mllp_tls_key is None):
            raise ValueError("mllp_tls_cert and mllp_tls_key go together")
        if self.mllp_tls_client_ca is not None and self.mllp_tls_cert is None:
            raise ValueError("mllp_tls_client_ca needs mllp_tls_cert and mllp_tls_key")
        return self

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("public_url must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("database_url", "migration_database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        # Operators write the URL their tools print (postgresql://...); Carnet speaks psycopg 3.
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to the embedded SQLite file under ``var_dir``."""
        return self.database_url or f"sqlite:///{(self.var_dir / 'carnet.db').resolve()}"

    @property
    def effective_store_url(self) -> str:
        """The document store URL, defaulting to a directory under ``var_dir``."""
        return self.store_url or (self.var_dir / "store").resolve().as_uri()

    @property
    def effective_master_key_file(self) -> Path:
        """Where the master key is read from when it is not given directly."""
        return self.master_key_file or self.var_dir / "master.key"

    @property
    def effective_audit_signing_key_file(self) -> Path:
        """Where the audit key is read from when it is not given directly."""
        return self.audit_signing_key_file or self.var_dir / "audit-signing.key"

    @property
    def effective_migration_database_url(self) -> str:
        """The owner's URL for migrations and grants, defaulting to the database URL."""
        return self.migration_database_url or self.effective_database_url

    def masked(self) -> dict[str, Any]:
        """The effective settings with every secret masked, for ``carnet config``."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            elif isinstance(value, list):
                value = [
                    item.model_dump() if isinstance(item, BaseModel) else item for item in value
                ]
            shown[name] = value
        shown["database_url"] = _mask_url_password(self.effective_database_url)
        shown["store_url"] = self.effective_store_url
        shown["master_key_file"] = str(self.effective_master_key_file)
        shown["audit_signing_key_file"] = str(self.effective_audit_signing_key_file)
        shown["migration_database_url"] = _mask_url_password(self.effective_migration_database_url)
        shown["var_dir"] = str(self.var_dir)
        return shown


def _mask_url_password(url: str) -> str:
    from sqlalchemy.engine import make_url  # noqa: PLC0415 — only needed when printing

    return make_url(url).render_as_string(hide_password=True)
