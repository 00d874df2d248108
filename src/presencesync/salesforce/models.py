"""Typed results of the Omni-Channel readers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

StatusOption = Literal["online", "busy"]

# AgentWork statuses that still occupy the agent (assigned and waiting, or accepted).
OPEN_WORK_STATUSES: tuple[str, ...] = ("Assigned", "Opened")


@dataclass(frozen=True, slots=True)
class PresenceStatus:
    """A ``ServicePresenceStatus`` with its status option.

    Salesforce has no status-option field in the API: a status is *online* when service
    channels are assigned to it (``ServiceChannelStatus`` rows) and *busy* ("Away" in Setup)
    when none are. ``channels`` holds the channels' labels (``Case``, ``Chat``, ``Lead``).
    """

    id: str
    developer_name: str
    label: str
    status_option: StatusOption
    channels: list[str]

    def __post_init__(self) -> None:
        expected = "online" if self.channels else "busy"
        if self.status_option != expected:
            raise ValueError(
                f"presence status {self.developer_name}: status_option {self.status_option!r} "
                f"contradicts its channels {self.channels!r}"
            )

    @classmethod
    def from_channels(
        cls, id: str, developer_name: str, label: str, channels: list[str]
    ) -> PresenceStatus:
        """Build a status whose option follows from its channels."""
        return cls(id, developer_name, label, "online" if channels else "busy", list(channels))

    def to_api(self) -> dict[str, Any]:
        """The shape of one entry of ``POST /api/v1/omni/fetch``."""
        return {
            "id": self.id,
            "developer_name": self.developer_name,
            "label": self.label,
            "status_option": self.status_option,
            "channels": list(self.channels),
        }


@dataclass(frozen=True, slots=True)
class UserPresence:
    """A user's current ``UserServicePresence`` row (the user is online in Omni-Channel)."""

    user_id: str
    presence_status_id: str
    presence_status: str | None  # DeveloperName; None when the status is not readable
    since: datetime | None
    is_current: bool


@dataclass(frozen=True, slots=True)
class OpenWork:
    """An ``AgentWork`` row still open for its user (Assigned or Opened)."""

    id: str
    work_item_id: str
    user_id: str
    channel: str | None  # the ServiceChannel's label (MasterLabel), e.g. "Case"
    status: str
