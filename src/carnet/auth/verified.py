"""Access tokens this process has already verified, kept until they expire.

A client sends the same bearer token with every request of its five minutes; checking its
ES256 signature and claims each time costs more of a worker than reading the document it asks
for. What a verification concludes — this token, signed by Carnet, speaks for this actor until
``exp`` — holds as long as the key that signed it, so each worker keeps the conclusion until the
token expires or for as long as it trusts its copy of the keys (a minute, ``keys.KEY_CACHE``),
whichever comes first, for at most ``max_entries`` tokens, least recently used dropped first.
Revocation is asked on every use (``revocations``): only the signature check is saved.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict

from carnet.access.actors import Actor

MAX_ENTRIES = 4096


class VerifiedTokens:
    """A bounded map from a verified token to its actor and expiry."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Actor, dt.datetime]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"VerifiedTokens({len(self)}/{self.max_entries})"

    def actor(self, token: str, *, now: dt.datetime) -> Actor | None:
        """The actor of an already verified token that has not expired; None otherwise."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            actor, expires_at = entry
            if now >= expires_at:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return actor

    def keep(self, token: str, actor: Actor, *, expires_at: dt.datetime) -> None:
        """Remember a token that was just verified."""
        with self._lock:
            self._entries[token] = (actor, expires_at)
            self._entries.move_to_end(token)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
