"""The example settings of the seed's steps 5 and 6, made concrete.

The seed says "using the example settings in steps 5 and 6, the following events will occur"
and never gives them. These are the settings the README's worked example, the core's tests and
the core benchmark use.
"""

from __future__ import annotations

from typing import Any

from presencesync.domain.presence import PresenceStatus, StatusOption

EXAMPLE_CHANNELS = ("Case", "Chat", "Lead")


def example_statuses() -> list[PresenceStatus]:
    return [
        PresenceStatus(
            "0N5000000000001", "Available", "Available", StatusOption.ONLINE, EXAMPLE_CHANNELS
        ),
        PresenceStatus("0N5000000000002", "Busy", "Busy", StatusOption.BUSY),
        PresenceStatus("0N5000000000003", "On_Break", "On Break", StatusOption.BUSY),
        PresenceStatus("0N5000000000004", "Lunch", "Lunch", StatusOption.BUSY),
        PresenceStatus("0N5000000000005", "On_a_Call", "On a Call", StatusOption.BUSY),
    ]


# Step 5 (Presence Status Configuration) and step 6 (ContactWorld to Salesforce State Mapping),
# in the shape of PUT /api/v1/omni/config.
EXAMPLE_RAW_CONFIG: dict[str, Any] = {
    "enabled": True,
    "presence_mappings": [
        {"presence_status": "Available", "busy": False, "maps_to": None},
        {"presence_status": "Busy", "busy": True, "maps_to": None},
        {"presence_status": "On_Break", "busy": True, "maps_to": "Away/Break"},
        {"presence_status": "Lunch", "busy": True, "maps_to": "ExtendedAway/Lunch"},
        # Busy/Inbound is a system state, so Maps to cannot name it: the Busy box decides (Away).
        {"presence_status": "On_a_Call", "busy": True, "maps_to": None},
    ],
    "state_mappings": [
        {"state": "Ready", "presence_status": "Available"},
        {"state": "Busy", "presence_status": "On_a_Call"},
        {"state": "Wrap", "presence_status": "Busy"},
        {"state": "Away", "presence_status": "On_Break"},
        {"state": "ExtendedAway", "presence_status": "Busy"},
        {"state": "ExtendedAway/Lunch", "presence_status": "Lunch"},
    ],
}
