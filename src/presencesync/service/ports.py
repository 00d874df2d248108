"""The small interfaces the service layer's parts depend on, so that none of them needs the
`Engine` (which composes them all and implements these).

- `SubmitHooked`: how the router applies an agent's event together with its hook (the
  interaction row's move) through the engine's ordered, group-committed submission path.
- `OutboxPort`: what `OutboxDispatcher` needs (claim, check, record outcomes, be woken).
- `DueTimers`: what `TimerRunner` needs (fire the due timers).
- `CdcEngine`: what the Change Data Capture runner (`cdc.py`) needs: the account's connection,
  statuses and agents, applying observations, reconciling, its state row, the store.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Engine as Database

from presencesync.domain import Event, PresenceStatus
from presencesync.service.model import (
    AgentRecord,
    Applied,
    CdcStatus,
    OutboxCommand,
    SalesforceConnection,
    SalesforceView,
)
from presencesync.service.uow import Hook, Result

# (account_id, agent_id, event, hook) -> the committed result; raises what the hook or the
# rules refused.
SubmitHooked = Callable[[str, str, Event, Hook], Result]


class OutboxPort(Protocol):
    def claim_commands(
        self,
        limit: int = 100,
        lease_seconds: float = 30.0,
        *,
        agents: Collection[tuple[str, str]] | None = None,
    ) -> list[OutboxCommand]: ...

    def current_command_ids(self, commands: list[OutboxCommand]) -> set[int]: ...

    def retry_command(self, outbox_id: int, error: str) -> None: ...

    def finish_commands(self, done: list[int], superseded: list[int]) -> None: ...

    def add_waker(self, wake: Callable[[], None]) -> Callable[[], None]: ...


class DueTimers(Protocol):
    def run_due_timers(self, now: datetime | None = None) -> int: ...


class CdcEngine(Protocol):
    db: Database

    def change_data_capture_accounts(self) -> list[str]: ...

    def get_salesforce_connection(self, account_id: str) -> SalesforceConnection | None: ...

    def get_presence_statuses(self, account_id: str) -> list[PresenceStatus]: ...

    def linked_users(self, account_id: str) -> dict[str, str]: ...

    def list_agents(
        self, account_id: str, limit: int = 50, after: str | None = None
    ) -> list[AgentRecord]: ...

    def submit_many(
        self, events: Sequence[tuple[str, str, Event, str, str | None]]
    ) -> list[Applied | Exception]: ...

    def reconcile(self, account_id: str, views: list[SalesforceView]) -> list[Applied]: ...

    def save_cdc_status(self, status: CdcStatus) -> None: ...

    def consoles_connected(self, account_id: str, agent_ids: Collection[str]) -> set[str]: ...
