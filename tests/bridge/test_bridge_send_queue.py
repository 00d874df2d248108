"""A console that does not read its socket must not hold up anyone else: the outbox dispatcher
hands commands to every agent's bridge from one loop, so a send that waits on one socket's flow
control would stall every other agent's commands (web/bridge_ws.py, _Connection)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.websockets import WebSocketState

from presencesync.web import bridge_ws
from presencesync.web.bridge_ws import _Connection


class _Socket:
    """A WebSocket whose peer reads nothing (`stuck`) or everything."""

    def __init__(self, stuck: bool) -> None:
        self.client_state = WebSocketState.CONNECTED
        self.sent: list[str] = []
        self.closed_with: int | None = None
        self._stuck = stuck
        self._never = asyncio.Event()

    async def send_text(self, text: str) -> None:
        if self._stuck:
            await self._never.wait()
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = code


def _connection(socket: Any, agent: str) -> _Connection:
    return _Connection(socket, "acc", agent, "005000000000001AAA", "session")


def test_a_stuck_console_does_not_block_the_sender_nor_other_consoles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bridge_ws, "SEND_QUEUE_LIMIT", 3)

    async def scenario() -> tuple[list[bool], list[str], int | None, bool]:
        stuck, fine = _Socket(stuck=True), _Socket(stuck=False)
        slow, fast = _connection(stuck, "slow"), _connection(fine, "fast")
        results = []
        for n in range(5):  # one is being written, 3 wait: the 5th finds the queue full
            results.append(await asyncio.wait_for(slow.send({"n": n}), 1.0))
            assert await asyncio.wait_for(fast.send({"n": n}), 1.0)
        await asyncio.sleep(0.05)
        await fast.flush()
        fast.stop_writer()
        slow.stop_writer()
        return results, fine.sent, stuck.closed_with, slow.closed

    results, delivered, closed_with, slow_closed = asyncio.run(scenario())
    # Queued without waiting, until the console is so far behind that it is let go.
    assert results == [True, True, True, True, False]
    assert slow_closed and closed_with == 1013
    assert delivered == ['{"n":0}', '{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}']
