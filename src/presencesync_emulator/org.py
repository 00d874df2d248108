"""The running emulated org: its store, Omni-Channel, console event hub and settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from presencesync_emulator.consoles import ConsoleSessions
from presencesync_emulator.events import EventHub
from presencesync_emulator.omni import Omni, OmniEvent
from presencesync_emulator.pubsub.bus import EventBus
from presencesync_emulator.store import Store

DEFAULT_TOKEN_LIFETIME_S = 2 * 3600.0
DEFAULT_DAILY_API_LIMIT = 15000
API_VERSIONS = tuple(f"{v}.0" for v in range(31, 63))
LATEST_API_VERSION = API_VERSIONS[-1]
# The JWT bearer audiences a production org accepts: its authorization server,
# login.salesforce.com. A sandbox plays https://test.salesforce.com; an Experience Cloud site
# adds its own URL. The org's My Domain / instance URL is never a valid audience.
DEFAULT_JWT_AUDIENCES = ("https://login.salesforce.com",)


@dataclass
class Org:
    store: Store
    omni: Omni
    hub: EventHub
    base_url: str | None = None
    token_lifetime_s: float = DEFAULT_TOKEN_LIFETIME_S
    bridge_url: str | None = None
    bridge_server: str | None = None
    login_audiences: tuple[str, ...] = field(default=DEFAULT_JWT_AUDIENCES)
    # The change event bus (Change Data Capture + Pub/Sub API); None when switched off.
    pubsub: EventBus | None = None
    # Who owns each user's Omni session, connection errors, toolkit faults (consoles.py).
    consoles: ConsoleSessions = field(init=False)

    def __post_init__(self) -> None:
        self.consoles = ConsoleSessions(self.omni, self.hub)

    @property
    def org_id(self) -> str:
        value = self.store.setting("org_id")
        assert value is not None
        return value

    @property
    def daily_api_limit(self) -> int:
        return int(self.store.setting("daily_api_limit", str(DEFAULT_DAILY_API_LIMIT)) or 0)

    def publish(self, events: list[OmniEvent]) -> None:
        self.hub.publish(events)
