"""Errors of the lifecycle domain: each says what a person can do about it."""

from __future__ import annotations

from carnet.errors import CarnetError, Conflict, InvalidInput, StateRefused


class LifecycleError(CarnetError):
    """Base of the lifecycle domain's errors."""


class TransitionRefused(LifecycleError, StateRefused):
    """The dossier's state does not allow this change (``state`` is where it stands)."""

    def __init__(self, *, state: str, wanted: str) -> None:
        super().__init__(
            f"The dossier is {state}: it cannot become {wanted} from there. "
            f"{_NEXT_STEPS.get(state, '')}".strip(),
            field="state",
        )
        self.state = state
        self.wanted = wanted


_NEXT_STEPS = {
    "invited": "Activate it, or object to it, first.",
    "active": "Close it to end it.",
    "opposed": "Ask for it to be opened to use it.",
    "closed": "Ask for it to be opened again to use it.",
}


class ActivationRefused(LifecycleError, InvalidInput):
    """The activation code is wrong, expired, spent or locked (all look the same).

    The failed attempt is recorded before this is raised: the caller commits it.
    """

    def __init__(self) -> None:
        super().__init__(
            "This activation code is not valid: check it against your letter; after 5 wrong "
            "attempts, or once it has expired, ask your insurer for a new letter.",
            field="code",
        )


class InvalidRegistryFile(LifecycleError, InvalidInput):
    """The registry file cannot be read at all (not the per-row problems, which are reported)."""


class InvalidExportFile(LifecycleError, InvalidInput):
    """A dossier export cannot be re-imported; the message names what is wrong in it."""


class ImportConflict(LifecycleError, Conflict):
    """The exported patient already has a dossier in this Carnet: nothing was imported."""

    def __init__(self, identifier: str) -> None:
        super().__init__(
            f"A patient with the identifier {identifier} already has a dossier here: an export "
            "is imported into a Carnet that does not hold that patient yet. Nothing was imported.",
            field="identifier",
        )
        self.identifier = identifier
