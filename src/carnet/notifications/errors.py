"""Errors of the notifications domain."""

from __future__ import annotations

from carnet.errors import CarnetError, InvalidInput, NotFound, StateRefused


class NotificationError(CarnetError):
    """Base of the notifications domain's errors."""


class InvalidNotification(NotificationError, InvalidInput):
    """A notice, preference or mailer setting breaks a rule; ``field`` names it."""


class NotificationNotFound(NotificationError, NotFound):
    """No such notice in this patient's inbox."""

    def __init__(self) -> None:
        super().__init__("No such notification in this inbox.")


class MailerUnavailable(NotificationError, StateRefused):
    """The mail server cannot take messages now (unreachable, timed out, TLS or sign-in failed).

    Nothing else will get through either, so a delivery run stops at the first one.
    """


class MessageRefused(MailerUnavailable):
    """The mail server refused this one message (its recipient, its content); ``code`` says how.

    Other messages may still get through: a delivery run goes on with them.
    """

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code
