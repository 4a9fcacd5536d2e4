"""The patient portal: naming someone to act for you, and forms that keep what was typed."""

from __future__ import annotations

import datetime as dt
import html

from sqlalchemy.orm import Session

from carnet.clock import FrozenClock
from carnet.directory.models import Profession
from carnet.storage import MasterKeyWrapper
from factories.auth import PatientLogin, Served, make_patient_login
from factories.directory import make_organisation, make_professional
from factories.portal import csrf_of, sign_in_patient

ACCESS = "/portal/patient/access"
NAME = f"{ACCESS}/representatives"


def _signed_in(
    web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> PatientLogin:
    login = make_patient_login(session, clock, wrapper)
    sign_in_patient(web.client, login, clock)
    return login


def _post(web: Served, path: str, page: str, **fields: str) -> str:
    answer = web.client.post(path, data={"csrf": csrf_of(page), **fields})
    assert answer.status_code == 200, answer.text
    return html.unescape(answer.text)


class TestNamingSomeone:
    def test_the_patient_names_a_person_who_then_acts_for_them_until_ended(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        daughter = make_patient_login(session, clock, wrapper)
        login = _signed_in(web, session, clock, wrapper)
        page = web.client.get(ACCESS).text
        assert "Nobody acts for you." in page
        born = daughter.patient.birth_date.isoformat()

        wrong = _post(
            web, NAME, page, identifier=daughter.identifier, birth_date="1990-01-01", ends=""
        )
        assert "No insured person has this identifier and birth date." in wrong
        # What was typed is back in the form, and nothing was recorded.
        assert f'value="{daughter.identifier}"' in wrong
        assert 'value="1990-01-01"' in wrong
        assert "Nobody acts for you." in wrong

        done = _post(web, NAME, wrong, identifier=daughter.identifier, birth_date=born, ends="")
        name = f"{daughter.patient.given} {daughter.patient.family}"
        assert "This person may now act for you." in done
        assert name in done
        assert "Named by you" in done

        # The named person signs in and may act for the patient.
        sign_in_patient(web.client, daughter, clock)
        dossier = web.client.get("/portal/patient/dossier").text
        patient_name = f"{login.patient.given} {login.patient.family}"
        assert f"Act for {patient_name}" in dossier
        web.client.post(
            "/portal/patient/dossier/acting-for",
            data={"csrf": csrf_of(dossier), "patient": str(login.patient.id)},
        )
        acting = html.unescape(web.client.get(ACCESS).text)
        assert "You are acting for" in acting
        # A representative sees who acts, but neither names nor ends.
        assert name in acting
        assert "Name someone to act for you" not in acting
        assert "acting for me" not in acting

        clock.advance(dt.timedelta(seconds=31))  # a fresh one-time code: a used one is refused
        sign_in_patient(web.client, login, clock)
        page = html.unescape(web.client.get(ACCESS).text)
        action = page.split(f'action="{NAME}/')[1].split('"')[0]
        ended = _post(web, f"{NAME}/{action}", page)
        assert "This person no longer acts for you." in ended
        assert "Nobody acts for you." in ended

    def test_messages_are_in_the_patients_language(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        _signed_in(web, session, clock, wrapper)
        web.client.cookies.set("carnet_lang", "fr")
        page = web.client.get(ACCESS).text
        refused = _post(
            web, NAME, page, identifier="1975021112345", birth_date="1975-02-11", ends=""
        )
        assert "No insured person has this identifier" not in refused
        assert "Nommer quelqu" in refused


class TestFormsKeepWhatWasTyped:
    def test_a_refused_grant_keeps_its_level_and_end_date(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        _signed_in(web, session, clock, wrapper)
        organisation = make_organisation(session, clock, name="Cabinet Wagner")
        doctor = make_professional(
            session,
            clock,
            organisation_id=organisation.id,
            family="Wagner",
            profession=Profession.GENERAL_PRACTITIONER,
        )
        found = web.client.get(ACCESS, params={"q": "wagner"}).text
        past = (clock.now() - dt.timedelta(days=3)).date().isoformat()
        refused = _post(
            web,
            f"{ACCESS}/grants",
            found,
            professional=str(doctor.id),
            level="extended",
            ends=past,
            q="wagner",
        )
        assert "The end date is already past." in refused
        form = refused.split(f'value="{doctor.id}"')[1].split("</form>")[0]
        assert f'value="{past}"' in form
        assert '<option value="extended" selected>' in form
        # Shown once: the next visit shows what is in force again.
        again = web.client.get(ACCESS, params={"q": "wagner"}).text
        assert f'value="{past}"' not in again
