"""Carnet's configuration: one typed object read from ``CARNET_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_MIB = 1024 * 1024


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
    demo_seed: int = Field(
        default=20261123, description="Seed of the deterministic demo population."
    )

    @field_validator("database_url")
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

    def masked(self) -> dict[str, Any]:
        """The effective settings with every secret masked, for ``carnet config``."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            shown[name] = value
        shown["database_url"] = _mask_url_password(self.effective_database_url)
        shown["store_url"] = self.effective_store_url
        shown["master_key_file"] = str(self.effective_master_key_file)
        shown["var_dir"] = str(self.var_dir)
        return shown


def _mask_url_password(url: str) -> str:
    from sqlalchemy.engine import make_url  # noqa: PLC0415 — only needed when printing

    return make_url(url).render_as_string(hide_password=True)
