"""Change events through the Pub/Sub API: decoded subscriber vs. a raw gRPC stream, same run.

Everything real, each part in its own process: the emulator (`presencesync emulator`, HTTP +
Pub/Sub gRPC on loopback), the subscribers, and the load generator (this script's main process,
driving the emulator's control API). Two measurements:

  throughput  a backlog of N change events (written into the emulator's database before it
              starts) read from EARLIEST: events/s through our PubSubSubscriber (gRPC, flow
              control, schema cache, Avro decoding, bitmap field names, typed ChangeEvents)
              vs. a raw stream of the generated stubs that only counts undecoded payloads;
  latency     both subscribe at LATEST; the generator changes Omni statuses at a steady rate
              (each change = an UPDATE and a CREATE event); publish -> receive latency per
              event = receive time in the subscriber minus the start of the control call that
              caused it (same host clock), p50/p95/p99 for both.

Figures are printed as ratios against the raw stream measured in the same run.

    .venv/bin/python bench/pubsub_throughput.py [--events 20000] [--rate 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "/data/UserServicePresenceChangeEvent"


# -- the subscribers (child processes) ---------------------------------------------------------


def _metadata(url: str) -> tuple[tuple[str, str], ...]:
    with httpx.Client(base_url=url) as http:
        app = http.get("/emulator/v1/oauth-clients").json()[0]
        token = http.post(
            "/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
            },
        ).json()
        org = http.get("/emulator/v1/org").json()["org_id"]
    return (
        ("accesstoken", token["access_token"]),
        ("instanceurl", token["instance_url"]),
        ("tenantid", org),
    )


async def _raw(url: str, target: str, preset: str, count: int) -> list[tuple[int, float]]:
    """Generated stubs only: request 100 at a time, count events, decode nothing."""
    import grpc

    from presencesync.salesforce.pubsub.proto import pubsub_api_pb2 as pb
    from presencesync.salesforce.pubsub.proto import pubsub_api_pb2_grpc as pb_grpc

    metadata = _metadata(url)
    requests: asyncio.Queue[Any] = asyncio.Queue()
    await requests.put(
        pb.FetchRequest(
            topic_name=TOPIC,
            replay_preset=pb.EARLIEST if preset == "EARLIEST" else pb.LATEST,
            num_requested=100,
        )
    )

    async def outgoing() -> Any:
        while True:
            yield await requests.get()

    received: list[tuple[int, float]] = []
    async with grpc.aio.insecure_channel(target) as channel:
        call = pb_grpc.PubSubStub(channel).Subscribe(outgoing(), metadata=metadata)
        print("ready", flush=True)
        owed = 100
        async for response in call:
            now = time.time()
            for event in response.events:
                received.append((int.from_bytes(event.replay_id, "big"), now))
            owed -= len(response.events)
            if owed <= 50:
                await requests.put(pb.FetchRequest(topic_name=TOPIC, num_requested=100 - owed))
                owed = 100
            if len(received) >= count:
                call.cancel()
                break
    return received


async def _decoded(url: str, target: str, preset: str, count: int) -> list[tuple[int, float]]:
    from presencesync.salesforce import AsyncSalesforceClient, SalesforceCredentials
    from presencesync.salesforce.pubsub import PubSubSubscriber

    with httpx.Client(base_url=url) as http:
        app = http.get("/emulator/v1/oauth-clients").json()[0]
    credentials = SalesforceCredentials.from_connected_app(url, app, flow="client_credentials")
    received: list[tuple[int, float]] = []
    async with AsyncSalesforceClient(credentials) as sf:
        subscriber = PubSubSubscriber(sf, TOPIC, target=target, secure=False, start=preset)
        async with subscriber:
            print("ready", flush=True)
            async for event in subscriber.events():
                # The position is the emulator's encoding of the opaque replay id (bench only).
                received.append((int.from_bytes(event.replay_id, "big"), time.time()))
                if len(received) >= count:
                    break
    return received


def _child(args: argparse.Namespace) -> None:
    run = _raw if args.role == "raw" else _decoded
    received = asyncio.run(run(args.url, args.target, args.preset, args.count))
    print(json.dumps({"received": received}), flush=True)


# -- the orchestrator (load generator) ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _backlog(db: str, events: int) -> None:
    """Write `events` change events into a fresh emulator database (before it serves)."""
    from presencesync_emulator.app import create_app
    from presencesync_emulator.omni import REASON_MANUAL

    app = create_app(db)
    org = app.state.org
    users = [u["Id"] for u in org.omni.users()[1:]]
    available, busy = org.omni.status_by_dev("Available"), org.omni.status_by_dev("Busy")
    for user in users:
        org.omni.login(user, available, REASON_MANUAL)
    changes = (events - len(users)) // 2
    for i in range(changes):
        org.omni.set_status(
            users[i % len(users)], busy if (i // len(users)) % 2 == 0 else available, REASON_MANUAL
        )
    org.store.close()


def _spawn(role: str, url: str, target: str, preset: str, count: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--role",
            role,
            "--url",
            url,
            "--target",
            target,
            "--preset",
            preset,
            "--count",
            str(count),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{role} subscriber did not start")
    return process


def _result(process: subprocess.Popen[str], timeout: float = 600) -> list[tuple[int, float]]:
    out, _ = process.communicate(timeout=timeout)
    return [tuple(x) for x in json.loads(out.strip().splitlines()[-1])["received"]]  # type: ignore[misc]


def _rate(received: list[tuple[int, float]]) -> float:
    times = [t for _, t in received]
    return (len(times) - 1) / (max(times) - min(times))


def _quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]

    return {"p50": statistics.median(ordered), "p95": q(0.95), "p99": q(0.99), "max": ordered[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="backlog for throughput")
    parser.add_argument("--rate", type=float, default=100.0, help="status changes/s (latency)")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency phase length")
    parser.add_argument("--role", choices=["main", "raw", "decoded"], default="main")
    parser.add_argument("--url", default="")
    parser.add_argument("--target", default="")
    parser.add_argument("--preset", default="EARLIEST")
    parser.add_argument("--count", type=int, default=0)
    args = parser.parse_args()
    if args.role != "main":
        _child(args)
        return

    tmp = tempfile.mkdtemp(prefix="pubsub-bench-")
    db = os.path.join(tmp, "emulator.db")
    started = time.perf_counter()
    _backlog(db, args.events)
    print(
        f"backlog: {args.events} change events written in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    port, grpc_port = _free_port(), _free_port()
    emulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "presencesync.cli",
            "emulator",
            "--port",
            str(port),
            "--pubsub-port",
            str(grpc_port),
            "--db",
            db,
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
        backlog = httpx.get(url + "/emulator/v1/pubsub").json()["topics"][TOPIC]

        print(
            f"\nthroughput: {backlog} events from EARLIEST, one subscriber process at a time",
            flush=True,
        )
        rates = {}
        for role in ("raw", "decoded", "raw", "decoded"):  # interleaved: fairer on a busy box
            child = _spawn(role, url, target, "EARLIEST", backlog)
            children.append(child)
            received = _result(child)
            assert len(received) == backlog and len({p for p, _ in received}) == backlog
            rates.setdefault(role, []).append(_rate(received))
        raw, decoded = max(rates["raw"]), max(rates["decoded"])
        print(f"  raw gRPC stream (undecoded)   {raw:>9.0f} events/s  (best of 2)")
        print(f"  PubSubSubscriber (decoded)    {decoded:>9.0f} events/s  (best of 2)")
        print(f"  ratio decoded / raw           {decoded / raw:>9.2f}")

        changes = int(args.rate * args.seconds)
        expected = 2 * changes
        print(f"\nlatency: {changes} status changes at {args.rate:.0f}/s ({expected} events)")
        subscribers = {
            role: _spawn(role, url, target, "LATEST", expected) for role in ("raw", "decoded")
        }
        children.extend(subscribers.values())
        time.sleep(0.5)  # both streams open at the tip before the first change
        agents = httpx.get(url + "/emulator/v1/users").json()[1:]
        users = [u["id"] for u in agents]
        current = {u["id"]: u["presence_status"] for u in agents}  # every change a real one
        base = int(httpx.get(url + "/emulator/v1/pubsub").json()["latest_replay_id"], 16)
        call_started: list[float] = []
        with httpx.Client(base_url=url) as http:
            begin = time.perf_counter()
            for i in range(changes):
                time.sleep(max(0.0, begin + i / args.rate - time.perf_counter()))
                user = users[i % len(users)]
                current[user] = "Available" if current[user] == "Busy" else "Busy"
                call_started.append(time.time())
                http.put(
                    f"/emulator/v1/users/{user}/omni/status",
                    json={"presence_status": current[user]},
                ).raise_for_status()
        latencies = {}
        for role, process in subscribers.items():
            received = _result(process)
            assert len(received) == expected
            # Positions base+1.. are ours, two per change, in order (one writer).
            latencies[role] = [(t - call_started[(p - base - 1) // 2]) * 1000 for p, t in received]
        for role, label in (("raw", "raw gRPC stream"), ("decoded", "PubSubSubscriber")):
            q = _quantiles(latencies[role])
            print(
                f"  {label:<22} p50 {q['p50']:6.1f} ms  p95 {q['p95']:6.1f} ms  "
                f"p99 {q['p99']:6.1f} ms  max {q['max']:6.1f} ms"
            )
        raw_q, dec_q = _quantiles(latencies["raw"]), _quantiles(latencies["decoded"])
        print(
            f"  ratio decoded / raw     p50 {dec_q['p50'] / raw_q['p50']:.2f}  "
            f"p95 {dec_q['p95'] / raw_q['p95']:.2f}  p99 {dec_q['p99'] / raw_q['p99']:.2f}"
        )
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
        emulator.terminate()
        emulator.wait(timeout=10)


if __name__ == "__main__":
    main()
