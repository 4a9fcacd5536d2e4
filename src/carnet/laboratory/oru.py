"""ORU^R01 (unsolicited observation result) read into reports: one per OBR group.

HL7 v2.5.1, chapter 7, ORU^R01: PID (the patient), then ORDER_OBSERVATION groups — [ORC] OBR
{NTE} [TQ1…] {OBX {NTE}} {SPM {OBX}} — each of which becomes one laboratory report document
(LOINC 11502-2) and its structured results. Every value is checked here, before anything is
stored, and a refusal names the field (``OBX-5``) as the ERR segment will.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from carnet.errors import InvalidValue
from carnet.laboratory.errors import ErrorCode, MessageRefused
from carnet.laboratory.message import Message, Segment
from carnet.storable import check_text

# An HL7 time without an offset is the sender's local time; Carnet's senders are in
# Luxembourg and its border regions.
LOCAL_TIME = ZoneInfo("Europe/Luxembourg")
_TIME = re.compile(
    r"^(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?"
    r"(?P<second>\d{2})?(?:\.(?P<fraction>\d{1,4}))?(?P<offset>[+-]\d{4})?$"
)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
# HL7 table 0125 (value types) that a result may carry.
_TEXT_TYPES = frozenset({"ST", "TX", "FT", "ID", "IS", "DT", "TM", "TS", "DTM", "DR", "NA"})
_CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF", "CK", "CN"})
_COMPOSITE_TYPES = frozenset(
    {"XCN", "XAD", "XPN", "XON", "XTN", "CX", "CP", "MO", "HD", "EI", "CQ", "AD", "PN", "TN", "SPS"}
)
_KNOWN_TYPES = _TEXT_TYPES | _CODED_TYPES | _COMPOSITE_TYPES | {"NM", "SN", "ED", "RP", "MA"}
# OBX-11: the result withdrawn (X: cannot be obtained; D: deleted; W: posted as wrong).
_WITHDRAWN = frozenset({"X", "D", "W"})


@dataclass(frozen=True)
class Coded:
    """A CE/CWE: code, text and coding system (``LN`` for LOINC)."""

    code: str
    text: str
    system: str

    @property
    def display(self) -> str:
        """What a person reads: the text, else the code."""
        return self.text or self.code


@dataclass(frozen=True)
class PatientIdentifier:
    """One repetition of PID-3 (CX): the value and the names of its assigning authority."""

    value: str
    authorities: tuple[str, ...]
    type_code: str


@dataclass(frozen=True)
class Observation:
    """One OBX: a result as the laboratory wrote it, and as a number where it is one."""

    position: int
    value_type: str
    code: Coded
    sub_id: str
    value: str
    numeric: float | None
    unit: str
    reference_range: str
    abnormal_flags: tuple[str, ...]
    status: str
    observed_at: dt.datetime | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Order:
    """One OBR group: the test ordered, its status and its results: one report."""

    position: int
    placer: str
    filler: str
    service: Coded
    observed_at: dt.datetime | None
    reported_at: dt.datetime | None
    status: str
    observations: tuple[Observation, ...]
    notes: tuple[str, ...]
    specimen: str

    @property
    def key(self) -> str:
        """The order's number at the laboratory (the filler's, else the placer's)."""
        return f"filler:{self.filler}" if self.filler else f"placer:{self.placer}"

    @property
    def cancelled(self) -> bool:
        """OBR-25 X (no results: order cancelled), or every result withdrawn (OBX-11)."""
        return self.status == "X" or bool(
            self.observations and all(o.status in _WITHDRAWN for o in self.observations)
        )

    @property
    def corrected(self) -> bool:
        """OBR-25 C, or a result marked corrected (OBX-11 C)."""
        return self.status == "C" or any(o.status == "C" for o in self.observations)


@dataclass(frozen=True)
class ResultReport:
    """An ORU^R01 read: the patient as the sender identifies them, and the orders."""

    identifiers: tuple[PatientIdentifier, ...]
    patient_name: str
    birth_date: str
    orders: tuple[Order, ...]


def read_results(message: Message) -> ResultReport:
    """The reports of an ORU^R01; ``MessageRefused`` (AE) naming the first field at fault."""
    pid = patient_segment(message)
    identifiers = patient_identifiers(pid)
    orders = _orders(message)
    if not orders:
        raise _refused("The message has no OBR segment.", "OBR", ErrorCode.SEGMENT_SEQUENCE)
    name = " ".join(part for part in (pid.value(5, 2), pid.value(5, 1)) if part)
    return ResultReport(
        identifiers=identifiers,
        patient_name=_bounded(name, "PID-5", 400),
        birth_date=_bounded(pid.value(7, 1)[:8], "PID-7", 8),
        orders=tuple(orders),
    )


