"""Document store on a local (or mounted) filesystem.

Layout: ``root/<patient_id>/<sha256[:2]>/<sha256>``, each file a sealed blob (see
carnet.storage.crypto) whose GCM associated data includes the content key, so a file
copied or moved to another path fails to open. Interrupted writes leave only
``.tmp-*`` files, which are never read and are removed by ``sweep_temporaries``.

The sweeper of unreferenced objects removes an object by first renaming it to a unique
``.sweep-*`` name in its directory, then checking that the renamed file is still the one it
listed (same mtime): a ``put`` of the same content either refreshed the mtime before the
rename (the file is then put back) or finds the name empty after it (and writes the object
again). Only a crash between the rename and the put-back leaves a ``.sweep-*`` file: it is
the whole sealed object, which an operator may rename back.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import secrets
import stat
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from carnet.storage.crypto import open_sealed, seal
from carnet.storage.errors import (
    ContentCorrupted,
    ContentNotFound,
    ContentTooLarge,
    EmptyContent,
    InvalidContentKey,
    StoreUnavailable,
)
from carnet.storage.ports import (
    ListedObject,
    StoredContent,
    content_key,
    is_sha256_hex,
    is_valid_patient_id,
    parse_content_key,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from carnet.storage.ports import KeyWrapper

TEMP_PREFIX = ".tmp-"
SWEEP_PREFIX = ".sweep-"
_DIR_MODE = 0o700


def _fsync_dir(path: Path) -> None:
    """Make the directory's entries durable.

    fsync() of a file persists its data and inode, not the directory entry naming it:
    after a power loss a freshly created or renamed file can vanish, or reappear under
    its old (temporary) name, unless the directory itself is fsynced (see fsync(2) and
    rename(2); ext4/XFS only promise rename durability after this).
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _modified_at(status: os.stat_result) -> datetime.datetime:
    # Exact to the microsecond (no float rounding): the sweeper compares two of these for
    # equality to tell whether a file was written again since it was listed.
    return datetime.datetime.fromtimestamp(0, datetime.UTC) + datetime.timedelta(
        microseconds=status.st_mtime_ns // 1000
    )


def _sorted_names(directory: Path) -> list[str]:
    """The names in ``directory``, sorted; none if it vanished (a purge ran meanwhile)."""
    try:
        return sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _unavailable(action: str, exc: OSError) -> StoreUnavailable:
    # strerror only: the path names a patient and a content hash, which belong in
    # debug logs (via the chained exception), not in a message shown to people.
    return StoreUnavailable(f"could not {action}: {exc.strerror or exc.__class__.__name__}")


