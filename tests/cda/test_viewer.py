"""An unstructured CDA document whose nonXMLBody embeds a PDF is shown in the viewers as a PDF
is: its pages drawn as images (issue 17); its original still downloads as the CDA it is."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.clock import FrozenClock
from carnet.documents import publication
from carnet.portal.document_view import render_document
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import professional_actor
from factories.auth import cheap_password_hashing, make_patient_login, serve
from factories.cda import EMBEDDED_PDF, fitted, metadata_of
from factories.directory import make_professional
from factories.portal import sign_in_patient


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_password_hashing(monkeypatch)


def test_the_rendition_is_the_pdf_drawn() -> None:
    rendition = render_document("text/xml", EMBEDDED_PDF.read_bytes(), language="fr")

    assert rendition.kind == "pages"
    assert rendition.page_count >= 1
    assert rendition.pages[0].data_url.startswith("data:image/png;base64,")


def test_the_patient_sees_the_pdf_of_their_cda_document(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> None:
    login = make_patient_login(session, clock, wrapper)
    # The dataset's LOINC 11490-0 is no type of the catalogue: published as a consultation note.
    content = fitted(EMBEDDED_PDF.read_bytes(), matricule=login.identifier, loinc="11488-4")
    author = professional_actor(make_professional(session, clock))
    document = publication.add_document(
        session,
        open_dossier(session, author, login.patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock),
        store,
        metadata=metadata_of(content),
        content=content,
    )

    with serve(session, store, clock, wrapper) as served:
        sign_in_patient(served.client, login, clock)
        viewer = served.client.get(f"/portal/patient/documents/{document.id}")
        original = served.client.get(
            f"/portal/patient/documents/{document.id}/content", params={"download": "1"}
        )

    assert viewer.status_code == 200
    assert '<img src="data:image/png;base64,' in viewer.text
    assert "JVBERi0" not in viewer.text  # the PDF's base64 is drawn, never pasted as text
    assert original.content == content
    assert original.headers["content-disposition"].startswith("attachment;")
