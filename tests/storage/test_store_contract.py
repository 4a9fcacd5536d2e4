"""The DocumentStore contract, run against every store: filesystem, and S3 over HTTP (moto).

What Carnet relies on whatever the backing storage: content-addressed keys, idempotent
puts, envelope encryption (never plaintext at rest), integrity checked on every read,
the size limit, per-patient purge, and errors that say what happened. Store-specific
behaviour (fsync and atomic rename; S3 outages and URL parsing) is tested beside each store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carnet.storage import (
    ContentCorrupted,
    ContentNotFound,
    ContentTooLarge,
    DocumentStore,
    EmptyContent,
    InvalidContentKey,
    StoredContent,
    UnknownKey,
    sealed_key_id,
)
from carnet.storage.ports import ListedObject
from storage.backends import ALICE, BOB, MASTER, OTHER_MASTER, PLAINTEXT, Backend


def flip(backend: Backend, key: str, position: int) -> None:
    raw = bytearray(backend.read_raw(key))
    raw[position % len(raw)] ^= 0x01
    backend.write_raw(key, bytes(raw))


# --- round trip ----------------------------------------------------------------------------


def test_round_trip(store: DocumentStore, backend: Backend) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    digest = hashlib.sha256(PLAINTEXT).hexdigest()
    assert stored == StoredContent(key=f"{ALICE}/{digest}", sha256=digest, size=len(PLAINTEXT))
    assert store.exists(stored.key)
    assert store.get(stored.key) == PLAINTEXT
    assert backend.keys() == [stored.key]


def test_store_satisfies_the_protocol(store: DocumentStore) -> None:
    assert isinstance(store, DocumentStore)


def test_plaintext_never_reaches_the_storage(store: DocumentStore, backend: Backend) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    raw = backend.read_raw(stored.key)
    assert raw.startswith(b"CRNT")
    assert PLAINTEXT not in raw
    windows = {PLAINTEXT[i : i + 16] for i in range(len(PLAINTEXT) - 15)}
    assert not any(raw[i : i + 16] in windows for i in range(len(raw) - 15))


def test_same_content_for_two_patients_is_stored_twice_unlinkably(
    store: DocumentStore, backend: Backend
) -> None:
    a = store.put(ALICE, PLAINTEXT)
    b = store.put(BOB, PLAINTEXT)
    assert a.key != b.key
    assert a.sha256 == b.sha256
    raw_a, raw_b = backend.read_raw(a.key), backend.read_raw(b.key)
    assert raw_a[-len(PLAINTEXT) :] != raw_b[-len(PLAINTEXT) :]  # distinct data keys
    assert store.get(a.key) == store.get(b.key) == PLAINTEXT


def test_put_is_idempotent(store: DocumentStore, backend: Backend) -> None:
    first = store.put(ALICE, PLAINTEXT)
    before = backend.read_raw(first.key)
    assert store.put(ALICE, PLAINTEXT) == first
    # Sealing draws a fresh data key and nonce: a rewrite would change every byte.
    assert backend.read_raw(first.key) == before
    assert backend.keys() == [first.key]


def test_concurrent_puts_of_same_content(store: DocumentStore, backend: Backend) -> None:
    barrier = threading.Barrier(2)
    results: list[StoredContent] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(store.put(ALICE, PLAINTEXT))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(results) == 2
    assert results[0] == results[1]
    assert store.get(results[0].key) == PLAINTEXT
    assert backend.keys() == [results[0].key]  # no temporaries, no duplicates


# --- tampering -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "position",
    [
        pytest.param(0, id="magic"),
        pytest.param(4, id="version"),
        pytest.param(9, id="wrapped-dek-length"),
        pytest.param(20, id="wrapped-dek"),
        pytest.param(55, id="nonce"),
        pytest.param(62, id="ciphertext-first"),
        pytest.param(2000, id="ciphertext-middle"),
        pytest.param(-16, id="tag-first"),
        pytest.param(-1, id="tag-last"),
    ],
)
def test_flipped_byte_is_detected(store: DocumentStore, backend: Backend, position: int) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    flip(backend, stored.key, position)
    with pytest.raises(ContentCorrupted) as excinfo:
        store.get(stored.key)
    assert excinfo.value.key == stored.key
    assert b"penicilline" not in str(excinfo.value).encode()


def test_any_flipped_byte_is_detected(store: DocumentStore, backend: Backend) -> None:
    key = store.put(ALICE, PLAINTEXT).key
    original = backend.read_raw(key)

    @settings(database=None, max_examples=backend.hypothesis_examples, deadline=None)
    @given(position=st.integers(0, len(original) - 1), mask=st.integers(1, 255))
    def flipped(position: int, mask: int) -> None:
        tampered = bytearray(original)
        tampered[position] ^= mask
        backend.write_raw(key, bytes(tampered))
        # Bytes 5-7 hold the key id's length and the key id "k1": altered, they name a
        # key we do not hold, which is refused as UnknownKey.
        expected = (ContentCorrupted, UnknownKey) if 5 <= position <= 7 else ContentCorrupted
        with pytest.raises(expected):
            store.get(key)

    flipped()
    backend.write_raw(key, original)
    assert store.get(key) == PLAINTEXT


@pytest.mark.parametrize("keep", [0, 1, 4, 30, 61, 62, 100, -1, -16, -17])
def test_truncation_is_detected(store: DocumentStore, backend: Backend, keep: int) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    backend.write_raw(stored.key, backend.read_raw(stored.key)[:keep])
    with pytest.raises(ContentCorrupted):
        store.get(stored.key)


def test_object_moved_to_another_patient_is_detected(
    store: DocumentStore, backend: Backend
) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    bob_key = f"{BOB}/{stored.sha256}"
    backend.write_raw(bob_key, backend.read_raw(stored.key))
    backend.remove_raw(stored.key)
    assert store.exists(bob_key)
    with pytest.raises(ContentCorrupted):
        store.get(bob_key)


def test_object_swapped_with_another_is_detected(store: DocumentStore, backend: Backend) -> None:
    a = store.put(ALICE, PLAINTEXT)
    b = store.put(ALICE, PLAINTEXT + b"addendum")
    backend.write_raw(b.key, backend.read_raw(a.key))
    with pytest.raises(ContentCorrupted):
        store.get(b.key)


def test_garbage_object_is_corruption(store: DocumentStore, backend: Backend) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    backend.write_raw(stored.key, b"%PDF-1.7 not ours")
    with pytest.raises(ContentCorrupted, match="bad magic"):
        store.get(stored.key)


# --- master keys ---------------------------------------------------------------------------


def test_wrong_master_key_is_refused(backend: Backend) -> None:
    key = backend.make_store().put(ALICE, PLAINTEXT).key
    with pytest.raises(UnknownKey):
        backend.make_store(OTHER_MASTER, "k2").get(key)
    with pytest.raises(ContentCorrupted):
        backend.make_store(OTHER_MASTER, "k1").get(key)


def test_rotation(backend: Backend) -> None:
    old_key = backend.make_store().put(ALICE, PLAINTEXT).key
    rotated = backend.make_store(OTHER_MASTER, "k2", previous={"k1": MASTER})
    assert rotated.get(old_key) == PLAINTEXT
    new_key = rotated.put(BOB, PLAINTEXT).key
    assert sealed_key_id(backend.read_raw(new_key)) == "k2"
    assert sealed_key_id(backend.read_raw(old_key)) == "k1"
    assert rotated.get(new_key) == PLAINTEXT
    with pytest.raises(UnknownKey):  # the retired key alone cannot read new objects
        backend.make_store().get(new_key)


# --- limits and validation -----------------------------------------------------------------


def test_exactly_max_bytes_is_accepted(backend: Backend) -> None:
    store = backend.make_store(max_bytes=1000)
    stored = store.put(ALICE, b"x" * 1000)
    assert stored.size == 1000
    assert store.get(stored.key) == b"x" * 1000


def test_one_byte_over_is_rejected_and_nothing_written(backend: Backend) -> None:
    store = backend.make_store(max_bytes=1000)
    with pytest.raises(ContentTooLarge) as excinfo:
        store.put(ALICE, b"x" * 1001)
    assert (excinfo.value.limit, excinfo.value.size) == (1000, 1001)
    assert str(excinfo.value) == "The document is 1,001 bytes; the limit is 1,000 bytes."
    assert backend.entries() == []


def test_empty_content_is_rejected(store: DocumentStore, backend: Backend) -> None:
    with pytest.raises(EmptyContent):
        store.put(ALICE, b"")
    assert backend.entries() == []


@pytest.mark.parametrize("patient_id", ["", "..", ".", "a/b", "a\\b", "a.b", "é", "a\n", "x" * 129])
def test_unsafe_patient_id_is_rejected(
    store: DocumentStore, backend: Backend, patient_id: str
) -> None:
    with pytest.raises(InvalidContentKey):
        store.put(patient_id, PLAINTEXT)
    with pytest.raises(InvalidContentKey):
        store.delete_patient(patient_id)
    assert backend.entries() == []


@pytest.mark.parametrize(
    "key",
    [
        f"../{'a' * 64}",
        f"{ALICE}/{'A' * 64}",
        f"{ALICE}/{'a' * 63}",
        ALICE,
        f"{ALICE}/../{'a' * 64}",
    ],
)
def test_malformed_key_is_rejected_everywhere(store: DocumentStore, key: str) -> None:
    for operation in (store.get, store.exists, store.delete):
        with pytest.raises(InvalidContentKey):
            operation(key)


def test_max_bytes_must_be_positive(backend: Backend) -> None:
    with pytest.raises(ValueError, match="positive"):
        backend.make_store(max_bytes=0)


# --- missing content, deletion -------------------------------------------------------------


def test_get_missing_raises_not_found(store: DocumentStore) -> None:
    key = f"{ALICE}/{'0' * 64}"
    assert not store.exists(key)
    with pytest.raises(ContentNotFound) as excinfo:
        store.get(key)
    assert excinfo.value.key == key


def test_delete_is_idempotent(store: DocumentStore, backend: Backend) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    store.delete(stored.key)
    assert not store.exists(stored.key)
    with pytest.raises(ContentNotFound):
        store.get(stored.key)
    store.delete(stored.key)
    store.delete(f"{BOB}/{'0' * 64}")  # never existed
    assert backend.keys() == []


def test_delete_patient(store: DocumentStore, backend: Backend) -> None:
    alice_keys = [store.put(ALICE, PLAINTEXT + bytes([i])).key for i in range(3)]
    bob_key = store.put(BOB, PLAINTEXT).key
    assert store.delete_patient(ALICE) == 3
    assert not any(store.exists(key) for key in alice_keys)
    assert store.get(bob_key) == PLAINTEXT
    assert backend.keys() == [bob_key]
    assert store.delete_patient(ALICE) == 0


def test_delete_patient_spares_patients_whose_id_extends_it(
    store: DocumentStore, backend: Backend
) -> None:
    # Ids are namespaces, not string prefixes: purging "abc" must not touch "abc-1".
    kept = store.put("abc-1", PLAINTEXT).key
    store.put("abc", PLAINTEXT)
    assert store.delete_patient("abc") == 1
    assert backend.keys() == [kept]


# --- sweeping and health -------------------------------------------------------------------


def test_sweep_leaves_stored_objects_alone(store: DocumentStore, backend: Backend) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    assert store.sweep_temporaries(timedelta(0)) == 0
    assert store.get(stored.key) == PLAINTEXT
    with pytest.raises(ValueError, match="negative"):
        store.sweep_temporaries(timedelta(seconds=-1))
    assert backend.keys() == [stored.key]


def test_check_passes_and_writes_nothing(store: DocumentStore, backend: Backend) -> None:
    store.check()
    assert backend.entries() == []


# --- listing and conditional removal (the store sweeper's needs) ---------------------------

# S3 keeps LastModified to the second: a write must come a second later to be seen as new.
_NEXT_SECOND = 1.1


def test_listing_names_every_object_with_size_and_write_time(
    store: DocumentStore, backend: Backend
) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=60)
    keys = [store.put(ALICE, PLAINTEXT + bytes([i])).key for i in range(3)]
    keys.append(store.put(BOB, PLAINTEXT).key)
    listed = list(store.iter_objects())
    assert [entry.key for entry in listed] == sorted(keys) == backend.keys()
    for entry in listed:
        assert entry.size == len(backend.read_raw(entry.key))  # sealed size, as stored
        assert before <= entry.modified_at <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)


def test_listing_resumes_after_a_key(store: DocumentStore) -> None:
    keys = sorted(store.put(ALICE, PLAINTEXT + bytes([i])).key for i in range(4))
    assert [entry.key for entry in store.iter_objects(start_after=keys[1])] == keys[2:]
    assert list(store.iter_objects(start_after=keys[-1])) == []


def test_listing_an_empty_store_yields_nothing(store: DocumentStore) -> None:
    assert list(store.iter_objects()) == []


def test_put_of_stored_content_refreshes_its_write_time(
    store: DocumentStore, backend: Backend
) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    [first] = store.iter_objects()
    raw = backend.read_raw(stored.key)
    time.sleep(_NEXT_SECOND)
    store.put(ALICE, PLAINTEXT)
    [second] = store.iter_objects()
    assert second.modified_at > first.modified_at
    assert backend.read_raw(stored.key) == raw  # refreshed, not rewritten


def test_remove_unchanged_removes_what_was_listed(store: DocumentStore, backend: Backend) -> None:
    for i in range(3):
        store.put(ALICE, PLAINTEXT + bytes([i]))
    listed = list(store.iter_objects())
    assert store.remove_unchanged(listed) == listed
    assert backend.keys() == []  # no sweep claim left behind
    assert store.remove_unchanged(listed) == []  # a second sweeper finds nothing to do


def test_remove_unchanged_spares_an_object_put_again_since_listed(
    store: DocumentStore, backend: Backend
) -> None:
    # The race the sweeper must lose: an old unreferenced object is listed, then a new
    # publication of the same content re-puts it and will reference it.
    kept = store.put(ALICE, PLAINTEXT)
    gone = store.put(ALICE, PLAINTEXT + b"!")
    listed = list(store.iter_objects())
    time.sleep(_NEXT_SECOND)
    store.put(ALICE, PLAINTEXT)
    assert [entry.key for entry in store.remove_unchanged(listed)] == [gone.key]
    assert store.get(kept.key) == PLAINTEXT
    assert backend.keys() == [kept.key]


def test_put_after_a_removal_writes_the_object_again(store: DocumentStore) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    store.remove_unchanged(list(store.iter_objects()))
    assert not store.exists(stored.key)
    assert store.put(ALICE, PLAINTEXT) == stored
    assert store.get(stored.key) == PLAINTEXT


def test_remove_unchanged_skips_objects_already_gone(
    store: DocumentStore, backend: Backend
) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    listed = list(store.iter_objects())
    backend.remove_raw(stored.key)
    assert store.remove_unchanged(listed) == []
    missing = ListedObject(f"{BOB}/{'0' * 64}", 1, dt.datetime.now(dt.UTC))
    assert store.remove_unchanged([missing]) == []