class FilesystemDocumentStore:
    """Encrypted, content-addressed document store under the directory ``root``.

    The root itself is created (mode 0o700) on first write or check, but never its
    parents: a missing parent usually means an unmounted volume or a typo, and creating
    it would silently put health documents on the wrong disk.
    """

    def __init__(self, root: Path, wrapper: KeyWrapper, *, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be a positive number of bytes.")
        self._root = Path(root)
        self._wrapper = wrapper
        self._max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"FilesystemDocumentStore(root={str(self._root)!r}, max_bytes={self._max_bytes})"

    @property
    def root(self) -> Path:
        """The directory holding every patient namespace."""
        return self._root

    @property
    def max_bytes(self) -> int:
        """Largest accepted document, in bytes."""
        return self._max_bytes

    def _path(self, patient_id: str, sha256hex: str) -> Path:
        return self._root / patient_id / sha256hex[:2] / sha256hex

    def _sync_namespace(self, shard_dir: Path) -> None:
        # Shard, patient and root directories: a new object may have needed all three
        # entries created, and each is only durable once its parent is fsynced.
        for directory in (shard_dir, shard_dir.parent, self._root):
            _fsync_dir(directory)

    def _ensure_root(self) -> None:
        if self._root.is_dir():
            return
        try:
            self._root.mkdir(mode=_DIR_MODE, exist_ok=True)
            _fsync_dir(self._root.parent)  # so the new root survives a crash, like its objects
        except FileNotFoundError:
            raise StoreUnavailable(
                "the parent of the store directory does not exist (is the volume mounted?)"
            ) from None
        except FileExistsError:
            raise StoreUnavailable("the store path exists but is not a directory") from None

    def _ensure_dirs(self, shard_dir: Path) -> None:
        self._ensure_root()
        for directory in (shard_dir.parent, shard_dir):
            # exist_ok: concurrent puts of the same patient race to create these.
            directory.mkdir(mode=_DIR_MODE, exist_ok=True)

    def put(self, patient_id: str, content: bytes) -> StoredContent:
        """Encrypt and store ``content`` for the patient; return its key, hash and size.

        Durable when it returns. Idempotent: identical content already stored for the
        same patient is not rewritten, only its mtime refreshed. A crash at any point leaves
        either the complete object or none under its final name (possibly a ``.tmp-*`` file,
        never read).
        """
        if not is_valid_patient_id(patient_id):
            raise InvalidContentKey(patient_id)
        size = len(content)
        if size == 0:
            raise EmptyContent()
        if size > self._max_bytes:
            raise ContentTooLarge(limit=self._max_bytes, size=size)
        sha256hex = hashlib.sha256(content).hexdigest()
        key = content_key(patient_id, sha256hex)
        stored = StoredContent(key=key, sha256=sha256hex, size=size)
        path = self._path(patient_id, sha256hex)
        try:
            try:
                # Refresh the mtime of an existing object: it tells the sweeper that this
                # object, unreferenced until now, is about to be referenced again (see
                # remove_unchanged). Missing (never written, or swept meanwhile): write it.
                os.utime(path)
            except FileNotFoundError:
                pass
            else:
                # Another put may have renamed this file and not yet fsynced the
                # directories, or crashed before doing so: sync before promising
                # durability to our own caller.
                self._sync_namespace(path.parent)
                return stored
            self._ensure_dirs(path.parent)
            blob = seal(content, aad=key.encode("ascii"), wrapper=self._wrapper)
            self._write_atomically(path, blob)
        except OSError as exc:
            raise _unavailable("write the document", exc) from exc
        return stored

    def _write_atomically(self, path: Path, blob: bytes) -> None:
        # The temp file lives in the target directory so os.replace is a same-filesystem
        # rename, which POSIX makes atomic: readers see the old name absent or the whole
        # new file, never a partial one. mkstemp creates it with mode 0o600.
        fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(blob)
                tmp.flush()
                # Data must be on disk before the rename is: otherwise a crash could
                # leave the final name pointing at an empty or partial file.
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        self._sync_namespace(path.parent)

    def get(self, key: str) -> bytes:
        """Return the decrypted content stored under ``key``, verified against its hash."""
        patient_id, sha256hex = parse_content_key(key)
        try:
            blob = self._path(patient_id, sha256hex).read_bytes()
        except FileNotFoundError:
            raise ContentNotFound(key) from None
        except OSError as exc:
            raise _unavailable("read the document", exc) from exc
        try:
            plaintext = open_sealed(blob, aad=key.encode("ascii"), wrapper=self._wrapper)
        except ContentCorrupted as exc:
            raise ContentCorrupted(key, detail=exc.detail) from exc
        # Defence in depth: GCM already authenticated the bytes, this also catches a
        # buggy writer that stored content under the wrong hash.
        if hashlib.sha256(plaintext).hexdigest() != sha256hex:
            raise ContentCorrupted(key, detail="the content does not match its SHA-256 key")
        return plaintext

    def exists(self, key: str) -> bool:
        """Tell whether an object is stored under ``key`` (without decrypting it)."""
        patient_id, sha256hex = parse_content_key(key)
        return self._path(patient_id, sha256hex).is_file()

    def delete(self, key: str) -> None:
        """Remove the object under ``key`` durably; a missing object is not an error."""
        patient_id, sha256hex = parse_content_key(key)
        path = self._path(patient_id, sha256hex)
        try:
            path.unlink(missing_ok=True)
            if path.parent.is_dir():
                # Erasure must survive a crash too (a purge is a legal obligation).
                _fsync_dir(path.parent)
        except OSError as exc:
            raise _unavailable("delete the document", exc) from exc

    def delete_patient(self, patient_id: str) -> int:
        """Remove the patient's whole namespace; return the number of objects removed."""
        if not is_valid_patient_id(patient_id):
            raise InvalidContentKey(patient_id)
        patient_dir = self._root / patient_id
        removed = 0
        try:
            if not patient_dir.is_dir():
                return 0
            for shard_dir in patient_dir.iterdir():
                if shard_dir.is_dir() and not shard_dir.is_symlink():
                    for entry in shard_dir.iterdir():
                        entry.unlink()
                        if is_sha256_hex(entry.name):  # not temporaries
                            removed += 1
                    shard_dir.rmdir()
                else:
                    shard_dir.unlink()
            patient_dir.rmdir()
            _fsync_dir(self._root)
        except OSError as exc:
            raise _unavailable("delete the patient's documents", exc) from exc
        return removed

    def sweep_temporaries(self, older_than: datetime.timedelta) -> int:
        """Remove ``.tmp-*`` files left by interrupted writes, if older than ``older_than``.

        Choose an age well above the slowest write (an hour is plenty): a younger temp
        file may belong to a put in progress.
        """
        if older_than.total_seconds() < 0:
            raise ValueError("older_than must not be negative.")
        cutoff = time.time() - older_than.total_seconds()
        removed = 0
        try:
            for dirpath, _dirnames, filenames in os.walk(self._root):
                for name in filenames:
                    if not name.startswith(TEMP_PREFIX):
                        continue
                    path = Path(dirpath, name)
                    with contextlib.suppress(FileNotFoundError):  # raced with its writer
                        if path.lstat().st_mtime <= cutoff:
                            path.unlink()
                            removed += 1
        except OSError as exc:
            raise _unavailable("sweep temporary files", exc) from exc
        return removed

    def iter_objects(self, *, start_after: str | None = None) -> Iterator[ListedObject]:
        """Every stored object in (patient id, SHA-256) order, one directory at a time.

        Temporaries, sweep claims and stray files are not listed. A directory removed while
        being listed (a purge) is skipped.
        """
        after = parse_content_key(start_after) if start_after is not None else None
        try:
            for patient_id in _sorted_names(self._root):
                if not is_valid_patient_id(patient_id) or (after and patient_id < after[0]):
                    continue
                for shard in _sorted_names(self._root / patient_id):
                    for name in _sorted_names(self._root / patient_id / shard):
                        if not (is_sha256_hex(name) and name[:2] == shard):
                            continue
                        if after and (patient_id, name) <= after:
                            continue
                        try:
                            status = (self._root / patient_id / shard / name).lstat()
                        except FileNotFoundError:
                            continue  # removed since the directory was read
                        if stat.S_ISREG(status.st_mode):
                            yield ListedObject(
                                f"{patient_id}/{name}", status.st_size, _modified_at(status)
                            )
        except OSError as exc:
            raise _unavailable("list the documents", exc) from exc

    def remove_unchanged(self, objects: Sequence[ListedObject]) -> list[ListedObject]:
        """Remove each listed object unless its mtime changed since it was listed.

        The object is first renamed to a unique ``.sweep-*`` name, which is atomic: a
        concurrent ``put`` either refreshed its mtime before (the rename carries the new
        mtime, and the object is put back) or finds its name empty after (and writes it
        anew). So an object a put has just vouched for is never lost to the sweep.
        """
        removed: list[ListedObject] = []
        directories: set[Path] = set()
        try:
            for listed in objects:
                patient_id, sha256hex = parse_content_key(listed.key)
                path = self._path(patient_id, sha256hex)
                claim = path.with_name(f"{SWEEP_PREFIX}{sha256hex}-{secrets.token_hex(8)}")
                try:
                    os.rename(path, claim)
                except FileNotFoundError:
                    continue  # already gone: another sweeper, or a purge
                directories.add(path.parent)
                if _modified_at(claim.lstat()) != listed.modified_at:
                    # Written again since listed: put it back, unless a put already wrote
                    # the object anew (both are the same content, sealed).
                    with contextlib.suppress(FileExistsError):
                        os.link(claim, path)
                else:
                    removed.append(listed)
                claim.unlink()
            for directory in directories:
                _fsync_dir(directory)
        except OSError as exc:
            raise _unavailable("remove unreferenced documents", exc) from exc
        return removed

    def check(self) -> None:
        """Verify that the root accepts writes (creating it if only it is missing).

        Raises StoreUnavailable otherwise. Writes and removes a small ``.tmp-check-*`` file.
        """
        try:
            self._ensure_root()
            fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}check-", dir=self._root)
            try:
                os.write(fd, b"ok")
            finally:
                os.close(fd)
                os.unlink(name)
        except OSError as exc:
            raise _unavailable("write to the store directory", exc) from exc
