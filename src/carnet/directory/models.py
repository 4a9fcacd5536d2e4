"""The directory: health professionals and the organisations they act for."""

from __future__ import annotations

import datetime as dt
import enum
import re
import unicodedata
import uuid

from sqlalchemy import Boolean, ForeignKey, Index, String, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from carnet.db import Base, UTCDateTime, new_id
from carnet.enums import checked_enum


class Profession(enum.StrEnum):
    """Regulated professions that may consult or feed a dossier."""

    GENERAL_PRACTITIONER = "general-practitioner"
    SPECIALIST = "specialist"
    DENTIST = "dentist"
    PHARMACIST = "pharmacist"
    NURSE = "nurse"
    MIDWIFE = "midwife"
    PHYSIOTHERAPIST = "physiotherapist"
    EMERGENCY_PHYSICIAN = "emergency-physician"
    BIOLOGIST = "biologist"
    # Staff of a practice or establishment (France's CPE card, a medical secretary): not a
    # regulated profession and never acting on their own, only for a professional who allowed
    # them (``auth.models.StaffDelegation``), with that professional's access.
    STAFF = "staff"


class OrganisationKind(enum.StrEnum):
    """What an organisation is; decides what it may feed and see."""

    LABORATORY = "laboratory"
    HOSPITAL = "hospital"
    PHARMACY = "pharmacy"
    PRACTICE = "practice"
    HOME_CARE = "home-care"
    INSURER = "insurer"
    AGENCY = "agency"


class Organisation(Base):
    """A laboratory, hospital, pharmacy, practice, home-care provider, insurer or the agency."""

    __tablename__ = "organisations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    identifier_system: Mapped[str] = mapped_column(String(100))
    identifier_value: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[OrganisationKind] = mapped_column(
        checked_enum(OrganisationKind, "organisation_kind")
    )
    city: Mapped[str | None] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(None, "identifier_system", "identifier_value", unique=True),
        Index(None, "kind", "name"),
    )


class Professional(Base):
    """A health professional, identified nationally (RPPS in France, code médecin in Luxembourg)."""

    __tablename__ = "professionals"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    identifier_system: Mapped[str] = mapped_column(String(100))
    identifier_value: Mapped[str] = mapped_column(String(64))
    family: Mapped[str] = mapped_column(String(200))
    given: Mapped[str] = mapped_column(String(200))
    profession: Mapped[Profession] = mapped_column(checked_enum(Profession, "profession"))
    specialty: Mapped[str | None] = mapped_column(String(64))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The names as searched: folded (no accents, no case) and word-separated, kept in step by
    # the events below, so "goncalves" finds Gonçalves and "ben meyer" finds Benoît Meyer.
    search_name: Mapped[str] = mapped_column(String(420), default="", server_default="")

    organisation: Mapped[Organisation | None] = relationship(lazy="joined")

    __table_args__ = (
        Index(None, "identifier_system", "identifier_value", unique=True),
        Index(None, "family", "given"),
        Index(None, "organisation_id"),
    )


def folded(text: str) -> str:
    """``text`` as searched: without accents or case, its words separated by single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", plain).split())


def searchable_name(given: str, family: str) -> str:
    """The stored search form of a name: each word preceded by a space, so that a word's start
    is `` word`` whatever the order of the words searched."""
    return f" {folded(given)} {folded(family)} "


@event.listens_for(Professional, "before_insert")
@event.listens_for(Professional, "before_update")
def _keep_search_name(_mapper: object, _connection: object, professional: Professional) -> None:
    professional.search_name = searchable_name(professional.given, professional.family)
