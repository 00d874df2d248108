"""Salesforce Omni-Channel presence statuses (DESIGN.md section 2).

Offline is not a status: it is being logged out of Omni-Channel, written `None` here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import cast


class StatusOption(StrEnum):
    ONLINE = "online"  # has service channels: Omni routes work
    BUSY = "busy"  # no channels: Omni routes nothing


@dataclass(frozen=True)
class PresenceStatus:
    id: str
    developer_name: str
    label: str
    status_option: StatusOption
    channels: tuple[str, ...] = ()

    @property
    def is_busy(self) -> bool:
        return self.status_option is StatusOption.BUSY

    def to_api(self) -> dict[str, object]:
        return {
            "id": self.id,
            "developer_name": self.developer_name,
            "label": self.label,
            "status_option": self.status_option.value,
            "channels": list(self.channels),
        }

    @classmethod
    def from_api(cls, data: dict[str, object]) -> PresenceStatus:
        # Untyped data (JSON-like, as to_api writes it): "channels" is a list of names.
        channels = cast("Iterable[object]", data.get("channels") or ())
        return cls(
            id=str(data["id"]),
            developer_name=str(data["developer_name"]),
            label=str(data.get("label") or data["developer_name"]),
            status_option=StatusOption(str(data["status_option"])),
            channels=tuple(str(c) for c in channels),
        )


OFFLINE_LABEL = "Offline"


def presence_label(developer_name: str | None) -> str:
    """How a presence (or its absence) is written in history and logs."""
    return OFFLINE_LABEL if developer_name is None else developer_name
