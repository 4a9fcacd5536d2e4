"""The store sweeper: stored objects no document references, older than a grace period, go.

A publication stores its content before its row commits (the row names the content's key, so
the content must exist first). A publication the database refuses, or a process killed in
between, therefore leaves an object no row references: nobody can ever read it, and it fills
the disk. The request itself cannot safely remove it: objects are content-addressed per
dossier, so the same object may already be, or be about to become, the content of another
document of that dossier with the same bytes (an earlier committed one, or a twin publication
in flight whose row is not yet visible). Only a sweep, with a grace period, can tell.

How a sweep goes, page by page (a thousand objects), so it scales to hundreds of millions of
objects in bounded memory and time per step:

1. the store lists a page of objects, each with its last write time (``modified_at``);
2. objects written less than ``grace`` ago are kept (a publication may not have committed);
3. one query asks which of the rest some document row references (``store_references``, in
   any status); those are kept;
4. the rest are removed by ``remove_unchanged``, which removes an object only if it was not
   written again since step 1.

Why nothing a document needs is ever removed, with several sweepers and publications at once:

- a document committed before step 3 is seen there;
- a publication committing after step 3 stored (or, for content already stored, refreshed:
  ``put`` touches an existing object) its content at some instant ``p``. If ``p`` was before
  step 1, the listing saw ``modified_at >= p``; the object was old enough only if
  ``p <= start - grace``, so that publication took longer than ``grace`` from its put to its
  commit, which the grace period is chosen to rule out (a day, against seconds). If ``p`` was
  after step 1, the object changed since it was listed, and step 4 leaves it (the filesystem
  store makes that check and the removal one atomic rename; S3 has no portable conditional
  delete, so there a refresh between its last HEAD and the batched delete, one request long,
  is the residual window, for content unreferenced for a whole grace period);
- two sweepers removing the same object are harmless: removing a missing object is skipped.

Clocks: ``modified_at`` is the store's clock, the cutoff Carnet's; the grace period (at least
an hour) dwarfs any skew between them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice

from sqlalchemy.orm import Session, sessionmaker

from carnet.clock import Clock
from carnet.db import unit_of_work
from carnet.documents.internal import store_references
from carnet.storage import DocumentStore
from carnet.storage.ports import ListedObject

PAGE = 1000  # objects per step: one listing page of S3, one reference query, one delete batch


@dataclass
class SweepReport:
    """What one sweep (or one slice of a sweep) saw and did."""

    examined: int = 0
    recent: int = 0
    referenced: int = 0
    unreferenced: int = 0
    unreferenced_bytes: int = 0
    removed: int = 0
    removed_bytes: int = 0
    # The last object examined, where a sweep cut short by its limit resumes; None once the
    # listing reached its end.
    resume_after: str | None = None

    def summary(self, *, dry_run: bool = False) -> str:
        """One line for the operator and the log."""
        if dry_run:
            return (
                f"Store sweep (dry run): {self.examined} objects examined, "
                f"{self.unreferenced} unreferenced and past the grace period "
                f"({self.unreferenced_bytes} bytes) would be removed; nothing was removed."
            )
        return (
            f"Store sweep: {self.examined} objects examined, {self.removed} unreferenced "
            f"objects removed ({self.removed_bytes} bytes), {self.referenced} referenced and "
            f"{self.recent} within the grace period kept."
        )


def sweep_store(
    sessions: sessionmaker[Session],
    store: DocumentStore,
    *,
    clock: Clock,
    grace: dt.timedelta,
    dry_run: bool = False,
    start_after: str | None = None,
    limit: int | None = None,
    on_unreferenced: Callable[[ListedObject], None] | None = None,
) -> SweepReport:
    """Remove the store's objects that no document references and were written before
    ``clock.now() - grace``; what it saw and did.

    ``dry_run`` removes nothing and reports what would go; ``on_unreferenced`` is told of each
    such object (removed or, in a dry run, not). ``start_after`` and ``limit`` make a slice of
    a sweep: at most ``limit`` objects from after ``start_after``, ``resume_after`` saying
    where the next slice starts. Each reference check is its own short read transaction: no
    lock is held while the store is listed or written. Raises StoreUnavailable.
    """
    if grace < dt.timedelta(0):
        raise ValueError("The grace period must not be negative.")
    cutoff = clock.now() - grace
    report = SweepReport()
    listing: Iterator[ListedObject] = store.iter_objects(start_after=start_after)
    if limit is not None:
        listing = islice(listing, limit)
    while page := list(islice(listing, PAGE)):
        report.examined += len(page)
        report.resume_after = page[-1].key
        old = [listed for listed in page if listed.modified_at <= cutoff]
        report.recent += len(page) - len(old)
        with unit_of_work(sessions) as session:
            referenced = store_references(session, [listed.key for listed in old])
        report.referenced += len(referenced)
        candidates = [listed for listed in old if listed.key not in referenced]
        report.unreferenced += len(candidates)
        report.unreferenced_bytes += sum(listed.size for listed in candidates)
        if not dry_run:
            removed = store.remove_unchanged(candidates)
            report.removed += len(removed)
            report.removed_bytes += sum(listed.size for listed in removed)
            candidates = removed
        if on_unreferenced is not None:
            for listed in candidates:
                on_unreferenced(listed)
    if limit is None or report.examined < limit:
        report.resume_after = None
    return report
