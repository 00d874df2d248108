"""Durable engine throughput: events/s and submit->commit latency with 10k agents.

Every event is a real unit of work: the agent's snapshot is loaded (row-locked on PostgreSQL),
`decide` runs, and the event log row, new snapshot, history entry and outbox command are
committed before `submit` returns (SQLite: WAL, synchronous=FULL). Group commit batches
concurrent submitters into one transaction.

Modes per backend:
  saturation  closed loop: --threads submitters submit back to back for --duration seconds
  fixed rate  open loop: events are due at --rate per second; latency counts from submit
  no group    saturation with group commit off (one transaction per event), for comparison
  raw insert  the baseline: the same rows an event writes (event log row, snapshot update,
              history row, outbox row) as plain batched DBAPI statements (executemany) through
              the same driver, connection settings (WAL, synchronous=FULL) and batch size as
              group commit at saturation (--threads events per transaction), rows prepared in
              advance: what the store costs without the engine. The ratio engine/raw is printed.

    python bench/engine_throughput.py    # SQLite, and PostgreSQL if PRESENCESYNC_TEST_POSTGRES_URL
    python bench/engine_throughput.py --postgres-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from presencesync.bootstrap import open_engine
from presencesync.domain import (
    AWAY,
    READY,
    AgentLoggedIn,
    PresenceStatus,
    StateChangeRequested,
    StatusOption,
    decide,
    new_agent,
)
from presencesync.service import Engine
from presencesync.store import tables

STATUSES = [
    PresenceStatus("0N5000000000001", "Available", "Available", StatusOption.ONLINE, ("Case",)),
    PresenceStatus("0N5000000000002", "Busy", "Busy", StatusOption.BUSY),
]
CONFIG = {
    "enabled": True,
    "presence_mappings": [
        {"presence_status": "Available", "busy": False},
        {"presence_status": "Busy", "busy": True},
    ],
    "state_mappings": [
        {"state": major, "presence_status": "Available" if major == "Ready" else "Busy"}
        for major in ("Ready", "Busy", "Wrap", "Away", "ExtendedAway")
    ],
}


@dataclass
class Row:
    backend: str
    mode: str
    offered: str
    events: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def cells(self) -> list[str]:
        lat = sorted(self.latencies_ms)
        p50 = statistics.median(lat) if lat else float("nan")
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
        return [
            self.backend,
            self.mode,
            self.offered,
            str(self.events),
            f"{self.rate:,.0f}",
            f"{p50:.1f}",
            f"{p99:.1f}",
        ]


def seed(engine: Engine, agents: int) -> tuple[str, list[str]]:
    """An account with `agents` logged-in agents, inserted in bulk (provisioning 10k agents
    one API call at a time is not what this measures)."""
    account = engine.create_account("bench")
    engine.save_presence_statuses(account, STATUSES, actor="bench")
    config = engine.save_omni_config(account, CONFIG, actor="bench").config
    ids = [f"agent{n:06d}" for n in range(agents)]
    now = datetime.now(UTC)
    rows = []
    for n, agent_id in enumerate(ids):
        snapshot = decide(new_agent(agent_id), AgentLoggedIn(at=now), config).agent
        rows.append(
            {
                "account_id": account,
                "agent_id": agent_id,
                "name": f"Agent {n}",
                "salesforce_user_id": f"005{n:015d}",
                "snapshot": snapshot.to_json(),
                "version": 0,
                "updated_at": now,
                "routable": False,  # keeps the router out of the measurement's way
                "state_since": now,
            }
        )
    with engine.db.begin() as conn:
        for start in range(0, len(rows), 2000):
            conn.execute(sa.insert(tables.agents), rows[start : start + 2000])
    return account, ids


class Feed:
    """Round robin over the agents; each agent alternates Away and Ready. One agent's events
    are never in flight twice at once (so its order is the submission order)."""

    def __init__(self, agents: list[str]) -> None:
        self.agents = agents
        self.lock = threading.Lock()
        self.next = 0
        self.count: dict[str, int] = {}

    def take(self) -> tuple[str, StateChangeRequested]:
        with self.lock:
            agent = self.agents[self.next % len(self.agents)]
            self.next += 1
            n = self.count.get(agent, 0)
            self.count[agent] = n + 1
        state = AWAY if n % 2 == 0 else READY
        return agent, StateChangeRequested(at=datetime.now(UTC), state=state)


def saturation(engine: Engine, account: str, feed: Feed, threads: int, duration: float) -> Row:
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def worker() -> None:
        mine: list[float] = []
        while time.monotonic() < stop_at:
            agent, event = feed.take()
            start = time.perf_counter()
            engine.submit(account, agent, event, source="bench")
            mine.append((time.perf_counter() - start) * 1000)
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    return Row("", "saturation", f"{threads} threads", len(latencies), elapsed, latencies)


def fixed_rate(engine: Engine, account: str, feed: Feed, rate: float, duration: float) -> Row:
    latencies: list[float] = []
    lock = threading.Lock()
    total = int(rate * duration)

    def one(due: float) -> None:
        agent, event = feed.take()
        start = time.perf_counter()
        engine.submit(account, agent, event, source="bench")
        with lock:
            # From the moment the event was due: waiting for a free submitter counts too.
            latencies.append((time.perf_counter() - min(due, start)) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=128) as pool:
        for n in range(total):
            due = started + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, due)
    elapsed = time.perf_counter() - started
    return Row("", "fixed rate", f"{rate:,.0f}/s", len(latencies), elapsed, latencies)


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="presencesync-bench-") as folder:
        yield f"sqlite:///{Path(folder) / 'bench.db'}"


@contextmanager
def postgres_url(base: str) -> Iterator[str]:
    import psycopg

    plain = base.replace("postgresql+psycopg://", "postgresql://")
    schema = f"ps_bench_{secrets.token_hex(4)}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        separator = "&" if "?" in base else "?"
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _sample_rows(agents: list[str]) -> list[dict[str, object]]:
    """What the engine writes for one Away <-> Ready change, per agent, serialised once."""
    import json

    from presencesync.domain import StateCatalog, command_payload, validate_config
    from presencesync.service.codec import event_to_json, event_type
    from presencesync.service.uow import decision_to_json

    config = validate_config(CONFIG, StateCatalog.default(), STATUSES).config
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    for agent_id in agents:
        base = decide(new_agent(agent_id), AgentLoggedIn(at=now), config).agent
        event = StateChangeRequested(at=now, state=AWAY)
        decision = decide(base, event, config)
        rows.append(
            {
                "agent_id": agent_id,
                "event_type": event_type(event),
                "event": json.dumps(event_to_json(event)),
                "decision": json.dumps(decision_to_json(decision)),
                "snapshot": json.dumps(decision.agent.to_json()),
                "payload": json.dumps(command_payload(decision.commands[0])),
            }
        )
    return rows


def raw_insert(engine: Engine, account: str, agents: list[str], batch: int, duration: float) -> Row:
    """The baseline: the same four row writes per event, batched, through the same driver."""
    postgres = engine.postgres
    mark = "%s" if postgres else "?"
    json_mark = "%s::json" if postgres else "?"
    with engine.db.connect() as conn:
        ids = dict(
            conn.execute(
                sa.select(tables.agents.c.agent_id, tables.agents.c.id).where(
                    tables.agents.c.account_id == account
                )
            ).all()
        )
    rows = _sample_rows(agents)
    m, j = mark, json_mark
    insert_event = (
        "INSERT INTO event_log (account_id, agent_id, seq, source, source_id, event_type, "
        f"event, received_at, applied_at, outcome, decision) VALUES ({m}, {m}, {m}, {m}, {m}, "
        f"{m}, {j}, {m}, {m}, {m}, {j})" + (" RETURNING id" if postgres else "")
    )
    update_agent = (
        f"UPDATE agents SET snapshot = {j}, version = {m}, updated_at = {m}, routable = {m}, "
        f"state_since = {m} WHERE id = {m}"
    )
    insert_history = (
        "INSERT INTO history (account_id, agent_id, seq, at, side, from_state, to_state, cause, "
        f"rule, caused_by_seq, latency_ms, event_id) VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}, "
        f"{m}, {m}, {m}, {m}, {m})"
    )
    insert_outbox = (
        "INSERT INTO outbox (account_id, agent_id, command_id, payload, status, attempts, "
        f"next_attempt_at, created_at) VALUES ({m}, {m}, {m}, {j}, {m}, {m}, {m}, {m})"
    )
    raw = engine.db.raw_connection()
    latencies: list[float] = []
    events = 0
    version = 1_000_000
    started = time.monotonic()
    try:
        cursor = raw.cursor()
        while time.monotonic() - started < duration:
            begin = time.perf_counter()
            now = datetime.now(UTC)
            moment: object = now if postgres else now.isoformat(sep=" ").replace("+00:00", "")
            chunk = [rows[(events + i) % len(rows)] for i in range(batch)]
            version += 1
            if not postgres:
                cursor.execute("BEGIN IMMEDIATE")
            event_params = [
                (
                    account,
                    r["agent_id"],
                    version,
                    "bench",
                    None,
                    r["event_type"],
                    r["event"],
                    moment,
                    moment,
                    "applied",
                    r["decision"],
                )
                for r in chunk
            ]
            if postgres:
                cursor.executemany(insert_event, event_params, returning=True)
                event_ids = []
                while True:
                    event_ids.append(cursor.fetchone()[0])
                    if not cursor.nextset():
                        break
            else:
                cursor.executemany(insert_event, event_params)
                last = cursor.execute("SELECT last_insert_rowid()").fetchone()[0]
                event_ids = list(range(last - len(chunk) + 1, last + 1))
            cursor.executemany(
                update_agent,
                [
                    (r["snapshot"], version, moment, False, moment, ids[r["agent_id"]])
                    for r in chunk
                ],
            )
            cursor.executemany(
                insert_history,
                [
                    (
                        account,
                        r["agent_id"],
                        version,
                        moment,
                        "contact_center",
                        "Ready",
                        "Away",
                        "agent",
                        None,
                        None,
                        None,
                        event_id,
                    )
                    for r, event_id in zip(chunk, event_ids, strict=True)
                ],
            )
            cursor.executemany(
                insert_outbox,
                [
                    (
                        account,
                        r["agent_id"],
                        f"{r['agent_id']}:{version}",
                        r["payload"],
                        "done",
                        0,
                        moment,
                        moment,
                    )
                    for r in chunk
                ],
            )
            if postgres:
                raw.commit()
            else:
                cursor.execute("COMMIT")
            elapsed = (time.perf_counter() - begin) * 1000
            latencies.extend([elapsed] * batch)
            events += batch
    finally:
        raw.close()
    seconds = time.monotonic() - started
    return Row("", "raw batched insert", f"{batch} events/tx", events, seconds, latencies)


def run_backend(
    name: str, url: str, args: argparse.Namespace, log: Callable[[str], None]
) -> list[Row]:
    rows: list[Row] = []
    engine = open_engine(url, group_commit=True)
    try:
        started = time.monotonic()
        account, agents = seed(engine, args.agents)
        log(f"{name}: {len(agents)} agents seeded in {time.monotonic() - started:.1f}s")
        feed = Feed(agents)
        # The baseline first and the engine right after, so that both see the same machine.
        rows.append(raw_insert(engine, account, agents, args.threads, args.duration))
        rows.append(saturation(engine, account, feed, args.threads, args.duration))
        rows.append(fixed_rate(engine, account, feed, args.rate, args.duration))
    finally:
        engine.close()
    engine = open_engine(url, group_commit=False, migrate=False)
    try:
        with engine.db.connect() as conn:
            account_id = conn.execute(sa.select(tables.accounts.c.id)).scalar_one()
        row = saturation(engine, account_id, feed, args.threads, args.duration / 2)
        row.mode = "no group commit"
        rows.append(row)
    finally:
        engine.close()
    for row in rows:
        row.backend = name
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per mode")
    parser.add_argument("--threads", type=int, default=64, help="submitters at saturation")
    parser.add_argument("--rate", type=float, default=200.0, help="offered events/s")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("PRESENCESYNC_BENCH_POSTGRES_URL")
        or os.environ.get("PRESENCESYNC_TEST_POSTGRES_URL"),
        help="PostgreSQL server to measure too (a scratch schema is created and dropped)",
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, flush=True)

    rows: list[Row] = []
    if not args.skip_sqlite:
        with sqlite_url() as url:
            rows += run_backend("sqlite", url, args, log)
    if args.postgres_url:
        with postgres_url(args.postgres_url) as url:
            rows += run_backend("postgresql", url, args, log)
    header = ["backend", "mode", "offered", "events", "events/s", "p50 ms", "p99 ms"]
    table = [header, *[r.cells() for r in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print()
    for n, line in enumerate(table):
        print(" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
        if n == 0:
            print("-+-".join("-" * w for w in widths))
    print(f"\n{args.agents} agents, {os.cpu_count()} CPUs; latency = submit -> commit")
    for backend in dict.fromkeys(r.backend for r in rows):
        raw = next(r for r in rows if r.backend == backend and r.mode == "raw batched insert")
        engine_row = next(r for r in rows if r.backend == backend and r.mode == "saturation")
        print(
            f"{backend}: engine at saturation {engine_row.rate:,.0f} events/s = "
            f"{engine_row.rate / raw.rate:.2f}x the raw batched insert of the same rows "
            f"({raw.rate:,.0f} events/s, {4 * raw.rate:,.0f} rows/s)"
        )


if __name__ == "__main__":
    main()