def parse_time(text: str, field: str) -> dt.datetime | None:
    """An HL7 TS/DTM as an aware UTC datetime; None if empty; ``MessageRefused`` if malformed."""
    if not text:
        return None
    match = _TIME.match(text.strip())
    try:
        if match is None:
            raise ValueError(text)
        parts = match.groupdict()
        fraction = parts["fraction"] or ""
        local = dt.datetime(  # noqa: DTZ001 — the zone is set below, from the offset or the sender's
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int(fraction.ljust(6, "0")) if fraction else 0,
        )
        offset = parts["offset"]
        if offset:
            sign = 1 if offset[0] == "+" else -1
            delta = dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
            if delta >= dt.timedelta(hours=24):
                raise ValueError(offset)
            zoned = local.replace(tzinfo=dt.timezone(sign * delta))
        else:
            zoned = local.replace(tzinfo=LOCAL_TIME)
        return zoned.astimezone(dt.UTC)
    except (ValueError, OverflowError) as error:
        raise _refused(
            f"{field} is not an HL7 date and time (YYYYMMDDHHMMSS±ZZZZ).",
            field,
            ErrorCode.DATA_TYPE,
        ) from error


def patient_segment(message: Message) -> Segment:
    """The message's one PID; ``MessageRefused`` if it has none, or several (ORU and MDM alike)."""
    patients = [segment for segment in message.segments if segment.name == "PID"]
    if not patients:
        raise _refused("The message has no PID segment.", "PID", ErrorCode.SEGMENT_SEQUENCE)
    if len(patients) > 1:
        raise _refused(
            "One message concerns one patient; send one message per patient.",
            "PID",
            ErrorCode.SEGMENT_SEQUENCE,
        )
    return patients[0]


def patient_identifiers(pid: Segment) -> tuple[PatientIdentifier, ...]:
    """PID-3's identifiers, each with its assigning authority; ``MessageRefused`` if none."""
    found = []
    for repetition in range(1, pid.repetitions(3) + 1):
        value = pid.value(3, 1, 1, repetition)
        if not value:
            continue
        authorities = tuple(
            name
            for name in (
                pid.value(3, 4, 1, repetition),
                pid.value(3, 4, 2, repetition),
            )
            if name
        )
        found.append(
            PatientIdentifier(
                value=_bounded(value, "PID-3", 100, free_text=False),
                authorities=authorities,
                type_code=pid.value(3, 5, 1, repetition),
            )
        )
    if not found:
        raise _refused(
            "PID-3 (patient identifier list) is empty.", "PID-3", ErrorCode.REQUIRED_FIELD_MISSING
        )
    return tuple(found)


@dataclass
class _OpenOrder:
    obr: Segment
    orc: Segment | None
    observations: list[Observation]
    notes: list[str]
    specimen: str = ""


def _orders(message: Message) -> list[Order]:
    orders: list[_OpenOrder] = []
    orc: Segment | None = None
    last_obx: Segment | None = None
    pending: dict[int, list[str]] = {}
    for segment in message.segments:
        if segment.name == "ORC":
            orc = segment
        elif segment.name == "OBR":
            orders.append(_OpenOrder(segment, orc, [], []))
            orc, last_obx = None, None
        elif segment.name == "OBX":
            if not orders:
                raise _refused(
                    "An OBX comes before any OBR: results belong to an order.",
                    "OBX",
                    ErrorCode.SEGMENT_SEQUENCE,
                )
            last_obx = segment
            pending[segment.position] = []
            orders[-1].observations.append(_observation(segment, []))
        elif segment.name == "NTE" and orders:
            note = _note(segment)
            if last_obx is not None:
                pending[last_obx.position].append(note)
            else:
                orders[-1].notes.append(note)
        elif segment.name == "SPM" and orders:
            orders[-1].specimen = _bounded(segment.value(4, 2) or segment.value(4, 1), "SPM-4", 300)
    return [_order(open_order, pending) for open_order in orders]


def _order(open_order: _OpenOrder, notes: dict[int, list[str]]) -> Order:
    obr, orc = open_order.obr, open_order.orc
    filler = obr.value(3, 1) or (orc.value(3, 1) if orc else "")
    placer = obr.value(2, 1) or (orc.value(2, 1) if orc else "")
    if not filler and not placer:
        raise _refused(
            "The order has no number (OBR-3 filler or OBR-2 placer): a later correction could "
            "not name the report.",
            "OBR-3",
            ErrorCode.REQUIRED_FIELD_MISSING,
        )
    service = _coded(obr, 4, "OBR-4")
    if not service.display:
        raise _refused(
            "OBR-4 (universal service identifier) is empty.",
            "OBR-4",
            ErrorCode.REQUIRED_FIELD_MISSING,
        )
    observations = tuple(
        _with_notes(observation, notes.get(observation.position, []))
        for observation in open_order.observations
    )
    return Order(
        position=obr.position,
        placer=_bounded(placer, "OBR-2", 150, free_text=False),
        filler=_bounded(filler, "OBR-3", 150, free_text=False),
        service=service,
        observed_at=parse_time(obr.value(7, 1), "OBR-7"),
        reported_at=parse_time(obr.value(22, 1), "OBR-22"),
        status=obr.value(25, 1).upper()[:2],
        observations=observations,
        notes=tuple(open_order.notes),
        specimen=open_order.specimen,
    )


