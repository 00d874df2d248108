"""The engine in a child process, for the crash test: events come in on stdin, one JSON per
line (`{"n", "agent", "event", "source_id"}`), acknowledgements go out on stdout
(`ack <n> <event_id>` once the event's transaction has committed). An outbox dispatcher runs
alongside and appends every command id it hands over to a file (fsync'ed) before it reports
the command delivered. `drain` on stdin: wait until the account's outbox is empty, answer
`drained`. The parent kills this process with SIGKILL whenever it likes."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import sys
import threading
import zlib

import sqlalchemy as sa

from presencesync.domain import DomainError
from presencesync.service import Engine, OutboxCommand, OutboxDispatcher
from presencesync.service.codec import event_from_json
from presencesync.store import tables

WORKERS = 6


def main() -> None:
    database_url, account_id, delivered_path = sys.argv[1:4]
    # Started ahead of time (imports are slow): wait until the previous process is dead.
    sys.stdin.readline()
    engine = Engine(database_url)  # the parent migrated the store
    out_lock = threading.Lock()

    def say(line: str) -> None:
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    delivered = open(delivered_path, "a")  # noqa: SIM115 - lives as long as the process

    async def deliver(command: OutboxCommand) -> bool:
        delivered.write(command.command_id + "\n")
        delivered.flush()
        os.fsync(delivered.fileno())
        return True

    def dispatch() -> None:
        dispatcher = OutboxDispatcher(engine, deliver, poll_interval=0.05, lease_seconds=0.5)
        asyncio.run(dispatcher.run())

    threading.Thread(target=dispatch, daemon=True).start()

    # One queue per worker, chosen by agent: each agent's events stay in stdin order.
    queues: list[queue.SimpleQueue[dict[str, object]]] = [
        queue.SimpleQueue() for _ in range(WORKERS)
    ]

    def work(q: queue.SimpleQueue[dict[str, object]]) -> None:
        while True:
            message = q.get()
            event = event_from_json(message["event"])
            try:
                applied = engine.submit(
                    account_id,
                    str(message["agent"]),
                    event,
                    source="crash",
                    source_id=str(message["source_id"]),
                )
            except DomainError as error:
                say(f"err {message['n']} {error.code}")
                continue
            say(f"ack {message['n']} {applied.event_id}")

    for q in queues:
        threading.Thread(target=work, args=(q,), daemon=True).start()

    say("ready")
    for line in sys.stdin:
        if line.strip() == "drain":
            while _pending(engine, account_id):
                threading.Event().wait(0.05)
            say("drained")
            continue
        message = json.loads(line)
        index = zlib.crc32(str(message["agent"]).encode()) % WORKERS
        queues[index].put(message)


def _pending(engine: object, account_id: str) -> int:
    with engine.db.connect() as conn:  # type: ignore[attr-defined]
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(tables.outbox)
                .where(tables.outbox.c.account_id == account_id)
                .where(tables.outbox.c.status == "pending")
            ).scalar()
            or 0
        )


if __name__ == "__main__":
    main()
