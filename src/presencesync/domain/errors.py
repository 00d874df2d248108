"""Errors the pure core raises; every one carries a machine-readable code for the API."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request the rules refuse. `code` is stable and shown to API clients."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class InvalidState(DomainError):
    """A `Major/Minor` text that is not a state of the account."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__("INVALID_STATE", message, details)


class Rejected(DomainError):
    """An event that is well formed but not allowed now (e.g. a state change while logged out)."""
