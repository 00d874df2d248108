"""One of two engine processes for the concurrency test: waits for `go` on stdin, then submits
`count` state changes for each agent (one thread per agent, so this process's events of one
agent keep their order), and prints `done`."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime

from presencesync.domain import AWAY, READY, StateChangeRequested
from presencesync.service import Engine


def main() -> None:
    database_url, account_id, agents_csv, tag, count_text = sys.argv[1:6]
    engine = Engine(database_url)  # the parent migrated the store
    agents = agents_csv.split(",")
    count = int(count_text)
    print("ready", flush=True)
    sys.stdin.readline()

    def run(agent: str) -> None:
        for n in range(count):
            state = AWAY if n % 2 == 0 else READY
            event = StateChangeRequested(at=datetime.now(UTC), state=state)
            engine.submit(account_id, agent, event, source="conc", source_id=f"{tag}-{agent}-{n}")

    threads = [threading.Thread(target=run, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
