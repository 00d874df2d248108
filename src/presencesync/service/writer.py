"""Group commit: writer threads that apply many queued events in one transaction.

Callers of `Engine.submit` put their event on a queue and block on a future; a writer takes
everything queued (up to `max_batch`) and hands it to the unit of work as one batch, so N events
cost one commit (one fsync) instead of N. Events of one agent always go to the same writer and
stay in queue order; an event with a hook (router) runs alone, in order, so that its hook can
undo just that event.
"""

from __future__ import annotations

import logging
import queue
import threading
import zlib
from collections.abc import Callable

from presencesync.service.uow import Item

log = logging.getLogger(__name__)
_STOP = object()


class Writer:
    def __init__(self, process: Callable[[list[Item]], None], name: str, max_batch: int) -> None:
        self._process = process
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def put(self, item: Item) -> None:
        self._queue.put(item)

    def close(self) -> None:
        self._queue.put(_STOP)
        self.thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[Item] = [first]  # type: ignore[list-item]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)  # type: ignore[arg-type]
            for segment in _segments(batch):
                try:
                    self._process(segment)
                except BaseException as error:  # never leave a submitter waiting forever
                    log.exception("writer failed on a batch")
                    for item in segment:
                        if not item.future.done():
                            item.future.set_exception(error)
            if stop:
                return


def _segments(batch: list[Item]) -> list[list[Item]]:
    out: list[list[Item]] = []
    current: list[Item] = []
    for item in batch:
        if item.hook is None:
            current.append(item)
            continue
        if current:
            out.append(current)
            current = []
        out.append([item])
    if current:
        out.append(current)
    return out


class WriterPool:
    """Writers partitioned by agent, so each agent's events keep their order."""

    def __init__(
        self, process: Callable[[list[Item]], None], count: int, max_batch: int = 512
    ) -> None:
        self._writers = [
            Writer(process, f"presencesync-writer-{n}", max_batch) for n in range(count)
        ]

    def owns_current_thread(self) -> bool:
        current = threading.current_thread()
        return any(writer.thread is current for writer in self._writers)

    def put(self, item: Item) -> None:
        key = f"{item.account_id}\x00{item.agent_id}".encode()
        self._writers[zlib.crc32(key) % len(self._writers)].put(item)

    def close(self) -> None:
        for writer in self._writers:
            writer.close()
