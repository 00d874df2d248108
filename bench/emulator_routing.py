"""Omni-Channel routing throughput of the org emulator (in-process, no HTTP).

    .venv/bin/python bench/emulator_routing.py [--agents 500] [--work 1000] [--db :memory:]

Logs every agent in, creates work on random channels, accepts and closes it, and changes
statuses; prints operations per second for each phase.
"""

from __future__ import annotations

import argparse
import random
import time

from presencesync_emulator.omni import REASON_MANUAL, Omni
from presencesync_emulator.seed import add_user, seed_if_empty
from presencesync_emulator.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--work", type=int, default=1000)
    parser.add_argument("--db", default=":memory:")
    args = parser.parse_args()
    rng = random.Random(7)
    store = Store(args.db)
    seed_if_empty(store)
    omni = Omni(store)
    users = [
        add_user(store, "Bench", f"Agent{n}", f"bench{n}@example.com") for n in range(args.agents)
    ]
    available = omni.status_by_dev("Available")
    busy = omni.status_by_dev("Busy")

    def phase(name: str, count: int, action: object) -> None:
        start = time.perf_counter()
        for i in range(count):
            action(i)  # type: ignore[operator]
        elapsed = time.perf_counter() - start
        print(f"{name:<28} {count:>6} ops  {count / elapsed:>9.0f} ops/s  ({elapsed:.2f} s)")

    phase("login", len(users), lambda i: omni.login(users[i], available, REASON_MANUAL))
    works: list[str] = []

    def create(i: int) -> None:
        work, _ = omni.create_work(rng.choice(["Case", "Chat", "Lead"]), f"item {i}")
        if work["id"]:
            works.append(work["id"])

    phase("create + route work", args.work, create)
    phase("accept", len(works), lambda i: omni.accept(works[i]))
    phase("close (frees capacity)", len(works), lambda i: omni.close(works[i]))
    phase(
        "status change",
        len(users),
        lambda i: omni.set_status(users[i], busy if i % 2 else available, REASON_MANUAL),
    )
    store.close()


if __name__ == "__main__":
    main()
