"""The metadata store's own errors: what went wrong, in words, with no HTTP in them.

The HTTP side maps each kind to MLflow's `error_code` and status in one place
(`gateway.http.errors.from_store_error`); the CLI prints the message.
"""

from __future__ import annotations


class StoreError(Exception):
    """A request the store refuses; `message` is meant for the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(StoreError):
    """The experiment, run, model or other entity named does not exist (or is deleted where that matters)."""


class AlreadyExists(StoreError):
    """An entity with that unique name or key exists already."""


class InvalidValue(StoreError):
    """A field is missing, of the wrong type, too long, or not allowed in the entity's current state."""


class UnknownAttribute(InvalidValue):
    """A search names an attribute the entity does not have (MLflow classifies it apart)."""
