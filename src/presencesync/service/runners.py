"""The service's asyncio runners: `OutboxDispatcher` delivers the outbox's commands, `TimerRunner`
fires the durable timers. Each works through a narrow port (`ports.OutboxPort`,
`ports.DueTimers`) that the engine implements; the composition root (`presencesync.bootstrap`)
builds them.

The dispatcher claims commands (a lease: a crashed dispatcher's commands come back after it),
hands each to `deliver`, and records the outcome: delivered, retried with backoff, or
superseded (the agent's snapshot no longer awaits it). With several processes sharing
PostgreSQL, each dispatcher is given `claimable` (the agents whose console is connected to its
process) and claims only their commands (see `outbox`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection

from presencesync.service.model import OutboxCommand
from presencesync.service.outbox import Agent
from presencesync.service.ports import DueTimers, OutboxPort

log = logging.getLogger(__name__)

Deliver = Callable[[OutboxCommand], Awaitable[bool]]


class OutboxDispatcher:
    """Delivers claimed commands through `deliver` (True: handed over; False: not now).

    `claimable()` (called on the dispatcher's event loop, once per round): the (account_id,
    agent_id) pairs whose commands this dispatcher can deliver, e.g. the agents whose console
    bridge is connected to this process; only their commands are claimed, and while there are
    none the dispatcher sleeps until woken (`wake()`). None: every agent's commands."""

    def __init__(
        self,
        outbox: OutboxPort,
        deliver: Deliver,
        *,
        poll_interval: float = 0.2,
        batch_size: int = 100,
        lease_seconds: float = 30.0,
        claimable: Callable[[], Collection[Agent]] | None = None,
    ) -> None:
        self.outbox = outbox
        self.deliver = deliver
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.claimable = claimable
        self._idle = False  # the last round had no agent to claim for
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._done: asyncio.Event | None = None

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        remove = self.outbox.add_waker(self.wake)
        try:
            while not self._stopping:
                try:
                    handled = await self.run_once()
                except Exception:
                    log.exception("outbox dispatch failed; trying again")
                    handled = 0
                if handled >= self.batch_size:
                    continue  # more may be waiting
                # No agent to claim for: nothing can become deliverable until a console
                # connects, and connecting wakes us.
                timeout = None if self._idle else self.poll_interval
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
        finally:
            remove()
            self._done.set()

    async def run_once(self) -> int:
        """Claim a batch, deliver it in order, record the outcomes (in bulk: one transaction
        per batch, not per command)."""
        outbox = self.outbox
        self._idle = False
        agents = None if self.claimable is None else set(self.claimable())
        if agents is not None and not agents:
            self._idle = True
            return 0
        commands = await asyncio.to_thread(
            outbox.claim_commands, self.batch_size, self.lease_seconds, agents=agents
        )
        if not commands:
            return 0
        live = await asyncio.to_thread(outbox.current_command_ids, commands)
        stale = [c.id for c in commands if c.id not in live]
        done: list[int] = []
        held_up: set[tuple[str, str]] = set()  # agents whose earlier command was not delivered
        try:
            for command in commands:
                if self._stopping:
                    break  # the lease runs out and the command is claimed again
                if command.id not in live:
                    continue
                agent = (command.account_id, command.agent_id)
                if agent in held_up:
                    ok, error = False, "an earlier command of this agent was not delivered"
                else:
                    try:
                        ok = await self.deliver(command)
                        error = "not delivered"
                    except Exception as exc:  # the transport's failure is the command's retry
                        ok, error = False, f"{type(exc).__name__}: {exc}"
                if ok:
                    done.append(command.id)
                else:
                    held_up.add(agent)
                    await asyncio.to_thread(outbox.retry_command, command.id, error)
        finally:
            await asyncio.to_thread(outbox.finish_commands, done, stale)
        return len(commands)

    def wake(self) -> None:
        """Thread-safe: new commands were committed, look now."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    async def stop(self) -> None:
        self._stopping = True
        self.wake()
        if self._done is not None:
            await self._done.wait()


class TimerRunner:
    """asyncio loop firing due timers; `run()` until `stop()`."""

    def __init__(self, timers: DueTimers, *, poll_interval: float = 0.25) -> None:
        self.timers = timers
        self.poll_interval = poll_interval
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while not self._stopping:
            try:
                await asyncio.to_thread(self.timers.run_due_timers)
            except Exception:
                log.exception("timer run failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()

    def wake(self) -> None:
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def stop(self) -> None:
        self._stopping = True
        self.wake()
