"""The small interfaces the service layer's parts depend on, so that none of them needs the
`Engine` (which composes them all and implements these).

- `SubmitHooked`: how the router applies an agent's event together with its hook (the
  interaction row's move) through the engine's ordered, group-committed submission path.
- `OutboxPort`: what `OutboxDispatcher` needs (claim, check, record outcomes, be woken).
- `DueTimers`: what `TimerRunner` needs (fire the due timers).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Protocol

from presencesync.domain import Event
from presencesync.service.model import OutboxCommand
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
