"""Errors of the CDA domain: why a clinical document is not taken, in a publisher's words."""

from __future__ import annotations

from carnet.errors import InvalidInput


class CdaRefused(InvalidInput):
    """A CDA R2 document Carnet does not take; nothing was stored.

    ``reason`` names the rule that refused it: ``not-xml`` (not well-formed), ``dtd`` (a DOCTYPE,
    never read), ``too-large``, ``namespace`` (a ``ClinicalDocument`` outside urn:hl7-org:v3),
    ``structure`` (the CDA R2 header or body breaks POCD_MT000040), ``body`` (a nonXMLBody that
    only references its content, or whose embedded content cannot be read), ``patient`` (the
    recordTarget is not the dossier's patient) or ``disagreement`` (the metadata sent with the
    document says otherwise than its header). ``field`` names the metadata at fault, with the
    documents domain's names (``type``, ``confidentiality``, ``created_at``, ``language``,
    ``subject``), or ``content`` for the document itself.
    """

    def __init__(self, message: str, *, reason: str, field: str = "content") -> None:
        super().__init__(message, field=field)
        self.reason = reason
