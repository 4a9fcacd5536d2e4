"""Envelope encryption: sealing, tamper detection, key wrapping and master-key handling."""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carnet.storage import (
    ContentCorrupted,
    ContentTooLarge,
    InvalidContentKey,
    KeyWrapper,
    MasterKeyWrapper,
    UnknownKey,
    content_key,
    generate_master_key,
    load_master_key,
    open_sealed,
    parse_content_key,
    seal,
    sealed_key_id,
)

MASTER = bytes(range(32))
OTHER_MASTER = bytes(range(100, 132))
AAD = b"3f1c2a9e-0000-4000-8000-000000000001/" + b"ab" * 32
PLAINTEXT = b"".join(
    b"Consultation %03d: HbA1c 7.2%%, allergie penicilline, Mme Lefebvre-Dupont.\n" % i
    for i in range(50)
)

# Layout for key id "k1" (see carnet.storage.crypto): magic 0-3, version 4, key id
# length 5, key id 6-7, wrapped DEK length 8-9, wrapped DEK 10-49 (RFC 3394 adds 8 bytes
# to the 32-byte DEK), nonce 50-61, then ciphertext, then the 16-byte tag.
KEY_ID_REGION = range(5, 8)
NONCE_START = 50
BODY_START = 62


def wrapper(
    key: bytes = MASTER, key_id: str = "k1", previous: dict[str, bytes] | None = None
) -> MasterKeyWrapper:
    return MasterKeyWrapper(key, key_id, previous=previous)


# Sealed once at import: hypothesis re-runs the test body many times.
BLOB = seal(PLAINTEXT, aad=AAD, wrapper=wrapper())


def flipped(blob: bytes, position: int, mask: int = 0x01) -> bytes:
    return blob[:position] + bytes([blob[position] ^ mask]) + blob[position + 1 :]


def test_round_trip() -> None:
    assert open_sealed(BLOB, aad=AAD, wrapper=wrapper()) == PLAINTEXT


def test_layout_matches_the_documented_header() -> None:
    assert BLOB[:4] == b"CRNT"
    assert BLOB[4] == 1
    assert BLOB[5] == 2
    assert BLOB[6:8] == b"k1"
    assert struct.unpack(">H", BLOB[8:10]) == (40,)
    assert len(BLOB) == BODY_START + len(PLAINTEXT) + 16
    assert sealed_key_id(BLOB) == "k1"


def test_fresh_data_key_and_nonce_per_object() -> None:
    again = seal(PLAINTEXT, aad=AAD, wrapper=wrapper())
    assert again[10:NONCE_START] != BLOB[10:NONCE_START]  # wrapped DEK
    assert again[NONCE_START:BODY_START] != BLOB[NONCE_START:BODY_START]  # nonce
    assert again[BODY_START:] != BLOB[BODY_START:]


def test_empty_plaintext_round_trips_at_this_layer() -> None:
    # The store refuses empty documents; the cipher layer itself has no reason to.
    blob = seal(b"", aad=AAD, wrapper=wrapper())
    assert open_sealed(blob, aad=AAD, wrapper=wrapper()) == b""


def test_plaintext_not_visible_in_sealed_blob() -> None:
    assert PLAINTEXT not in BLOB
    windows = {PLAINTEXT[i : i + 16] for i in range(len(PLAINTEXT) - 15)}
    assert not any(BLOB[i : i + 16] in windows for i in range(len(BLOB) - 15))


def test_other_aad_is_rejected() -> None:
    with pytest.raises(ContentCorrupted):
        open_sealed(BLOB, aad=AAD + b"x", wrapper=wrapper())
    with pytest.raises(ContentCorrupted):
        open_sealed(BLOB, aad=b"", wrapper=wrapper())


