"""FilesystemDocumentStore on a real filesystem (tmp_path).

The only fakes are the crash simulations, which replace os.replace / os.fsync at the
critical moment — in a child process that dies with os._exit, so that no cleanup
handler runs, exactly as in a power loss or a SIGKILL.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import carnet
from carnet.storage import (
    ContentCorrupted,
    ContentNotFound,
    ContentTooLarge,
    DocumentStore,
    EmptyContent,
    FilesystemDocumentStore,
    InvalidContentKey,
    MasterKeyWrapper,
    StoredContent,
    StoreUnavailable,
    UnknownKey,
    open_store,
    sealed_key_id,
)

MASTER = bytes(range(32))
OTHER_MASTER = bytes(range(100, 132))
ALICE = "3f1c2a9e-0000-4000-8000-000000000001"
BOB = "7d0e5b21-0000-4000-8000-000000000002"
MAX_BYTES = 64 * 1024
PLAINTEXT = b"".join(
    b"Compte rendu %03d: HbA1c 7.2%%, allergie penicilline, Mme Lefebvre-Dupont.\n" % i
    for i in range(50)
)


def make_store(
    root: Path,
    key: bytes = MASTER,
    key_id: str = "k1",
    *,
    previous: dict[str, bytes] | None = None,
    max_bytes: int = MAX_BYTES,
) -> FilesystemDocumentStore:
    wrapper = MasterKeyWrapper(key, key_id, previous=previous)
    return FilesystemDocumentStore(root, wrapper, max_bytes=max_bytes)


@pytest.fixture
def store(tmp_path: Path) -> FilesystemDocumentStore:
    return make_store(tmp_path)


def object_path(root: Path, key: str) -> Path:
    patient_id, digest = key.split("/")
    return root / patient_id / digest[:2] / digest


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def temporaries(root: Path) -> list[Path]:
    return [p for p in all_files(root) if p.name.startswith(".tmp-")]


def flip(path: Path, position: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[position % len(raw)] ^= 0x01
    path.write_bytes(bytes(raw))


# --- round trip and layout -------------------------------------------------------------


def test_round_trip(store: FilesystemDocumentStore, tmp_path: Path) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    digest = hashlib.sha256(PLAINTEXT).hexdigest()
    assert stored == StoredContent(key=f"{ALICE}/{digest}", sha256=digest, size=len(PLAINTEXT))
    assert store.exists(stored.key)
    assert store.get(stored.key) == PLAINTEXT
    assert all_files(tmp_path) == [tmp_path / ALICE / digest[:2] / digest]


def test_store_satisfies_the_protocol(store: FilesystemDocumentStore) -> None:
    assert isinstance(store, DocumentStore)


def test_plaintext_never_reaches_the_disk(store: FilesystemDocumentStore, tmp_path: Path) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    raw = object_path(tmp_path, stored.key).read_bytes()
    assert PLAINTEXT not in raw
    windows = {PLAINTEXT[i : i + 16] for i in range(len(PLAINTEXT) - 15)}
    assert not any(raw[i : i + 16] in windows for i in range(len(raw) - 15))


def test_same_content_for_two_patients_is_stored_twice_unlinkably(
    store: FilesystemDocumentStore, tmp_path: Path
) -> None:
    a = store.put(ALICE, PLAINTEXT)
    b = store.put(BOB, PLAINTEXT)
    assert a.key != b.key
    assert a.sha256 == b.sha256
    raw_a = object_path(tmp_path, a.key).read_bytes()
    raw_b = object_path(tmp_path, b.key).read_bytes()
    assert raw_a[-len(PLAINTEXT) :] != raw_b[-len(PLAINTEXT) :]  # distinct data keys
    assert store.get(a.key) == store.get(b.key) == PLAINTEXT


def test_permissions_are_owner_only(store: FilesystemDocumentStore, tmp_path: Path) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    path = object_path(tmp_path, stored.key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


def test_put_is_idempotent(store: FilesystemDocumentStore, tmp_path: Path) -> None:
    first = store.put(ALICE, PLAINTEXT)
    path = object_path(tmp_path, first.key)
    before = path.read_bytes(), path.stat().st_ino
    assert store.put(ALICE, PLAINTEXT) == first
    assert (path.read_bytes(), path.stat().st_ino) == before  # not rewritten
    assert all_files(tmp_path) == [path]


def test_concurrent_puts_of_same_content(store: FilesystemDocumentStore, tmp_path: Path) -> None:
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
    assert temporaries(tmp_path) == []


# --- tampering ---------------------------------------------------------------------------


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
def test_flipped_byte_on_disk_is_detected(
    store: FilesystemDocumentStore, tmp_path: Path, position: int
) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    flip(object_path(tmp_path, stored.key), position)
    with pytest.raises(ContentCorrupted) as excinfo:
        store.get(stored.key)
    assert excinfo.value.key == stored.key
    assert b"penicilline" not in str(excinfo.value).encode()


@pytest.fixture(scope="module")
def stored_once(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[FilesystemDocumentStore, str, Path]:
    root = tmp_path_factory.mktemp("tamper")
    store = make_store(root)
    key = store.put(ALICE, PLAINTEXT).key
    return store, key, object_path(root, key)


@settings(
    database=None,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_flipped_byte_on_disk_is_detected(
    stored_once: tuple[FilesystemDocumentStore, str, Path], data: st.DataObject
) -> None:
    store, key, path = stored_once
    original = path.read_bytes()
    position = data.draw(st.integers(0, len(original) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="mask")
    tampered = bytearray(original)
    tampered[position] ^= mask
    path.write_bytes(bytes(tampered))
    try:
        # Bytes 5-7 hold the key id's length and the key id "k1": altered, they name a
        # key we do not hold, which is refused as UnknownKey.
        expected = (ContentCorrupted, UnknownKey) if 5 <= position <= 7 else ContentCorrupted
        with pytest.raises(expected):
            store.get(key)
    finally:
        path.write_bytes(original)
    assert store.get(key) == PLAINTEXT


@pytest.mark.parametrize("keep", [0, 1, 4, 30, 61, 62, 100, -1, -16, -17])
def test_truncation_is_detected(store: FilesystemDocumentStore, tmp_path: Path, keep: int) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    path = object_path(tmp_path, stored.key)
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(ContentCorrupted):
        store.get(stored.key)


def test_file_moved_to_another_patient_is_detected(
    store: FilesystemDocumentStore, tmp_path: Path
) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    source = object_path(tmp_path, stored.key)
    bob_key = f"{BOB}/{stored.sha256}"
    target = object_path(tmp_path, bob_key)
    target.parent.mkdir(parents=True)
    source.rename(target)
    assert store.exists(bob_key)
    with pytest.raises(ContentCorrupted):
        store.get(bob_key)


def test_file_swapped_with_another_object_is_detected(
    store: FilesystemDocumentStore, tmp_path: Path
) -> None:
    a = store.put(ALICE, PLAINTEXT)
    b = store.put(ALICE, PLAINTEXT + b"addendum")
    object_path(tmp_path, b.key).write_bytes(object_path(tmp_path, a.key).read_bytes())
    with pytest.raises(ContentCorrupted):
        store.get(b.key)


def test_garbage_file_is_corruption(store: FilesystemDocumentStore, tmp_path: Path) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    object_path(tmp_path, stored.key).write_bytes(b"%PDF-1.7 not ours")
    with pytest.raises(ContentCorrupted, match="bad magic"):
        store.get(stored.key)


# --- master keys -------------------------------------------------------------------------


def test_wrong_master_key_is_refused(tmp_path: Path) -> None:
    key = make_store(tmp_path).put(ALICE, PLAINTEXT).key
    with pytest.raises(UnknownKey):
        make_store(tmp_path, OTHER_MASTER, "k2").get(key)
    with pytest.raises(ContentCorrupted):
        make_store(tmp_path, OTHER_MASTER, "k1").get(key)


def test_rotation(tmp_path: Path) -> None:
    old_key = make_store(tmp_path).put(ALICE, PLAINTEXT).key
    rotated = make_store(tmp_path, OTHER_MASTER, "k2", previous={"k1": MASTER})
    assert rotated.get(old_key) == PLAINTEXT
    new_key = rotated.put(BOB, PLAINTEXT).key
    assert sealed_key_id(object_path(tmp_path, new_key).read_bytes()) == "k2"
    assert sealed_key_id(object_path(tmp_path, old_key).read_bytes()) == "k1"
    assert rotated.get(new_key) == PLAINTEXT
    with pytest.raises(UnknownKey):  # the retired key alone cannot read new objects
        make_store(tmp_path).get(new_key)


# --- limits and validation ---------------------------------------------------------------


def test_exactly_max_bytes_is_accepted(tmp_path: Path) -> None:
    store = make_store(tmp_path, max_bytes=1000)
    stored = store.put(ALICE, b"x" * 1000)
    assert stored.size == 1000
    assert store.get(stored.key) == b"x" * 1000


def test_one_byte_over_is_rejected_and_nothing_written(tmp_path: Path) -> None:
    store = make_store(tmp_path, max_bytes=1000)
    with pytest.raises(ContentTooLarge) as excinfo:
        store.put(ALICE, b"x" * 1001)
    assert (excinfo.value.limit, excinfo.value.size) == (1000, 1001)
    assert str(excinfo.value) == "The document is 1,001 bytes; the limit is 1,000 bytes."
    assert list(tmp_path.iterdir()) == []


def test_empty_content_is_rejected(store: FilesystemDocumentStore, tmp_path: Path) -> None:
    with pytest.raises(EmptyContent):
        store.put(ALICE, b"")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("patient_id", ["", "..", ".", "a/b", "a\\b", "a.b", "é", "a\n", "x" * 129])
def test_unsafe_patient_id_is_rejected(
    store: FilesystemDocumentStore, tmp_path: Path, patient_id: str
) -> None:
    with pytest.raises(InvalidContentKey):
        store.put(patient_id, PLAINTEXT)
    with pytest.raises(InvalidContentKey):
        store.delete_patient(patient_id)
    assert list(tmp_path.iterdir()) == []


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
def test_malformed_key_is_rejected_everywhere(store: FilesystemDocumentStore, key: str) -> None:
    for operation in (store.get, store.exists, store.delete):
        with pytest.raises(InvalidContentKey):
            operation(key)


def test_max_bytes_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        make_store(tmp_path, max_bytes=0)


# --- missing content, deletion -----------------------------------------------------------


def test_get_missing_raises_not_found(store: FilesystemDocumentStore) -> None:
    key = f"{ALICE}/{'0' * 64}"
    assert not store.exists(key)
    with pytest.raises(ContentNotFound) as excinfo:
        store.get(key)
    assert excinfo.value.key == key


def test_delete_is_idempotent(store: FilesystemDocumentStore) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    store.delete(stored.key)
    assert not store.exists(stored.key)
    with pytest.raises(ContentNotFound):
        store.get(stored.key)
    store.delete(stored.key)
    store.delete(f"{BOB}/{'0' * 64}")  # never existed, nor did its directories


def test_delete_patient(store: FilesystemDocumentStore, tmp_path: Path) -> None:
    alice_keys = [store.put(ALICE, PLAINTEXT + bytes([i])).key for i in range(3)]
    bob_key = store.put(BOB, PLAINTEXT).key
    leftover = object_path(tmp_path, alice_keys[0]).parent / ".tmp-crashed"
    leftover.write_bytes(b"partial")
    assert store.delete_patient(ALICE) == 3  # the temporary is removed, not counted
    assert not (tmp_path / ALICE).exists()
    assert not any(store.exists(key) for key in alice_keys)
    assert store.get(bob_key) == PLAINTEXT
    assert store.delete_patient(ALICE) == 0


# --- crash safety ------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import os, stat, sys
    from pathlib import Path
    from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper

    root, master_hex, mode = sys.argv[1:4]
    store = FilesystemDocumentStore(
        Path(root), MasterKeyWrapper(bytes.fromhex(master_hex), "k1"), max_bytes=1 << 20
    )
    if mode == "die-before-replace":
        os.replace = lambda *args, **kwargs: os._exit(70)
    elif mode == "die-after-replace":
        real_fsync = os.fsync
        def fsync(fd):
            if stat.S_ISDIR(os.fstat(fd).st_mode):  # the first directory fsync
                os._exit(71)
            real_fsync(fd)
        os.fsync = fsync
    store.put(sys.argv[4], sys.stdin.buffer.read())
    os._exit(0)
    """
)


