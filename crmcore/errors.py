"""Errors raised by services; the API and web layers turn each into a clear answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class CrmError(Exception):
    """Base class. ``status`` is the HTTP status the API answers with."""

    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, **self.details}


class ValidationError(CrmError):
    """The data is invalid. ``errors`` maps each field path (``phones[1].number``) to its messages."""

    status = 422

    def __init__(self, errors: Mapping[str, list[str]] | str, message: str = "invalid data") -> None:
        if isinstance(errors, str):
            errors = {"_record": [errors]}
        super().__init__(message)
        self.errors = {key: list(value) for key, value in errors.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "errors": self.errors}


class NotFound(CrmError):
    status = 404


class Forbidden(CrmError):
    status = 403


class Conflict(CrmError):
    """Optimistic concurrency: the contact changed since the caller read it."""

    status = 409


class PreconditionFailed(Conflict):
    """An ``If-Match`` version did not match the stored one."""

    status = 412


class BlockedContact(CrmError):
    """The contact carries a blocking warning; ``purpose`` is what was refused."""

    status = 409


class ChannelError(CrmError):
    """A channel could not deliver. ``retryable`` tells the job queue whether to try again."""

    status = 502

    def __init__(self, message: str, retryable: bool = True, **details: Any) -> None:
        super().__init__(message, **details)
        self.retryable = retryable


class PluginError(CrmError):
    """A plugin could not be loaded or registered (fatal only with ``CRM_STRICT_PLUGINS``)."""

    status = 500