@pytest.mark.parametrize(
    "position",
    [
        pytest.param(0, id="magic"),
        pytest.param(4, id="version"),
        pytest.param(8, id="wrapped-length"),
        pytest.param(9, id="wrapped-length-low"),
        pytest.param(10, id="wrapped-dek-first"),
        pytest.param(49, id="wrapped-dek-last"),
        pytest.param(NONCE_START, id="nonce-first"),
        pytest.param(BODY_START - 1, id="nonce-last"),
        pytest.param(BODY_START, id="ciphertext-first"),
        pytest.param(BODY_START + 1000, id="ciphertext-middle"),
        pytest.param(-17, id="ciphertext-last"),
        pytest.param(-16, id="tag-first"),
        pytest.param(-1, id="tag-last"),
    ],
)
def test_flipped_byte_is_detected(position: int) -> None:
    with pytest.raises(ContentCorrupted):
        open_sealed(flipped(BLOB, position % len(BLOB)), aad=AAD, wrapper=wrapper())


@settings(database=None, max_examples=300, deadline=None)
@given(position=st.integers(0, len(BLOB) - 1), mask=st.integers(1, 255))
def test_any_altered_byte_is_detected(position: int, mask: int) -> None:
    tampered = flipped(BLOB, position, mask)
    if position in KEY_ID_REGION:
        # An altered key id names a key we do not hold: still refused, but it cannot
        # be told apart from a genuinely unknown key.
        with pytest.raises((ContentCorrupted, UnknownKey)):
            open_sealed(tampered, aad=AAD, wrapper=wrapper())
    else:
        with pytest.raises(ContentCorrupted):
            open_sealed(tampered, aad=AAD, wrapper=wrapper())


@pytest.mark.parametrize("length", [0, 3, 4, 5, 6, 8, 9, 10, 49, 50, 61, 62, 77, -16, -1])
def test_truncation_is_detected(length: int) -> None:
    with pytest.raises(ContentCorrupted):
        open_sealed(BLOB[:length], aad=AAD, wrapper=wrapper())


@settings(database=None, max_examples=100, deadline=None)
@given(length=st.integers(0, len(BLOB) - 1))
def test_any_truncation_is_detected(length: int) -> None:
    with pytest.raises(ContentCorrupted):
        open_sealed(BLOB[:length], aad=AAD, wrapper=wrapper())


def test_appended_bytes_are_detected() -> None:
    with pytest.raises(ContentCorrupted):
        open_sealed(BLOB + b"\x00", aad=AAD, wrapper=wrapper())


def test_bad_magic_says_so() -> None:
    with pytest.raises(ContentCorrupted, match="bad magic"):
        open_sealed(b"%PDF-1.7 " + BLOB, aad=AAD, wrapper=wrapper())


def test_unsupported_version_is_refused() -> None:
    with pytest.raises(ContentCorrupted, match="version 2"):
        open_sealed(BLOB[:4] + b"\x02" + BLOB[5:], aad=AAD, wrapper=wrapper())


def test_unknown_key_id_raises_unknown_key() -> None:
    with pytest.raises(UnknownKey) as excinfo:
        open_sealed(BLOB, aad=AAD, wrapper=wrapper(OTHER_MASTER, "k2"))
    assert excinfo.value.key_id == "k1"
    assert "'k1'" in str(excinfo.value)


def test_same_key_id_with_other_bytes_is_corruption_not_plaintext() -> None:
    with pytest.raises(ContentCorrupted):
        open_sealed(BLOB, aad=AAD, wrapper=wrapper(OTHER_MASTER, "k1"))


def test_rotation_reads_old_writes_new() -> None:
    rotated = wrapper(OTHER_MASTER, "k2", previous={"k1": MASTER})
    assert open_sealed(BLOB, aad=AAD, wrapper=rotated) == PLAINTEXT
    new_blob = seal(PLAINTEXT, aad=AAD, wrapper=rotated)
    assert sealed_key_id(new_blob) == "k2"
    assert open_sealed(new_blob, aad=AAD, wrapper=rotated) == PLAINTEXT
    with pytest.raises(UnknownKey):
        open_sealed(new_blob, aad=AAD, wrapper=wrapper())


