"""FilesystemDocumentStore on a real filesystem (tmp_path): what only a filesystem has.

The store contract (round trip, tampering, keys, limits, purge) runs against every store in
test_store_contract.py; here are the layout, permissions, durability and crash safety.
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
import time
from datetime import timedelta
from pathlib import Path

import pytest

import carnet
from carnet.storage import (
    ContentNotFound,
    FilesystemDocumentStore,
    MasterKeyWrapper,
    StoreUnavailable,
    open_store,
)
from storage.backends import ALICE, MASTER, MAX_BYTES, PLAINTEXT, FilesystemBackend


def make_store(root: Path, *, max_bytes: int = MAX_BYTES) -> FilesystemDocumentStore:
    return FilesystemBackend(root).make_store(max_bytes=max_bytes)


@pytest.fixture
def store(tmp_path: Path) -> FilesystemDocumentStore:
    return make_store(tmp_path)


def object_path(root: Path, key: str) -> Path:
    return FilesystemBackend(root).path(key)


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def temporaries(root: Path) -> list[Path]:
    return [p for p in all_files(root) if p.name.startswith(".tmp-")]


# --- layout and permissions ----------------------------------------------------------------


def test_layout_is_patient_then_shard(store: FilesystemDocumentStore, tmp_path: Path) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    digest = hashlib.sha256(PLAINTEXT).hexdigest()
    assert all_files(tmp_path) == [tmp_path / ALICE / digest[:2] / digest]
    assert stored.key == f"{ALICE}/{digest}"


def test_permissions_are_owner_only(store: FilesystemDocumentStore, tmp_path: Path) -> None:
    stored = store.put(ALICE, PLAINTEXT)
    path = object_path(tmp_path, stored.key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


def test_put_is_idempotent_without_rewriting(
    store: FilesystemDocumentStore, tmp_path: Path
) -> None:
    first = store.put(ALICE, PLAINTEXT)
    path = object_path(tmp_path, first.key)
    inode = path.stat().st_ino
    assert store.put(ALICE, PLAINTEXT) == first
    assert path.stat().st_ino == inode  # not even replaced by an identical file


def test_delete_patient_removes_temporaries_and_directories(
    store: FilesystemDocumentStore, tmp_path: Path
) -> None:
    keys = [store.put(ALICE, PLAINTEXT + bytes([i])).key for i in range(2)]
    leftover = object_path(tmp_path, keys[0]).parent / ".tmp-crashed"
    leftover.write_bytes(b"partial")
    assert store.delete_patient(ALICE) == 2  # the temporary is removed, not counted
    assert not (tmp_path / ALICE).exists()


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


# --- sweeping and health ---------------------------------------------------------------


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
        ("https://example.org/x", "Unsupported store URL scheme 'https'"),
        ("file://relative/path", "three slashes"),
        ("", "empty"),
    ],
)
def test_open_store_rejects(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        open_store(url, MasterKeyWrapper(MASTER, "k1"), max_bytes=MAX_BYTES)
