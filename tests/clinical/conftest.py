"""Clinical data tests: a patient, a clinic publishing FHIR documents for them, their doctor."""

from __future__ import annotations

from clinical.sources import clinic

__all__ = ["clinic"]