def run_child(root: Path, mode: str) -> int:
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(carnet.__file__).resolve().parents[1]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), MASTER.hex(), mode, ALICE],
        input=PLAINTEXT,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert completed.stderr == b"", completed.stderr.decode()
    return completed.returncode


def test_child_harness_writes_normally(tmp_path: Path) -> None:
    assert run_child(tmp_path, "normal") == 0
    digest = hashlib.sha256(PLAINTEXT).hexdigest()
    assert make_store(tmp_path).get(f"{ALICE}/{digest}") == PLAINTEXT


def test_crash_before_replace_leaves_no_object(tmp_path: Path) -> None:
    assert run_child(tmp_path, "die-before-replace") == 70
    store = make_store(tmp_path)
    key = f"{ALICE}/{hashlib.sha256(PLAINTEXT).hexdigest()}"
    assert not store.exists(key)
    with pytest.raises(ContentNotFound):
        store.get(key)
    [leftover] = temporaries(tmp_path)
    assert stat.S_IMODE(leftover.stat().st_mode) == 0o600
    assert PLAINTEXT not in leftover.read_bytes()  # even leftovers are sealed
    assert store.sweep_temporaries(timedelta(hours=1)) == 0  # too young: could be live
    assert store.sweep_temporaries(timedelta(0)) == 1
    assert temporaries(tmp_path) == []
    assert store.put(ALICE, PLAINTEXT).key == key  # a retry succeeds
    assert store.get(key) == PLAINTEXT