def _with_notes(observation: Observation, notes: list[str]) -> Observation:
    if not notes:
        return observation
    return Observation(**{**observation.__dict__, "notes": tuple(notes)})


def _observation(obx: Segment, notes: list[str]) -> Observation:
    value_type = obx.value(2, 1).upper()
    code = _coded(obx, 3, "OBX-3")
    if not code.code and not code.text:
        raise _refused(
            "OBX-3 (observation identifier) is empty.", "OBX-3", ErrorCode.REQUIRED_FIELD_MISSING
        )
    has_value = obx.repetitions(5) > 0
    if has_value and not value_type:
        raise _refused(
            "OBX-2 (value type) is empty while OBX-5 holds a value.",
            "OBX-2",
            ErrorCode.REQUIRED_FIELD_MISSING,
        )
    if value_type and value_type not in _KNOWN_TYPES:
        raise _refused(
            f"OBX-2 value type {value_type!r} is not an HL7 data type Carnet reads.",
            "OBX-2",
            ErrorCode.TABLE_VALUE,
        )
    value, numeric = _value(obx, value_type) if has_value else ("", None)
    flags = tuple(
        flag for flag in (obx.value(8, 1, 1, r) for r in range(1, obx.repetitions(8) + 1)) if flag
    )
    # Kept comma-separated in one column of 60 characters.
    _bounded(",".join(flags), "OBX-8", 60, free_text=False)
    return Observation(
        position=obx.position,
        value_type=value_type,
        code=code,
        sub_id=_bounded(obx.value(4, 1), "OBX-4", 20),
        value=_bounded(value, "OBX-5", 20_000),
        numeric=numeric,
        unit=_bounded(obx.value(6, 1) or obx.value(6, 2), "OBX-6", 100),
        reference_range=_bounded(obx.value(7, 1), "OBX-7", 200),
        abnormal_flags=flags,
        status=obx.value(11, 1).upper()[:2],
        observed_at=parse_time(obx.value(14, 1), "OBX-14"),
        notes=tuple(notes),
    )


def _value(obx: Segment, value_type: str) -> tuple[str, float | None]:
    if value_type == "NM":
        return _number(obx)
    if value_type == "SN":
        return _structured_number(obx)
    return _text(obx, value_type), None


def _number(obx: Segment) -> tuple[str, float | None]:
    text = obx.value(5, 1)
    if not text:
        return "", None
    if not _NUMBER.match(text) or not math.isfinite(float(text)):
        raise _refused(
            f"OBX-5 {text[:40]!r} is not a number (OBX-2 is NM).", "OBX-5", ErrorCode.DATA_TYPE
        )
    return text, float(text)


def _structured_number(obx: Segment) -> tuple[str, float | None]:
    # SN: comparator ^ number ^ separator/suffix ^ number ("<^5", "^1^:^128", "^182").
    comparator, first, separator, second = (obx.value(5, i) for i in (1, 2, 3, 4))
    if first and not _NUMBER.match(first):
        raise _refused(
            f"OBX-5.2 {first[:40]!r} is not a number (OBX-2 is SN).", "OBX-5", ErrorCode.DATA_TYPE
        )
    text = f"{comparator}{first}{separator}{second}"
    plain = comparator in ("", "=") and not separator and bool(first)
    return text, float(first) if plain and math.isfinite(float(first)) else None


def _text(obx: Segment, value_type: str) -> str:
    repetitions = range(1, obx.repetitions(5) + 1)
    if value_type in _CODED_TYPES:
        texts = [obx.value(5, 2, 1, r) or obx.value(5, 1, 1, r) for r in repetitions]
        return "; ".join(t for t in texts if t)
    if value_type == "ED":
        kind = "/".join(part for part in (obx.value(5, 2), obx.value(5, 3)) if part)
        return f"[{kind or 'attached'} content]"
    if value_type == "RP":
        return obx.value(5, 1)
    lines = [" ".join(c for c in obx.components(5, r) if c) for r in repetitions]
    return "\n".join(lines).strip()


def _coded(segment: Segment, field: int, name: str) -> Coded:
    return Coded(
        code=_bounded(segment.value(field, 1), name, 100, free_text=False),
        text=_bounded(segment.value(field, 2), name, 300),
        system=_bounded(segment.value(field, 3), name, 100, free_text=False),
    )


def _note(nte: Segment) -> str:
    lines = [nte.value(3, 1, 1, r) for r in range(1, nte.repetitions(3) + 1)]
    return _bounded("\n".join(line for line in lines if line), "NTE-3", 20_000)


def _bounded(value: str, field: str, limit: int, *, free_text: bool = True) -> str:
    try:
        return check_text(value, field=field, limit=limit, free_text=free_text)
    except InvalidValue as error:
        raise _refused(str(error), field, ErrorCode.DATA_TYPE) from error


def _refused(message: str, field: str, code: ErrorCode) -> MessageRefused:
    return MessageRefused(message, field=field, code=code)
