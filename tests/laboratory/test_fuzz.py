"""Hypothesis against the parser and the ACK: whatever the bytes, a refusal or a reading.

No exception but ``MessageRefused`` leaves reading (``read``, ``check_header``,
``read_results``), and every refusal can be answered with an ACK. The MLLP handler itself is
fuzzed on a real database below: it answers every input with an ACK and never raises.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from carnet.clock import FrozenClock
from carnet.db import session_factory
from carnet.laboratory import acknowledgement
from carnet.laboratory.errors import MessageRefused
from carnet.laboratory.intake import ACCEPTED
from carnet.laboratory.message import check_header, read, salvage_header, split_batch
from carnet.laboratory.oru import read_results
from carnet.mllp.handling import Peer, handle
from carnet.platform import Platform
from carnet.settings import Settings
from carnet.storage import FilesystemDocumentStore
from laboratory.sending import lead_report

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
VALID = lead_report("1980051700112")
_DELIMITERS = "|^~\\&\r\n#"


def _read_everything(raw: bytes | str) -> None:
    try:
        message = read(raw)
        check_header(message, ACCEPTED)
        read_results(message)
    except MessageRefused as refusal:
        ack = acknowledgement.refused(salvage_header(raw), refusal, now=NOW)
        assert b"\rMSA|A" in ack
        assert b"\rERR|" in ack


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """The valid message with a few stretches replaced by delimiters and odd text."""
    text = VALID
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 12)))
        piece = draw(st.text(alphabet=st.sampled_from(_DELIMITERS) | st.characters(), max_size=8))
        text = text[:start] + piece + text[end:]
    return text


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_are_read_or_refused(raw: bytes) -> None:
    _read_everything(raw)
    _read_everything(b"MSH|^~\\&|" + raw)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_a_mutated_message_is_read_or_refused(text: str) -> None:
    _read_everything(text)
    for part in split_batch(text):
        _read_everything(part)


@pytest.fixture
def platform(committing_engine: Engine, store: FilesystemDocumentStore, tmp_path: Path) -> Platform:
    return Platform(
        settings=Settings(var_dir=tmp_path),
        engine=committing_engine,
        sessions=session_factory(committing_engine),
        store=store,
        clock=FrozenClock(NOW),
    )


def test_the_handler_answers_every_input_with_an_ack(platform: Platform) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(mutated(), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
    def answers(text: str) -> None:
        ack = handle(platform, text.encode("utf-8", "surrogatepass"), Peer(address="127.0.0.1"))
        assert ack.startswith(b"MSH|^~\\&|CARNET|CARNET|")
        assert b"\rMSA|A" in ack
        # 207 is a defect (or the database down): never the answer to what a sender wrote.
        assert b"|207^" not in ack

    answers()