def test_crash_after_replace_leaves_the_whole_object(tmp_path: Path) -> None:
    assert run_child(tmp_path, "die-after-replace") == 71
    store = make_store(tmp_path)
    key = f"{ALICE}/{hashlib.sha256(PLAINTEXT).hexdigest()}"
    assert store.get(key) == PLAINTEXT
    assert temporaries(tmp_path) == []


def test_failed_replace_cleans_up(
    store: FilesystemDocumentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_replace(src: object, dst: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(StoreUnavailable, match="Input/output error"):
        store.put(ALICE, PLAINTEXT)
    monkeypatch.undo()
    key = f"{ALICE}/{hashlib.sha256(PLAINTEXT).hexdigest()}"
    assert not store.exists(key)
    with pytest.raises(ContentNotFound):
        store.get(key)
    assert temporaries(tmp_path) == []


def test_failed_file_fsync_never_publishes(
    store: FilesystemDocumentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StoreUnavailable, match="No space left"):
        store.put(ALICE, PLAINTEXT)
    monkeypatch.undo()
    assert all_files(tmp_path) == []


def test_durability_order(
    store: FilesystemDocumentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is fsynced before the rename and its directories after it."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def spy_fsync(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(f"fsync-{kind}")
        real_fsync(fd)

    def spy_replace(src: str, dst: str) -> None:
        assert Path(src).name.startswith(".tmp-")
        assert Path(src).parent == Path(dst).parent
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    store.put(ALICE, PLAINTEXT)
    assert events == ["fsync-file", "replace", "fsync-dir", "fsync-dir", "fsync-dir"]


# --- sweeping and health -----------------------------------------------------------------


def test_sweep_only_removes_old_temporaries(store: FilesystemDocumentStore, tmp_path: Path) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    shard = object_path(tmp_path, stored.key).parent
    old, young = shard / ".tmp-old", shard / ".tmp-young"
    old.write_bytes(b"partial")
    young.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert store.sweep_temporaries(timedelta(hours=1)) == 1
    assert not old.exists()
    assert young.exists()
    assert store.get(stored.key) == PLAINTEXT
    with pytest.raises(ValueError, match="negative"):
        store.sweep_temporaries(timedelta(seconds=-1))


def test_check_passes_on_writable_root(store: FilesystemDocumentStore, tmp_path: Path) -> None:
    store.check()
    assert list(tmp_path.iterdir()) == []


def test_check_creates_a_missing_root(tmp_path: Path) -> None:
    root = tmp_path / "store"
    make_store(root).check()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert list(root.iterdir()) == []


def test_check_fails_when_the_root_parent_is_missing(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="mounted"):
        make_store(tmp_path / "unmounted" / "store").check()
    assert not (tmp_path / "unmounted").exists()


def test_check_fails_when_root_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StoreUnavailable, match="not a directory"):
        make_store(tmp_path / "file").check()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_check_fails_on_read_only_root(tmp_path: Path) -> None:
    root = tmp_path / "ro"
    root.mkdir(mode=0o500)
    try:
        with pytest.raises(StoreUnavailable, match="write"):
            make_store(root).check()
    finally:
        root.chmod(0o700)


def test_put_creates_the_root_but_never_its_parents(tmp_path: Path) -> None:
    key = make_store(tmp_path / "store").put(ALICE, PLAINTEXT).key
    assert make_store(tmp_path / "store").get(key) == PLAINTEXT
    with pytest.raises(StoreUnavailable, match="mounted"):
        make_store(tmp_path / "unmounted" / "store").put(ALICE, PLAINTEXT)
    assert not (tmp_path / "unmounted").exists()


# --- factory -----------------------------------------------------------------------------


def test_open_store_file_url_and_plain_path(tmp_path: Path) -> None:
    wrapper = MasterKeyWrapper(MASTER, "k1")
    by_url = open_store(tmp_path.as_uri(), wrapper, max_bytes=MAX_BYTES)
    by_path = open_store(str(tmp_path), wrapper, max_bytes=MAX_BYTES)
    assert isinstance(by_url, FilesystemDocumentStore)
    assert isinstance(by_path, FilesystemDocumentStore)
    assert by_url.root == by_path.root == tmp_path
    key = by_url.put(ALICE, PLAINTEXT).key
    assert by_path.get(key) == PLAINTEXT


def test_open_store_decodes_percent_escapes(tmp_path: Path) -> None:
    root = tmp_path / "with space"
    store = open_store(root.as_uri(), MasterKeyWrapper(MASTER, "k1"), max_bytes=MAX_BYTES)
    assert isinstance(store, FilesystemDocumentStore)
    assert store.root == root


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://bucket/prefix", "Unsupported store URL scheme 's3': "),
        ("https://example.org/x", "Unsupported store URL scheme 'https'"),
        ("file://relative/path", "three slashes"),
        ("", "empty"),
    ],
)
def test_open_store_rejects(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        open_store(url, MasterKeyWrapper(MASTER, "k1"), max_bytes=MAX_BYTES)