def test_master_key_wrapper_satisfies_the_protocol() -> None:
    assert isinstance(wrapper(), KeyWrapper)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_master_key_must_be_32_bytes(size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        MasterKeyWrapper(b"\x01" * size, "k1")
    with pytest.raises(ValueError, match="32 bytes"):
        MasterKeyWrapper(MASTER, "k2", previous={"k1": b"\x01" * size})


@pytest.mark.parametrize("key_id", ["", "has space", "é", "x" * 256, "tab\t"])
def test_key_id_must_be_printable_ascii(key_id: str) -> None:
    with pytest.raises(ValueError, match="key id"):
        MasterKeyWrapper(MASTER, key_id)


def test_key_id_cannot_name_two_keys() -> None:
    with pytest.raises(ValueError, match="single key"):
        MasterKeyWrapper(MASTER, "k1", previous={"k1": OTHER_MASTER})
    MasterKeyWrapper(MASTER, "k1", previous={"k1": MASTER})  # harmless duplicate


def test_repr_shows_key_ids_never_key_bytes() -> None:
    text = repr(wrapper(OTHER_MASTER, "k2", previous={"k1": MASTER}))
    assert text == "MasterKeyWrapper(key_id='k2', previous=['k1'])"


# --- master key configuration --------------------------------------------------------


def test_generated_master_key_loads_back() -> None:
    value = generate_master_key()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}=", value)
    assert len(load_master_key(value)) == 32
    assert generate_master_key() != value


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda k: base64.b64encode(k).decode(), id="standard"),
        pytest.param(lambda k: base64.urlsafe_b64encode(k).decode(), id="urlsafe"),
        pytest.param(lambda k: base64.urlsafe_b64encode(k).decode().rstrip("="), id="unpadded"),
        pytest.param(lambda k: f"  {base64.b64encode(k).decode()}\n", id="whitespace"),
    ],
)
def test_load_master_key_accepts_base64_variants(encode: Callable[[bytes], str]) -> None:
    key = bytes([0xFB, 0xFF, 0xBF]) * 10 + b"\xfe\xff"  # exercises '+/' vs '-_'
    assert load_master_key(encode(key)) == key


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (base64.b64encode(b"\x00" * 16).decode(), "decodes to 16 bytes"),
        (base64.b64encode(b"\x00" * 33).decode(), "decodes to 33 bytes"),
        ("not base64 at all!!", "not valid base64"),
        ("+/" + "-_" * 20 + "AA", "mixes"),
    ],
)
def test_load_master_key_rejects_clearly(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as excinfo:
        load_master_key(value)
    if value.strip():
        assert value.strip() not in str(excinfo.value)


# --- content keys and messages ---------------------------------------------------------

HASH = "0123456789abcdef" * 4


def test_content_key_round_trip() -> None:
    key = content_key("3f1c2a9e-0000-4000-8000-000000000001", HASH)
    assert parse_content_key(key) == ("3f1c2a9e-0000-4000-8000-000000000001", HASH)


@pytest.mark.parametrize(
    "key",
    [
        "",
        HASH,
        f"/{HASH}",
        f"../{HASH}",
        f"../../etc/{HASH}",
        f"a/b/{HASH}",
        f"a.b/{HASH}",
        f"a_b/{HASH}",
        f"a b/{HASH}",
        f"\u0661\u0662/{HASH}",  # Arabic-Indic digits: \d would accept them
        f"patient/{HASH.upper()}",
        f"patient/{HASH[:-1]}",
        f"patient/{HASH}0",
        f"patient/{HASH}\n",
        f"patient\n/{HASH}",
        f"{'p' * 129}/{HASH}",
    ],
)
def test_malformed_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidContentKey):
        parse_content_key(key)


def test_invalid_key_message_is_safe_to_log() -> None:
    message = str(InvalidContentKey("x\n" * 500))
    assert "\n" not in message
    assert len(message) < 300


@pytest.mark.parametrize(
    ("limit", "size", "message"),
    [
        (50_000_000, 52_400_000, "The document is 52.4 MB; the limit is 50 MB."),
        (
            50_000_000,
            50_000_001,
            "The document is 50,000,001 bytes; the limit is 50,000,000 bytes.",
        ),
        (1_000, 1_500, "The document is 1.5 kB; the limit is 1 kB."),
        (10, 11, "The document is 11 bytes; the limit is 10 bytes."),
        (2_000_000_000, 3_200_000_000, "The document is 3.2 GB; the limit is 2 GB."),
    ],
)
def test_too_large_message(limit: int, size: int, message: str) -> None:
    error = ContentTooLarge(limit=limit, size=size)
    assert str(error) == message
    assert (error.limit, error.size) == (limit, size)
