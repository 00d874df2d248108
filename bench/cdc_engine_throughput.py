"""Change events through the subscriber *and the engine*: applied and committed, vs. the
subscriber alone, same run.

Everything real, each part in its own process: the emulator (`presencesync emulator`, HTTP +
Pub/Sub gRPC on loopback, a backlog of Omni status changes of --agents agents written into its
database before it starts), and one consumer process at a time, reading the backlog from
EARLIEST:

  subscriber  our PubSubSubscriber alone (gRPC, flow control, Avro decoding, typed events):
              the baseline (bench/pubsub_throughput.py compares it with a raw stream);
  engine      the server's Change Data Capture path for one account (service/cdc.py's
              AccountSubscription: subscriber -> ChangeAssembler -> engine.submit_many, group
              commit on SQLite with a full fsync per commit -> replay id confirmed after the
              commit), every agent linked and logged in, so each status change runs the rules
              (decide), writes the event log, the snapshot and the history, and the replay id.

Both count change events (a status change is two: the old row's UPDATE and the new row's
CREATE; the engine applies them as one change). The engine run ends when the replay position
it confirmed is the last event, i.e. everything is committed. Printed: events/s of each (best
of 2, interleaved) and their ratio.

    .venv/bin/python bench/cdc_engine_throughput.py [--events 10000] [--agents 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "/data/UserServicePresenceChangeEvent"


# -- consumers (child processes) ----------------------------------------------------------------


async def _subscriber_alone(url: str, target: str, count: int) -> dict[str, Any]:
    from presencesync.salesforce import AsyncSalesforceClient, SalesforceCredentials
    from presencesync.salesforce.pubsub import PubSubSubscriber

    with httpx.Client(base_url=url) as http:
        app = http.get("/emulator/v1/oauth-clients").json()[0]
    credentials = SalesforceCredentials.from_connected_app(url, app, flow="client_credentials")
    async with AsyncSalesforceClient(credentials) as sf:
        subscriber = PubSubSubscriber(sf, TOPIC, target=target, secure=False, start="EARLIEST")
        async with subscriber:
            print("ready", flush=True)
            first = last = 0.0
            seen = 0
            async for _event in subscriber.events():
                seen += 1
                last = time.perf_counter()
                if seen == 1:
                    first = last
                if seen >= count:
                    break
    return {"events": seen, "seconds": last - first}


def _engine_alone(database_url: str, account_id: str, target: str, count: int) -> dict[str, Any]:
    from presencesync.bootstrap import open_engine
    from presencesync.service.cdc import AccountSubscription
    from presencesync.store.replay import SqlReplayStore

    engine = open_engine(database_url)
    store = SqlReplayStore(engine.db, account_id)
    final = None

    async def run() -> dict[str, Any]:
        nonlocal final
        subscription = AccountSubscription(
            engine,
            account_id,
            bridge_lead=0.0,
            subscriber_options={"start": "EARLIEST"},
        )
        task = asyncio.create_task(subscription.run())
        print("ready", flush=True)
        first = None
        while True:
            await asyncio.sleep(0.02)
            if task.done():
                task.result()
            applied = subscription.applied
            if applied and first is None:
                first = time.perf_counter()
            position = await store.load(TOPIC)
            if position is not None and int.from_bytes(position, "big") >= count:
                final = time.perf_counter()
                break
        subscription.stop()
        await task
        assert first is not None
        return {"events": count, "seconds": final - first, "applied": subscription.applied}

    try:
        return asyncio.run(run())
    finally:
        engine.close()


def _child(args: argparse.Namespace) -> None:
    if args.role == "subscriber":
        result = asyncio.run(_subscriber_alone(args.url, args.target, args.count))
    else:
        result = _engine_alone(args.database_url, args.account, args.target, args.count)
    print(json.dumps(result), flush=True)


# -- the orchestrator ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _backlog(db: str, events: int, agents: int) -> int:
    """Agents and `events` change events in a fresh emulator database; returns the count."""
    from presencesync_emulator.app import create_app
    from presencesync_emulator.omni import REASON_MANUAL
    from presencesync_emulator.seed import add_user

    app = create_app(db)
    org = app.state.org
    users = [u["Id"] for u in org.omni.users()[1:]]
    for n in range(len(users), agents):
        users.append(add_user(org.store, "Bench", f"Agent{n}", f"bench.agent{n}@example.com"))
    available, busy = org.omni.status_by_dev("Available"), org.omni.status_by_dev("Busy")
    for user in users:
        org.omni.login(user, available, REASON_MANUAL)
    for i in range((events - len(users)) // 2):
        status = busy if (i // len(users)) % 2 == 0 else available
        org.omni.set_status(users[i % len(users)], status, REASON_MANUAL)
    org.store.close()
    return len(users) + 2 * ((events - len(users)) // 2)


def _provision(database_url: str, url: str, target: str) -> str:
    """An account linked to every emulator agent, logged in, Change Data Capture on."""
    from presencesync.bootstrap import open_engine
    from presencesync.domain import AgentLoggedIn, PresenceStatus
    from presencesync.salesforce import (
        SalesforceClient,
        SalesforceCredentials,
        fetch_omni_configuration,
    )
    from presencesync.service import SalesforceConnection, model
    from presencesync_sandbox.demo import default_omni_config

    engine = open_engine(database_url)
    try:
        with httpx.Client(base_url=url) as http:
            app = http.get("/emulator/v1/oauth-clients").json()[0]
            users = http.get("/emulator/v1/users").json()
        account = engine.create_account("Bench")
        connection = SalesforceConnection(
            url,
            app["client_id"],
            app["username"],
            client_secret=app["client_secret"],
            pubsub_endpoint=f"grpc://{target}",
        )
        engine.set_salesforce_connection(account, connection)
        credentials = SalesforceCredentials.from_connected_app(url, app, "client_credentials")
        with SalesforceClient(credentials) as sf:
            statuses = [PresenceStatus.from_api(s.to_api()) for s in fetch_omni_configuration(sf)]
        engine.save_presence_statuses(account, statuses, "bench")
        engine.save_omni_config(
            account, default_omni_config([s.to_api() for s in statuses]), "bench"
        )
        engine.save_settings(account, {"change_data_capture": True}, "bench")
        for user in users:
            if user["username"] == app["username"]:
                continue
            agent = user["username"].split("@")[0]
            engine.create_agent(account, agent, user["name"], user["id"])
            engine.submit(account, agent, AgentLoggedIn(at=model.utcnow()), source="bench")
        return account
    finally:
        engine.close()


def _spawn(*extra: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, __file__, *extra], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"consumer did not start: {line!r}")
    return process


def _result(process: subprocess.Popen[str], timeout: float = 900) -> dict[str, Any]:
    out, _ = process.communicate(timeout=timeout)
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10000, help="backlog of change events")
    parser.add_argument("--agents", type=int, default=50, help="agents changing status")
    parser.add_argument("--role", choices=["main", "subscriber", "engine"], default="main")
    parser.add_argument("--url", default="")
    parser.add_argument("--target", default="")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--account", default="")
    parser.add_argument("--count", type=int, default=0)
    args = parser.parse_args()
    if args.role != "main":
        _child(args)
        return

    tmp = tempfile.mkdtemp(prefix="cdc-bench-")
    db = os.path.join(tmp, "emulator.db")
    started = time.perf_counter()
    count = _backlog(db, args.events, args.agents)
    took = time.perf_counter() - started
    print(f"backlog: {count} change events of {args.agents} agents ({took:.1f} s)", flush=True)
    port, grpc_port = _free_port(), _free_port()
    emulator = subprocess.Popen(
        [
            *(sys.executable, "-m", "presencesync.cli", "emulator", "--port", str(port)),
            *("--pubsub-port", str(grpc_port), "--db", db),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    url, target = f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}"
    children: list[subprocess.Popen[str]] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.1)
        assert httpx.get(url + "/emulator/v1/pubsub").json()["topics"][TOPIC] == count
        rates: dict[str, list[float]] = {}
        for round_no in range(2):  # interleaved: fairer on a busy machine
            child_args = ["--count", str(count)]
            sub = _spawn("--role", "subscriber", "--url", url, "--target", target, *child_args)
            children.append(sub)
            result = _result(sub)
            assert result["events"] == count
            rates.setdefault("subscriber", []).append(result["events"] / result["seconds"])

            database_url = f"sqlite:///{tmp}/presencesync-{round_no}.db"
            account = _provision(database_url, url, target)
            eng = _spawn(
                "--role",
                "engine",
                "--database-url",
                database_url,
                "--account",
                account,
                "--target",
                target,
                *child_args,
            )
            children.append(eng)
            result = _result(eng)
            rates.setdefault("engine", []).append(result["events"] / result["seconds"])
            print(
                f"  round {round_no + 1}: subscriber {rates['subscriber'][-1]:.0f} events/s, "
                f"subscriber + engine {rates['engine'][-1]:.0f} events/s "
                f"({result['applied']} changes applied)",
                flush=True,
            )
        alone, full = max(rates["subscriber"]), max(rates["engine"])
        print(f"\nPubSubSubscriber alone           {alone:>8.0f} change events/s  (best of 2)")
        print(f"subscriber + engine (committed)  {full:>8.0f} change events/s  (best of 2)")
        print(f"ratio engine / subscriber        {full / alone:>8.2f}")
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
        emulator.terminate()
        emulator.wait(timeout=10)


if __name__ == "__main__":
    main()
