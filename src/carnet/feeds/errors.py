"""Errors of the feeds domain: registering feeding systems and recognising senders."""

from __future__ import annotations

from carnet.errors import CarnetError, Conflict, InvalidInput, NotFound


class FeedError(CarnetError):
    """Base of the feeds domain's errors."""


class InvalidFeedingSystem(FeedError, InvalidInput):
    """A registration breaks a rule; ``field`` names the option at fault."""


class FeedingSystemExists(FeedError, Conflict):
    """Another feeding system already sends as this facility and application."""

    def __init__(self, facility: str, application: str) -> None:
        sender = f"{facility} / {application}" if application else facility
        super().__init__(f"A feeding system already sends as {sender}.", field="sending_facility")


class FeedingSystemNotFound(FeedError, NotFound):
    """No feeding system with this id."""

    def __init__(self) -> None:
        super().__init__("No such feeding system.")


class UnknownSender(FeedError):
    """No active feeding system matches the message's MSH-3/MSH-4 (and certificate).

    ``field`` is where the sender is named (``MSH-4``), or ``MSH-3`` when the facility is known
    but not this application.
    """
