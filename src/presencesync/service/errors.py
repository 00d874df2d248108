"""Service-level errors. They are DomainErrors, so the web layer maps every one of them to
`{"error": {"code", "message", "details"}}` the same way."""

from __future__ import annotations

from presencesync.domain import DomainError


class NotFound(DomainError):
    """Something addressed by id does not exist (or belongs to another account)."""


class Conflict(DomainError):
    """The request clashes with what exists (e.g. an agent id that is taken)."""


__all__ = ["Conflict", "DomainError", "NotFound"]
