"""End-to-end sync latency under load: every part in its own process, measured by push.

    python bench/e2e_sync.py --agents 1000 --rate 100,200,400 --duration 20 --burst 1000
    python bench/e2e_sync.py --agents 10000 --servers 4 \
        --postgres-url postgresql://postgres@127.0.0.1:5432/test

Processes (nothing shares a CPU-bound event loop with the server it measures):
- the server: `presencesync serve` (SQLite), or `--servers K` of them on one PostgreSQL schema;
- the Salesforce org emulator: `presencesync emulator`, one per shard (one org per account);
- the load generators: one process per shard, each holding its agents' simulated consoles
  (the bridge protocol of docs/bridge-protocol.md against the server, and the emulator's
  console WebSocket on the other side: commands run through the toolkit, echoes come back
  tagged with the command id), simulated ContactPads (`/api/v1/agents/{id}/stream`), and the
  API callers (presencesync API as the agents and a supervisor, the emulator's control API as
  the Omni-Channel widget and as Omni routing work).

A shard is one account (tenant) with its own emulated org: at most --shard-size agents, so that
no process needs more sockets than this machine's open-file limit allows (see --help of
--shard-size). A call is routed among its account's agents.

The mix, at a fixed offered rate of initiated changes (open loop): contact-center state changes,
Omni-Channel status changes in the widget, Salesforce work (Omni assigns it; the agent accepts,
then closes it), calls (offered by the router, answered, hung up, Ready after wrap), logout and
login again. Each agent has one change in flight at a time, so that what each change must cause
is known exactly: a contact-center change exactly one Salesforce command, a Salesforce-side
change none (and a contact-center state, pushed to ContactPad).

Latency, per direction, from the moment the change is sent:
- contact center -> Salesforce: until the `command` frame reaches the agent's console;
- Salesforce -> contact center: until ContactPad's WebSocket pushes the agent in the new state
  (measured for agents with a ContactPad open: --contactpads).

Counted: commands per contact-center change (must be 1.00), commands nobody asked for (loops),
calls offered to or answered by an agent the server knew to be busy (double routings: must be 0),
changes lost (nothing arrived within --timeout), HTTP errors, server RSS (psutil).

`--product-src DIR` runs the server and the emulator from another checkout's `src` (the
baseline of a before/after comparison); the load generator is always this one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import random
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_ledger import CC_TO_SF, SF_TO_CC, Ledger, merge_reports, summarize

try:
    import orjson

    def dumps(value: Any) -> str:
        return orjson.dumps(value).decode()

    loads = orjson.loads
except ImportError:  # the bench runs without it, a little slower
    dumps = json.dumps
    loads = json.loads

# The demo's mapping for the emulator's seed statuses
# (presencesync_sandbox.demo.default_omni_config):
# state -> presence status (a minor state falls back to its major), presence status -> state.
STATE_TO_PRESENCE = {
    "Ready": "Available",
    "Busy": "On_a_Call",
    "Wrap": "Busy",
    "Away": "On_Break",
    "ExtendedAway": "Busy",
    "ExtendedAway/Lunch": "Lunch",
    "ExtendedAway/Training": "Training",
}
PRESENCE_TO_STATE = {
    "Available": "Ready",
    "On_Break": "Away/Break",
    "Lunch": "ExtendedAway/Lunch",
    "Training": "ExtendedAway/Training",
    "Busy": "Away",  # busy statuses without a Maps to: Away
    "On_a_Call": "Away",
}
CC_STATES = ("Ready", "Away/Break", "ExtendedAway/Lunch", "ExtendedAway/Training", "Away")
SF_STATUSES = ("Available", "On_Break", "Lunch", "Training", "Busy")
BUSY_INBOUND = "Busy/Inbound"
WRAP_AUTO = "Wrap/Auto"

# Initiated changes; reactions (accept, close, answer, hangup, Ready, login) follow on their own.
DEFAULT_MIX = "state=35,status=25,work=12,call=12,logout=6"
CHANGE_COUNTS = ("cc_changes", "sf_changes", "other_changes")
MAX_CONNECTIONS = 128  # HTTP connections per load generator
# A change is not started while this many requests of the generator are unanswered: the
# offered rate is then not reached, which the report shows (changes/s and `skipped`).
MAX_IN_FLIGHT = 512
MAX_WATCHED_CALLS = 20  # queued calls a generator looks up (no ContactPad shows them)


def mapped_presence(state: str) -> str | None:
    if state == "LoggedOut":
        return None
    return STATE_TO_PRESENCE.get(state) or STATE_TO_PRESENCE[state.split("/")[0]]


def state_after_status(state: str, status: str) -> str:
    """Rule 2: the state a widget change to `status` leaves an idle agent in."""
    if mapped_presence(state) == status:
        return state  # the current state already maps to it: no change
    return PRESENCE_TO_STATE[status]


# --- the simulated console, ContactPad and agent -------------------------------------------


class Refused(Exception):
    pass


@dataclass
class ShardPlan:
    index: int
    account_id: str
    supervisor_token: str
    agents: list[tuple[str, str, str]]  # (agent_id, salesforce_user_id, token)
    server_urls: list[str]
    emulator_url: str
    contactpads: int
    source_ips: int
    mix: dict[str, float]
    timeout: float
    seed: int


class Agent:
    """One agent: its console (bridge + toolkit sockets), its ContactPad, and what the load
    generator knows about it (its own changes are the only ones made)."""

    __slots__ = (
        "acked_work",
        "answering",
        "api",
        "auth",
        "bridge",
        "call",
        "calls",
        "command_lock",
        "console",
        "executed",
        "expect",
        "id",
        "inflight",
        "local_ip",
        "logged_in",
        "next_call",
        "online",
        "pad",
        "pad_server",
        "presence",
        "reactions",
        "running",
        "seq",
        "server",
        "sf_ack_seq",
        "sf_pending",
        "state",
        "status_ids",
        "talking",
        "token",
        "user_id",
        "w",
        "work",
        "work_seqs",
    )

    def __init__(self, w: Worker, index: int, agent_id: str, user_id: str, token: str) -> None:
        self.w = w
        self.id = agent_id
        self.user_id = user_id
        self.token = token
        self.auth = {"Authorization": f"Bearer {token}"}
        servers = w.plan.server_urls
        self.server = servers[index % len(servers)]  # the bridge
        self.api = servers[(index + 1) % len(servers)]  # API calls (as behind a balancer)
        # ContactPad on another server than the bridge: a Salesforce-side change committed by
        # the bridge's process reaches it across processes.
        self.pad_server = servers[(index + 1) % len(servers)]
        self.local_ip = f"127.0.0.{1 + index % w.plan.source_ips}"
        self.console: Any = None
        self.bridge: Any = None
        self.pad: Any = None
        self.seq = 0
        self.calls: dict[str, asyncio.Future[Any]] = {}
        self.next_call = 0
        self.expect: tuple[str, str, str | None] | None = None  # command id, kind, status id
        self.executed: dict[str, tuple[bool, str | None]] = {}
        self.command_lock = asyncio.Lock()  # one command at a time, in arrival order
        self.status_ids: dict[str, str] = w.status_ids
        self.online = False
        self.logged_in = False
        self.state = "LoggedOut"
        self.presence: str | None = None
        self.work: dict[str, bool] = {}  # open work id -> accepted
        self.work_seqs: dict[int, str] = {}  # seq of a forwarded WorkAccepted -> work id
        self.acked_work: set[str] = set()  # accepted work the server acknowledged, not closed
        self.call: str | None = None  # answered call, until its wrap ends (Ready picked)
        self.talking = False  # answered, not yet hung up
        self.answering: set[str] = set()
        self.inflight = False
        self.running = 0  # commands received and not yet run
        # A Salesforce-side change not yet acknowledged by the server: until when we wait.
        self.sf_pending = 0.0
        self.sf_ack_seq = 0
        self.reactions: list[tuple[float, str, Any]] = []

    # --- state -------------------------------------------------------------------------------

    def idle(self) -> bool:
        return (
            not self.inflight
            and self.sf_pending < time.monotonic()
            and self.running == 0
            and not self.w.ledger.is_waiting(self.id)
        )

    def free(self) -> bool:
        """Idle, logged in, not on a call, no Salesforce work: may start any change."""
        return self.idle() and self.logged_in and self.call is None and not self.work

    # --- connecting --------------------------------------------------------------------------

    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        w = self.w
        options: dict[str, Any] = {"ping_interval": None, "max_queue": 64, "proxy": None}
        if w.plan.source_ips > 1:
            options["local_addr"] = (self.local_ip, 0)
        emu = w.plan.emulator_url.replace("http://", "ws://")
        self.console = await connect(f"{emu}/emulator/v1/users/{self.user_id}/console", **options)
        hello = loads(await self.console.recv())
        self.online = bool(hello.get("online"))
        status = hello.get("status") or {}
        self.presence = status.get("statusApiName")
        w.spawn(self._console_reader())
        self.bridge = await connect(
            f"{self.server.replace('http://', 'ws://')}/api/v1/bridge", **options
        )
        try:
            current = await self.toolkit("getServicePresenceStatusId")
        except Refused:
            current = None  # rejected while offline
        works = loads((await self.toolkit("getAgentWorks")).get("works") or "[]")
        await self.bridge.send(
            dumps(
                {
                    "type": "hello",
                    "token": self.token,
                    "session": uuid.uuid4().hex,
                    "seq": self.seq,
                    "salesforce_user_id": self.user_id,
                    "presence_status": (current or {}).get("statusApiName"),
                    "status_id": (current or {}).get("statusId"),
                    "open_work": [
                        {
                            "work_id": x["workId"],
                            "work_item_id": x.get("workItemId"),
                            "accepted": bool(x.get("isEngaged")),
                        }
                        for x in works
                    ],
                    "client": "presencesync-e2e-bench/1",
                }
            )
        )
        welcome = loads(await self.bridge.recv())
        if welcome.get("type") != "welcome":
            raise RuntimeError(f"bridge of {self.id} refused: {welcome}")
        w.spawn(self._bridge_reader())
        if self.pad_wanted():
            headers = {"Authorization": f"Bearer {self.token}"}
            self.pad = await connect(
                f"{self.pad_server.replace('http://', 'ws://')}/api/v1/agents/{self.id}/stream",
                additional_headers=headers,
                **options,
            )
            w.spawn(self._pad_reader())

    def pad_wanted(self) -> bool:
        return self.w.index_of[self.id] < self.w.plan.contactpads

    async def close(self) -> None:
        for ws in (self.pad, self.bridge, self.console):
            if ws is not None:
                with contextlib.suppress(Exception):
                    await ws.close()

    # --- the toolkit (emulator console socket) -------------------------------------------------

    async def toolkit(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self.next_call += 1
        call_id = f"c{self.next_call}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.calls[call_id] = future
        try:
            await self.console.send(
                dumps({"type": "call", "id": call_id, "method": method, "params": params or {}})
            )
            return await asyncio.wait_for(future, 30)
        finally:
            self.calls.pop(call_id, None)

    async def _console_reader(self) -> None:
        try:
            async for raw in self.console:
                message = loads(raw)
                kind = message.get("type")
                if kind == "event":
                    await self._toolkit_event(message["name"], message.get("params") or {})
                elif kind in ("result", "error"):
                    future = self.calls.get(message.get("id"))
                    if future is None or future.done():
                        continue
                    if kind == "result":
                        future.set_result(message.get("result"))
                    else:
                        future.set_exception(Refused(str(message.get("error"))))
        except Exception as exc:
            self.w.lost_socket("console", exc)

    async def _toolkit_event(self, name: str, params: dict[str, Any]) -> None:
        short = name.removeprefix("lightning:omniChannel")
        if short == "LoginSuccess":
            self.online = True
            if "statusApiName" not in params:
                sid = str(params.get("statusId"))[:15]
                for dev, known in self.status_ids.items():
                    if known[:15] == sid:
                        params = {**params, "statusApiName": dev}
        elif short == "StatusChanged":
            self.online = True
        elif short == "Logout":
            self.online = False
            self.work = {k: v for k, v in self.work.items() if v}  # assigned work is requeued
        elif short == "WorkAssigned":
            self.work[params["workId"]] = False
            self.react(0.05 + 0.2 * self.w.rng.random(), "accept", params["workId"])
        elif short == "WorkAccepted":
            self.work[params["workId"]] = True
        elif short in ("WorkClosed", "WorkDeclined"):
            self.work.pop(params.get("workId"), None)
        else:
            return  # WorkloadChanged and the like: not forwarded (docs/bridge-protocol.md)
        self.seq += 1
        message: dict[str, Any] = {"type": "event", "seq": self.seq, "name": name}
        message["params"] = params
        command_id = self._tag(short, params)
        if command_id is not None:
            message["command_id"] = command_id
        elif short in ("StatusChanged", "WorkAccepted", "WorkClosed"):
            self.sf_ack_seq = self.seq  # the server has the change once this is acknowledged
        if short == "WorkAccepted":
            self.work_seqs[self.seq] = params["workId"]
        await self.bridge.send(dumps(message))

    def _tag(self, short: str, params: dict[str, Any]) -> str | None:
        """The echo of the command being run carries its id (as bridge.js does)."""
        expect = self.expect
        if expect is None or short not in ("LoginSuccess", "StatusChanged", "Logout"):
            return None
        command_id, kind, status_id = expect
        same = str(params.get("statusId"))[:15] == str(status_id)[:15]
        if short == "LoginSuccess" and kind != "omni_logout" and same:
            return command_id
        ours = params.get("reason") in ("OmniToolkitStatusChange", "OmniLoginStatusChange")
        if short == "StatusChanged" and kind != "omni_logout" and same and ours:
            return command_id
        if short == "Logout" and kind == "omni_logout":
            return command_id
        return None

    # --- the bridge (server socket) --------------------------------------------------------

    async def _bridge_reader(self) -> None:
        w = self.w
        try:
            async for raw in self.bridge:
                message = loads(raw)
                kind = message.get("type")
                if kind == "command":
                    now = time.monotonic()
                    command_kind = message.get("kind")
                    presence = (
                        None if command_kind == "omni_logout" else message.get("presence_status")
                    )
                    w.ledger.command(self.id, str(message.get("command_id")), presence, now)
                    # Run it beside the reader (as bridge.js does): the socket keeps being read.
                    self.running += 1
                    w.spawn(self._run_command(message))
                elif kind == "event_ack":
                    seq = message.get("seq")
                    work_id = self.work_seqs.pop(seq, None)
                    if work_id is not None and work_id in self.work:
                        self.acked_work.add(work_id)
                    if seq == self.sf_ack_seq:
                        self.sf_pending = 0.0
                elif kind == "error":
                    w.ledger.count("bridge_errors")
        except Exception as exc:
            w.lost_socket("bridge", exc)

    async def _run_command(self, message: dict[str, Any]) -> None:
        try:
            async with self.command_lock:
                await self._run_one(message)
        finally:
            self.running -= 1

    async def _run_one(self, message: dict[str, Any]) -> None:
        command_id = str(message.get("command_id"))
        if command_id in self.executed:
            ok, error = self.executed[command_id]
        else:
            kind = message.get("kind")
            presence = message.get("presence_status")
            status_id = message.get("status_id") or self.status_ids.get(str(presence))
            ok, error = True, None
            try:
                if kind == "omni_logout":
                    if self.online:
                        self.expect = (command_id, "omni_logout", None)
                        await self.toolkit("logout")
                else:
                    self.expect = (command_id, str(kind), status_id)
                    method = "setServicePresenceStatus" if kind == "set_presence" else "login"
                    await self.toolkit(method, {"statusId": status_id})
            except Refused as exc:
                ok, error = False, str(exc)
                self.w.ledger.count("command_failures")
            finally:
                self.expect = None
            self.executed[command_id] = (ok, error)
            if len(self.executed) > 16:
                self.executed.pop(next(iter(self.executed)))
        ack: dict[str, Any] = {"type": "ack", "command_id": command_id, "ok": ok}
        if error is not None:
            ack["error"] = error
        await self.bridge.send(dumps(ack))

    # --- ContactPad ------------------------------------------------------------------------

    async def _pad_reader(self) -> None:
        w = self.w
        try:
            async for raw in self.pad:
                message = loads(raw)
                if message.get("type") != "agent":
                    continue
                view = message["agent"]
                w.ledger.pushed_state(self.id, view["state"], time.monotonic())
                offered = view.get("offered_interaction_id")
                if offered and offered not in self.answering and self.call != offered:
                    self.answering.add(offered)
                    self.react(0.05, "answer", offered)
        except Exception as exc:
            w.lost_socket("contactpad", exc)

    # --- reactions (what an agent does next, once free to) ----------------------------------

    def react(self, delay: float, what: str, arg: Any = None) -> None:
        self.reactions.append((time.monotonic() + delay, what, arg))
        self.w.reacting.add(self)

    def busy_for_double_routing(self) -> bool:
        """The server has acknowledged that this agent works on something: accepted
        Salesforce work (not yet being closed) or an answered call (not yet hung up)."""
        return bool(self.acked_work) or self.talking


@dataclass
class Worker:
    plan: ShardPlan
    ledger: Ledger = field(default_factory=Ledger)
    agents: list[Agent] = field(default_factory=list)
    index_of: dict[str, int] = field(default_factory=dict)
    reacting: set[Agent] = field(default_factory=set)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    status_ids: dict[str, str] = field(default_factory=dict)
    http: Any = None
    rng: random.Random = field(default_factory=random.Random)
    in_flight: int = 0  # HTTP requests sent or waiting to be
    gate: asyncio.Semaphore | None = None
    queued_calls: set[str] = field(default_factory=set)

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def lost_socket(self, which: str, exc: BaseException) -> None:
        if not isinstance(exc, asyncio.CancelledError):
            self.ledger.count(f"lost_{which}_sockets")

    async def request(
        self, method: str, url: str, *, expected: tuple[int, ...] = (), **kwargs: Any
    ) -> Any:
        # At most MAX_CONNECTIONS requests in the client at once: httpx's pool gets slow
        # (quadratic) with a long queue, and the generator must not become the bottleneck.
        assert self.gate is not None
        self.in_flight += 1
        try:
            async with self.gate:
                response = await self.http.request(method, url, **kwargs)
        except Exception:
            self.ledger.count(f"{self.ledger.phase}:http_errors")
            return None
        finally:
            self.in_flight -= 1
        if response.status_code in expected:
            self.ledger.count(f"{self.ledger.phase}:refused_{response.status_code}")
        elif response.status_code >= 400:
            self.ledger.count(f"{self.ledger.phase}:http_errors")
            what = "/".join(p for p in url.split("/")[5:] if not any(c.isdigit() for c in p))
            self.ledger.count(f"http_{response.status_code} {method} {what}")
        return response

    # --- setup ---------------------------------------------------------------------------------

    async def setup(self) -> dict[str, Any]:
        import httpx

        plan = self.plan
        self.rng.seed(plan.seed)
        self.gate = asyncio.Semaphore(MAX_CONNECTIONS)
        limits = httpx.Limits(
            max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
        )
        self.http = httpx.AsyncClient(timeout=60, limits=limits, trust_env=False)
        statuses = (
            await self.http.get(f"{plan.emulator_url}/emulator/v1/presence-statuses")
        ).json()
        self.status_ids = {s["developer_name"]: s["id"] for s in statuses}
        for index, (agent_id, user_id, token) in enumerate(plan.agents):
            self.index_of[agent_id] = index
            self.agents.append(Agent(self, index, agent_id, user_id, token))
        started = time.monotonic()
        gate = asyncio.Semaphore(64)

        async def one(agent: Agent) -> None:
            async with gate:
                await agent.connect()

        await asyncio.gather(*(one(a) for a in self.agents))
        connected = time.monotonic() - started
        started = time.monotonic()
        await self.login_all()
        return {"connect_s": connected, "login_s": time.monotonic() - started}

    async def login_all(self) -> None:
        gate = asyncio.Semaphore(32)

        async def one(agent: Agent) -> None:
            async with gate:
                await self.login(agent, measured=False)

        await asyncio.gather(*(one(a) for a in self.agents if not a.logged_in))
        deadline = time.monotonic() + 120 + len(self.agents) / 20  # 10k agents: 10 minutes
        while time.monotonic() < deadline:
            if all(a.online and a.idle() for a in self.agents):
                return
            await asyncio.sleep(0.1)
        online = sum(a.online and a.idle() for a in self.agents)
        raise RuntimeError(
            f"only {online} of {len(self.agents)} agents came online in Omni-Channel in time"
        )

    # --- changes -------------------------------------------------------------------------------

    async def login(self, agent: Agent, measured: bool = True) -> None:
        agent.inflight = True
        if measured:
            self.ledger.cc_change(agent.id, "Available", time.monotonic())
        response = await self.request(
            "POST",
            f"{agent.api}/api/v1/agents/{agent.id}/login",
            json={"state": "Ready"},
            headers=agent.auth,
        )
        if response is None or response.status_code != 200:
            self.ledger.cancel(agent.id, CC_TO_SF)
        else:
            agent.logged_in, agent.state, agent.presence = True, "Ready", "Available"
        agent.inflight = False

    async def change_state(self, agent: Agent, target: str | None = None) -> bool:
        if target is None:
            choices = [
                s for s in CC_STATES if s != agent.state and mapped_presence(s) != agent.presence
            ]
            if not choices:
                return False
            target = self.rng.choice(choices)
        presence = mapped_presence(target)
        agent.inflight = True
        self.ledger.cc_change(agent.id, presence, time.monotonic())
        response = await self.request(
            "PUT",
            f"{agent.api}/api/v1/agents/{agent.id}/state",
            json={"state": target},
            headers=agent.auth,
        )
        if response is None or response.status_code != 200:
            self.ledger.cancel(agent.id, CC_TO_SF)
        else:
            agent.state, agent.presence = target, presence
        agent.inflight = False
        return True

    async def change_status(self, agent: Agent, status: str | None = None) -> bool:
        if status is None:
            choices = [
                s
                for s in SF_STATUSES
                if s != agent.presence and state_after_status(agent.state, s) != agent.state
            ]
            if not choices:
                return False
            status = self.rng.choice(choices)
        target = state_after_status(agent.state, status)
        agent.inflight = True
        agent.sf_pending = time.monotonic() + self.plan.timeout
        self.ledger.sf_change(agent.id, target if agent.pad else None, time.monotonic())
        response = await self.request(
            "PUT",
            f"{self.plan.emulator_url}/emulator/v1/users/{agent.user_id}/omni/status",
            json={"presence_status": status},
        )
        if response is None or response.status_code != 200:
            self.ledger.cancel(agent.id, SF_TO_CC)
            agent.sf_pending = 0.0
        else:
            agent.state, agent.presence = target, status
        agent.inflight = False
        return True

    async def logout(self, agent: Agent) -> bool:
        agent.inflight = True
        self.ledger.cc_change(agent.id, None, time.monotonic())
        response = await self.request(
            "POST", f"{agent.api}/api/v1/agents/{agent.id}/logout", headers=agent.auth
        )
        if response is None or response.status_code != 200:
            self.ledger.cancel(agent.id, CC_TO_SF)
        else:
            agent.logged_in, agent.state, agent.presence = False, "LoggedOut", None
            agent.react(0.5 + self.rng.random(), "login")
        agent.inflight = False
        return True

    async def new_work(self) -> None:
        """Omni-Channel gets a case: it assigns it to an agent of this org (or queues it)."""
        self.ledger.count(f"{self.ledger.phase}:other_changes")
        await self.request(
            "POST",
            f"{self.plan.emulator_url}/emulator/v1/work",
            json={"channel": "Case", "subject": "bench"},
        )

    async def accept(self, agent: Agent, work_id: str) -> None:
        if agent.work.get(work_id) is not False or not agent.logged_in:
            return  # requeued meanwhile (Omni logout) or already accepted
        first = not any(agent.work.values())
        measured = first and agent.state != BUSY_INBOUND and agent.call is None and agent.pad
        agent.inflight = True
        agent.sf_pending = time.monotonic() + self.plan.timeout
        self.ledger.sf_change(agent.id, BUSY_INBOUND if measured else None, time.monotonic())
        response = await self.request(
            "POST", f"{self.plan.emulator_url}/emulator/v1/work/{work_id}/accept"
        )
        if response is None or response.status_code != 200:
            self.ledger.cancel(agent.id, SF_TO_CC)
            agent.sf_pending = 0.0
        else:
            if agent.call is None:
                agent.state = BUSY_INBOUND
            agent.react(0.5 + 1.5 * self.rng.random(), "close", work_id)
        agent.inflight = False

    async def close_work(self, agent: Agent, work_id: str) -> None:
        if work_id not in agent.work:
            return
        last = len(agent.work) == 1
        back = PRESENCE_TO_STATE.get(agent.presence or "", "Away")
        measured = last and agent.call is None and agent.pad and agent.logged_in
        agent.inflight = True
        agent.sf_pending = time.monotonic() + self.plan.timeout
        agent.acked_work.discard(work_id)  # from now on the agent may be free again
        self.ledger.sf_change(agent.id, back if measured else None, time.monotonic())
        response = await self.request(
            "POST", f"{self.plan.emulator_url}/emulator/v1/work/{work_id}/close"
        )
        if response is None or response.status_code != 200:
            self.ledger.cancel(agent.id, SF_TO_CC)
            agent.sf_pending = 0.0
        elif last and agent.call is None and agent.logged_in:
            agent.state = back
        agent.inflight = False

    async def offer_call(self) -> None:
        """A call arrives: the router offers it to the longest-idle routable agent."""
        self.ledger.count(f"{self.ledger.phase}:other_changes")
        busy_before = {a.id for a in self.agents if a.busy_for_double_routing()}
        response = await self.request(
            "POST",
            f"{self.plan.server_urls[0]}/api/v1/interactions",
            json={"queue": "support"},
            headers={"Authorization": f"Bearer {self.plan.supervisor_token}"},
        )
        if response is None or response.status_code != 201:
            return
        call = response.json()
        if call["status"] == "offered":
            self._offered(call["agent_id"], call["id"], busy_before)
        elif call["status"] == "queued":
            self.queued_calls.add(call["id"])
            self.spawn(self._watch_queued(call["id"]))

    def _offered(self, agent_id: str, call_id: str, busy_before: set[str]) -> None:
        agent = self.agents[self.index_of[agent_id]]
        if agent_id in busy_before and agent.busy_for_double_routing():
            self.ledger.double_routing()
        if call_id not in agent.answering and agent.call != call_id:
            agent.answering.add(call_id)
            agent.react(0.05, "answer", call_id)

    async def _watch_queued(self, call_id: str) -> None:
        """A queued call is offered when an agent becomes free (ContactPad shows it to the agent
        when one is open; without one, the agent would hear it ring: we look it up)."""
        headers = {"Authorization": f"Bearer {self.plan.supervisor_token}"}
        try:
            for _ in range(30):
                await asyncio.sleep(1.0)
                response = await self.request(
                    "GET",
                    f"{self.plan.server_urls[0]}/api/v1/interactions/{call_id}",
                    headers=headers,
                )
                if response is None:
                    return
                call = response.json()
                if call["status"] == "offered" and call.get("agent_id"):
                    self._offered(call["agent_id"], call_id, set())
                    return
                if call["status"] != "queued":
                    return
        finally:
            self.queued_calls.discard(call_id)

    async def answer(self, agent: Agent, call_id: str) -> None:
        if not agent.logged_in or agent.call is not None:
            agent.answering.discard(call_id)
            return
        busy = agent.busy_for_double_routing()
        expected = "On_a_Call" if agent.presence != "On_a_Call" else None
        agent.inflight = True
        if expected is not None:
            self.ledger.cc_change(agent.id, expected, time.monotonic())
        response = await self.request(
            "POST",
            f"{agent.api}/api/v1/interactions/{call_id}/answer",
            headers=agent.auth,
            expected=(404, 409),  # the offer was withdrawn meanwhile (the agent became busy)
        )
        agent.answering.discard(call_id)
        if response is None or response.status_code != 200:
            self.ledger.cancel(agent.id, CC_TO_SF)  # withdrawn meanwhile (404/409)
        else:
            if busy and agent.busy_for_double_routing():
                self.ledger.double_routing()
            agent.call, agent.state, agent.presence = call_id, BUSY_INBOUND, "On_a_Call"
            agent.talking = True
            agent.react(0.3 + 1.0 * self.rng.random(), "hangup", call_id)
        agent.inflight = False

    async def hangup(self, agent: Agent, call_id: str) -> None:
        agent.inflight = True
        self.ledger.cc_change(agent.id, mapped_presence(WRAP_AUTO), time.monotonic())
        response = await self.request(
            "POST", f"{agent.api}/api/v1/interactions/{call_id}/hangup", headers=agent.auth
        )
        if response is None or response.status_code != 200:
            self.ledger.cancel(agent.id, CC_TO_SF)
        else:
            agent.state, agent.presence = WRAP_AUTO, mapped_presence(WRAP_AUTO)
        agent.talking = False
        agent.inflight = False
        agent.react(0.1 + 0.3 * self.rng.random(), "ready")

    # --- the load ------------------------------------------------------------------------

    def run_reactions(self) -> None:
        now = time.monotonic()
        for agent in list(self.reacting):
            if not agent.reactions or not agent.idle():
                if not agent.reactions:
                    self.reacting.discard(agent)
                continue
            agent.reactions.sort(key=lambda r: r[0])
            due, what, arg = agent.reactions[0]
            if due > now:
                continue
            agent.reactions.pop(0)
            if what == "accept":
                if agent.call is not None or not agent.logged_in:
                    agent.react(0.2, what, arg)  # after the call
                    continue
                self.spawn(self.accept(agent, arg))
            elif what == "close":
                self.spawn(self.close_work(agent, arg))
            elif what == "answer":
                self.spawn(self.answer(agent, arg))
            elif what == "hangup":
                self.spawn(self.hangup(agent, arg))
            elif what == "ready":
                agent.call = None  # picking a state ends the wrap
                if agent.state == WRAP_AUTO and agent.logged_in:
                    self.spawn(self.change_state(agent, "Ready"))
            elif what == "login":
                self.spawn(self.login(agent))

    def pick(self) -> Agent | None:
        for _ in range(32):
            agent = self.agents[self.rng.randrange(len(self.agents))]
            if agent.free() and not agent.reactions:
                return agent
        return None

    def start_one(self, action: str) -> bool:
        if self.in_flight >= MAX_IN_FLIGHT:
            self.ledger.count(f"{self.ledger.phase}:skipped_backpressure")
            return False
        if action == "call" and len(self.queued_calls) >= MAX_WATCHED_CALLS:
            return False
        if action == "work":
            self.spawn(self.new_work())
            return True
        if action == "call":
            self.spawn(self.offer_call())
            return True
        agent = self.pick_with_pad() if action == "status" else self.pick()
        if agent is None:
            return False
        if action == "state":
            self.spawn(self.change_state(agent))
        elif action == "status":
            self.spawn(self.change_status(agent))
        elif action == "logout":
            self.spawn(self.logout(agent))
        return True

    def pick_with_pad(self) -> Agent | None:
        limit = min(len(self.agents), self.plan.contactpads)
        for _ in range(32):
            agent = self.agents[self.rng.randrange(limit)] if limit else None
            if agent is not None and agent.free() and not agent.reactions:
                return agent
        return self.pick()  # no ContactPad free: an unmeasured widget change

    async def steady(self, rate: float, duration: float, phase: str) -> dict[str, Any]:
        self.ledger.phase = phase
        actions = list(self.plan.mix)
        weights = [self.plan.mix[a] for a in actions]
        started = time.monotonic()
        done = 0
        skipped = 0
        while True:
            now = time.monotonic()
            if now - started >= duration:
                break
            due = int((now - started) * rate)
            while done < due:
                action = self.rng.choices(actions, weights)[0]
                if not self.start_one(action):
                    skipped += 1
                done += 1
            self.run_reactions()
            self.ledger.expire(time.monotonic(), self.plan.timeout)
            await asyncio.sleep(0.002)
        elapsed = time.monotonic() - started
        self.ledger.count(f"{phase}:skipped", skipped)
        made = sum(self.ledger.counts.get(f"{phase}:{k}", 0) for k in CHANGE_COUNTS)
        self.ledger.count(f"{phase}:changes_in_window", made)
        await self.quiesce(phase)
        return {"seconds": elapsed}

    async def quiesce(self, phase: str, limit: float = 30.0) -> None:
        """Let the reactions run out and the changes in flight arrive (or expire)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.run_reactions()
            self.ledger.expire(time.monotonic(), self.plan.timeout)
            busy = any(not a.idle() or a.reactions or a.work or a.call for a in self.agents)
            if not busy:
                break
            await asyncio.sleep(0.01)
        self.ledger.phase = f"{phase}:tail"

    async def burst(self, count: int, start_at: float, direction: str, phase: str) -> float:
        """`count` agents change at once, all on one side."""
        self.ledger.phase = phase
        if direction == CC_TO_SF:
            chosen = [a for a in self.agents if a.free()][:count]
        else:
            chosen = [a for a in self.agents[: self.plan.contactpads] if a.free()][:count]
        while time.monotonic() < start_at:
            await asyncio.sleep(0.001)
        if direction == CC_TO_SF:
            await asyncio.gather(*(self.change_state(a) for a in chosen))
        else:
            await asyncio.gather(*(self.change_status(a) for a in chosen))
        await self.quiesce(phase)
        return len(chosen)

    async def stop(self) -> None:
        await asyncio.gather(*(a.close() for a in self.agents), return_exceptions=True)
        for task in list(self.tasks):
            task.cancel()
        if self.http is not None:
            await self.http.aclose()


def worker_main(plan: ShardPlan, pipe: Any) -> None:
    raise_open_files()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(_worker(plan, pipe))


async def _worker(plan: ShardPlan, pipe: Any) -> None:
    worker = Worker(plan)
    try:
        pipe.send(("ready", await worker.setup()))
        while True:
            message = await asyncio.to_thread(pipe.recv)
            kind = message[0]
            if kind == "steady":
                _, rate, duration, phase = message
                pipe.send(("done", await worker.steady(rate, duration, phase)))
            elif kind == "burst":
                _, count, start_at, direction, phase = message
                chosen = await worker.burst(count, start_at, direction, phase)
                pipe.send(("done", {"agents": chosen}))
            elif kind == "report":
                pipe.send(("report", worker.ledger.report()))
            elif kind == "stop":
                await worker.stop()
                pipe.send(("stopped", {}))
                return
    except Exception as exc:  # tell the orchestrator instead of hanging it
        import traceback

        pipe.send(("failed", f"{exc!r}\n{traceback.format_exc()}"))


# --- the orchestrator ------------------------------------------------------------------------


def raise_open_files() -> tuple[int, int]:
    """Raise this process's soft limit on open files to the hard limit (a socket is a file).
    Raising the hard limit itself needs CAP_SYS_RESOURCE, which this machine does not grant."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _product_env(product_src: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PRESENCESYNC_LOG_LEVEL"] = "WARNING"
    if product_src:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(Path(product_src).resolve()), env.get("PYTHONPATH")) if p
        )
    return env


def _launch(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # `ulimit -n` is raised to the hard limit for the child (a server holds a socket per
    # console) by a tiny wrapper, so the product's own CLI runs unchanged.
    wrapper = (
        "import resource, runpy, sys; "
        "s, h = resource.getrlimit(resource.RLIMIT_NOFILE); "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (h, h)); "
        "sys.argv = ['presencesync', *sys.argv[1:]]; "
        "runpy.run_module('presencesync', run_name='__main__')"
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", wrapper, *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _wait_http(url: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up")
        time.sleep(0.1)


def seed_org(db_path: Path, users: int, product_src: str | None) -> list[str]:
    """The emulated org of one shard: its seed plus `users` agents (straight into its SQLite
    file before the emulator starts: creating 10k users one API call at a time is not what
    this measures). Runs in a child process when `product_src` is another checkout."""
    code = (
        "import json, sys\n"
        "from presencesync_emulator.store import Store\n"
        "from presencesync_emulator.seed import seed_if_empty, add_user\n"
        "store = Store(sys.argv[1]); seed_if_empty(store)\n"
        "ids = []\n"
        "with store.tx():\n"
        "    for n in range(int(sys.argv[2])):\n"
        "        name = f'bench.agent{n}@e2e.example'\n"
        "        ids.append(add_user(store, 'Bench', f'Agent {n}', name))\n"
        "store.close(); print(json.dumps(ids))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(db_path), str(users)],
        env=_product_env(product_src),
        check=True,
        capture_output=True,
        text=True,
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def seed_server(
    database_url: str, shards: list[tuple[str, list[str], dict[str, Any]]], product_src: str | None
) -> list[dict[str, Any]]:
    """Accounts (one per shard, linked to its emulated org), agents and tokens, in bulk."""
    code = r"""
import json, secrets, sys
from datetime import UTC, datetime
import sqlalchemy as sa
from presencesync.domain import new_agent
from presencesync.service import SalesforceConnection, open_engine
from presencesync.service.engine import hash_token
from presencesync.store import tables as t
url, spec = sys.argv[1], json.loads(sys.stdin.read())
engine = open_engine(url)
out = []
now = datetime.now(UTC)
for n, (emulator_url, users, oauth) in enumerate(spec):
    account = engine.create_account(f"bench shard {n}")
    engine.set_salesforce_connection(account, SalesforceConnection(
        login_url=emulator_url, client_id=oauth["client_id"], username=oauth["username"],
        client_secret=oauth.get("client_secret"), private_key_pem=oauth.get("private_key_pem")))
    admin = engine.create_token(account, "admin", label="bench")
    supervisor = engine.create_token(account, "supervisor", label="bench")
    agents, tokens, entries = [], [], []
    for i, user in enumerate(users):
        agent_id = f"s{n}-a{i:05d}"
        token = "ps_" + secrets.token_urlsafe(24)
        agents.append(dict(account_id=account, agent_id=agent_id, name=f"Agent {i}",
                           salesforce_user_id=user, snapshot=new_agent(agent_id).to_json(),
                           version=0, updated_at=now, routable=False, state_since=None))
        tokens.append(dict(token_hash=hash_token(token), account_id=account, role="agent",
                           agent_id=agent_id, label=agent_id, created_at=now))
        entries.append([agent_id, user, token])
    with engine.db.begin() as conn:
        for start in range(0, len(agents), 1000):
            conn.execute(sa.insert(t.agents), agents[start:start + 1000])
            conn.execute(sa.insert(t.api_tokens), tokens[start:start + 1000])
    out.append(dict(account_id=account, admin=admin, supervisor=supervisor, agents=entries))
engine.close()
print(json.dumps(out))
"""
    spec = json.dumps([list(shard) for shard in shards])
    result = subprocess.run(
        [sys.executable, "-c", code, database_url],
        input=spec,
        env=_product_env(product_src),
        check=True,
        capture_output=True,
        text=True,
    )
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


def _oauth_client(emulator_url: str) -> dict[str, Any]:
    import httpx

    response = httpx.get(f"{emulator_url}/emulator/v1/oauth-clients", timeout=30, trust_env=False)
    return dict(response.raise_for_status().json()[0])


def configure_account(server_url: str, admin_token: str) -> None:
    """Fetch the org's statuses and save the demo's mapping, through the API as an admin does
    on the Omni-channel Configuration page."""
    import httpx

    from presencesync_sandbox.demo import default_omni_config

    with httpx.Client(timeout=60, trust_env=False) as http:
        headers = {"Authorization": f"Bearer {admin_token}"}
        fetched = http.post(f"{server_url}/api/v1/omni/fetch", headers=headers)
        fetched.raise_for_status()
        config = default_omni_config(fetched.json()["presence_statuses"])
        http.put(
            f"{server_url}/api/v1/omni/config", json=config, headers=headers
        ).raise_for_status()


@contextlib.contextmanager
def scratch_schema(base: str) -> Iterator[str]:
    import psycopg

    plain = base.replace("postgresql+psycopg://", "postgresql://")
    schema = f"ps_e2e_{secrets.token_hex(4)}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        separator = "&" if "?" in base else "?"
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


class RssSampler:
    """Peak resident memory of groups of processes, sampled every 0.2 s (/proc, Linux)."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak: dict[str, int] = dict.fromkeys(groups, 0)
        self.peak_process: dict[str, int] = dict.fromkeys(groups, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def rss(self, pid: int) -> int | None:
        try:
            return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self.page
        except (OSError, ValueError, IndexError):
            return None

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.sample()

    def sample(self) -> None:
        for name, pids in self.groups.items():
            sizes = [size for size in map(self.rss, pids) if size is not None]
            if sizes:
                self.peak[name] = max(self.peak[name], sum(sizes))
                self.peak_process[name] = max(self.peak_process[name], max(sizes))

    def reset(self) -> None:
        self.sample()
        self.peak = dict.fromkeys(self.groups, 0)
        self.peak_process = dict.fromkeys(self.groups, 0)
        self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Stack:
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[tuple[Any, Any]] = field(default_factory=list)  # (process, pipe)

    def stop(self) -> None:
        for _, pipe in self.workers:
            with contextlib.suppress(Exception):
                pipe.send(("stop",))
        for process, pipe in self.workers:
            with contextlib.suppress(Exception):
                if pipe.poll(20):
                    pipe.recv()
            process.join(5)
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def _ask(workers: list[tuple[Any, Any]], message: tuple[Any, ...], timeout: float) -> list[Any]:
    for _, pipe in workers:
        pipe.send(message)
    answers = []
    for _process, pipe in workers:
        if not pipe.poll(timeout):
            raise RuntimeError(f"a load generator did not answer {message[0]!r} in {timeout:.0f} s")
        kind, payload = pipe.recv()
        if kind == "failed":
            raise RuntimeError(f"a load generator failed:\n{payload}")
        answers.append(payload)
    return answers


def run(args: argparse.Namespace) -> dict[str, Any]:
    limits = raise_open_files()
    agents = args.agents
    shards = args.shards or max(min(2, agents), math.ceil(agents / args.shard_size))
    per_shard = [agents // shards + (1 if i < agents % shards else 0) for i in range(shards)]
    contactpads = min(agents, args.contactpads)
    pads_per_shard = [min(n, math.ceil(contactpads * n / agents)) for n in per_shard]
    per_server = math.ceil(agents / args.servers) + math.ceil(contactpads / args.servers)
    if per_server + 200 > limits[0]:
        raise SystemExit(
            f"{per_server} sockets per server process is over the open-file limit "
            f"({limits[0]}; the hard limit cannot be raised here): use more --servers "
            "(PostgreSQL) or fewer agents"
        )
    folder = Path(tempfile.mkdtemp(prefix="presencesync-e2e-"))
    log = (lambda m: print(m, flush=True)) if not args.quiet else (lambda m: None)
    log(
        f"{agents} agents in {shards} shard(s), {contactpads} ContactPads, "
        f"{args.servers} server process(es) on {'PostgreSQL' if args.postgres_url else 'SQLite'}"
        f"; open files: soft {limits[0]}, hard {limits[1]}; work folder {folder}"
    )
    stack = Stack()
    result: dict[str, Any] = {"config": vars(args) | {"shards": shards}, "phases": []}
    with contextlib.ExitStack() as cleanup:
        if args.postgres_url:
            url = cleanup.enter_context(scratch_schema(args.postgres_url))
        else:
            url = f"sqlite:///{folder / 'presencesync.db'}"
        cleanup.callback(stack.stop)
        env = _product_env(args.product_src)
        started = time.monotonic()
        emulator_urls = []
        users: list[list[str]] = []
        for n, count in enumerate(per_shard):
            ids = seed_org(folder / f"org{n}.db", count, args.product_src)
            users.append(ids)
            port = free_port()
            emulator_urls.append(f"http://127.0.0.1:{port}")
            stack.processes.append(
                _launch(
                    ["emulator", "--port", str(port), "--db", str(folder / f"org{n}.db")],
                    env,
                    folder / f"emulator{n}.log",
                )
            )
        for emulator_url in emulator_urls:
            _wait_http(f"{emulator_url}/emulator/v1/org")
        oauth = [_oauth_client(u) for u in emulator_urls]
        accounts = seed_server(
            url, list(zip(emulator_urls, users, oauth, strict=True)), args.product_src
        )
        server_urls = []
        for n in range(args.servers):
            port = free_port()
            server_urls.append(f"http://127.0.0.1:{port}")
            stack.processes.append(
                _launch(
                    ["serve", "--port", str(port), "--database-url", url],
                    env,
                    folder / f"server{n}.log",
                )
            )
        for server_url in server_urls:
            _wait_http(f"{server_url}/healthz")
        for account in accounts:
            configure_account(server_urls[0], account["admin"])
        log(f"stack up and seeded in {time.monotonic() - started:.1f} s")

        context = mp.get_context("spawn")
        mix = _parse_mix(args.mix)
        for n, account in enumerate(accounts):
            plan = ShardPlan(
                index=n,
                account_id=account["account_id"],
                supervisor_token=account["supervisor"],
                agents=[tuple(a) for a in account["agents"]],  # type: ignore[misc]
                server_urls=server_urls,
                emulator_url=emulator_urls[n],
                contactpads=pads_per_shard[n],
                source_ips=args.source_ips,
                mix=mix,
                timeout=args.timeout,
                seed=args.seed + n,
            )
            parent, child = context.Pipe()
            process = context.Process(target=worker_main, args=(plan, child), daemon=True)
            process.start()
            stack.workers.append((process, parent))
        started = time.monotonic()
        setup = _collect(stack.workers, 900)
        log(
            f"consoles connected and logged in to Omni in {time.monotonic() - started:.1f} s "
            f"(connect {max(s['connect_s'] for s in setup):.1f} s, "
            f"login {max(s['login_s'] for s in setup):.1f} s)"
        )
        server_pids = [p.pid for p in stack.processes[len(emulator_urls) :]]
        sampler = RssSampler(
            {
                "server": server_pids,
                "emulator": [p.pid for p in stack.processes[: len(emulator_urls)]],
                "generator": [int(w.pid) for w, _ in stack.workers],
            }
        )
        cleanup.callback(sampler.stop)
        sampler.sample()
        result["rss_after_connect"] = dict(sampler.peak)
        log(
            "RSS with every console connected: "
            + ", ".join(f"{k} {v / 2**20:,.0f} MiB" for k, v in sampler.peak.items())
        )
        for rate in _parse_rates(args.rate):
            phase = f"steady@{rate:g}"
            sampler.reset()
            answers = _ask(
                stack.workers, ("steady", rate / shards, args.duration, phase), args.duration + 120
            )
            seconds = max(a["seconds"] for a in answers)
            merged = merge_reports(_ask(stack.workers, ("report",), 60))
            row = summarize(merged, phase, seconds)
            row["offered_per_s"] = rate
            row["rss"] = dict(sampler.peak)
            row["rss_process"] = dict(sampler.peak_process)
            result["phases"].append(row)
            log(format_row(row))
        if args.burst:
            for direction in (CC_TO_SF, SF_TO_CC):
                phase = f"burst{args.burst}:{'cc' if direction == CC_TO_SF else 'sf'}"
                sampler.reset()
                per = [math.ceil(args.burst * n / agents) for n in per_shard]
                start_at = time.monotonic() + 1.0
                for (_, pipe), count in zip(stack.workers, per, strict=True):
                    pipe.send(("burst", count, start_at, direction, phase))
                chosen = 0
                for _, pipe in stack.workers:
                    if not pipe.poll(180):
                        raise RuntimeError("a load generator did not finish its burst")
                    kind, payload = pipe.recv()
                    if kind == "failed":
                        raise RuntimeError(payload)
                    chosen += payload["agents"]
                merged = merge_reports(_ask(stack.workers, ("report",), 60))
                row = summarize(merged, phase, 0.0)
                row["offered_per_s"] = None
                row["burst"] = chosen
                row["rss"] = dict(sampler.peak)
                row["rss_process"] = dict(sampler.peak_process)
                result["phases"].append(row)
                log(format_row(row))
        merged = merge_reports(_ask(stack.workers, ("report",), 60))
        result["counts"] = merged["counts"]
    return result


def _collect(workers: list[tuple[Any, Any]], timeout: float) -> list[Any]:
    answers = []
    for _, pipe in workers:
        if not pipe.poll(timeout):
            raise RuntimeError("a load generator did not get its consoles up")
        kind, payload = pipe.recv()
        if kind == "failed":
            raise RuntimeError(f"a load generator failed:\n{payload}")
        answers.append(payload)
    return answers


def _parse_rates(text: str) -> list[float]:
    return [float(r) for r in str(text).split(",") if r.strip()]


def _parse_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in ("state", "status", "work", "call", "logout"):
            raise SystemExit(f"unknown change {name!r} in --mix")
        mix[name.strip()] = float(weight)
    return mix


def _ms(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.1f}"


def format_row(row: dict[str, Any]) -> str:
    cc, sf = row[CC_TO_SF], row[SF_TO_CC]
    mib = row["rss"].get("server", 0) / 2**20
    rate = "-" if row["offered_per_s"] is None else f"{row['changes_per_s']:,.0f}"
    return (
        f"{row['phase']}: {rate} changes/s | CC->SF n={cc['n']} "
        f"p50 {_ms(cc['p50'])} p95 {_ms(cc['p95'])} p99 {_ms(cc['p99'])} max {_ms(cc['max'])} ms"
        f" | SF->CC n={sf['n']} p50 {_ms(sf['p50'])} p95 {_ms(sf['p95'])} p99 {_ms(sf['p99'])} "
        f"max {_ms(sf['max'])} ms | commands/CC change {row['commands_per_cc_change']:.3f} "
        f"(unexpected {row['unexpected_commands']}, late {row['late_commands']}) | double "
        f"routings {row['double_routings']}"
        f" | lost {row['lost']} | HTTP errors {row['http_errors']} | server RSS {mib:,.0f} MiB"
    )


def print_table(result: dict[str, Any]) -> None:
    header = (
        "| phase | offered/s | changes/s | CC->SF p50 / p95 / p99 / max ms | SF->CC p50 / p95 / "
        "p99 / max ms | commands per CC change | unexpected commands | double routings | lost "
        "| server RSS MiB |"
    )
    print()
    print(header)
    print("|" + "---|" * 10)
    for row in result["phases"]:
        cc, sf = row[CC_TO_SF], row[SF_TO_CC]
        if row["offered_per_s"] is None:
            offered, rate = f"{row['burst']} at once", "-"
        else:
            offered, rate = f"{row['offered_per_s']:g}", f"{row['changes_per_s']:,.0f}"
        print(
            f"| {row['phase']} | {offered} | {rate} | "
            f"{_ms(cc['p50'])} / {_ms(cc['p95'])} / {_ms(cc['p99'])} / {_ms(cc['max'])} | "
            f"{_ms(sf['p50'])} / {_ms(sf['p95'])} / {_ms(sf['p99'])} / {_ms(sf['max'])} | "
            f"{row['commands_per_cc_change']:.3f} | {row['unexpected_commands']} | "
            f"{row['double_routings']} | {row['lost']} | "
            f"{row['rss'].get('server', 0) / 2**20:,.0f} |"
        )


def plot(results: list[tuple[str, dict[str, Any]]], path: str) -> None:
    """Latency percentiles against offered rate, one panel per direction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    styles = {"p50": "-", "p95": "--", "p99": ":"}
    for ax, direction, title in (
        (axes[0], CC_TO_SF, "contact center -> Salesforce (command at the console)"),
        (axes[1], SF_TO_CC, "Salesforce -> contact center (ContactPad push)"),
    ):
        for label, result in results:
            rows = [r for r in result["phases"] if r["offered_per_s"] is not None]
            rates = [r["offered_per_s"] for r in rows]
            line = None
            for q, style in styles.items():
                values = [r[direction][q] for r in rows]
                (drawn,) = ax.plot(
                    rates,
                    values,
                    style,
                    marker="o",
                    color=None if line is None else line.get_color(),
                    label=f"{label} {q}",
                )
                line = line or drawn
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("offered changes/s")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("latency (ms)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument(
        "--rate",
        default="100",
        help="offered initiated changes/s, or a list (100,200,400) swept in order",
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per rate")
    parser.add_argument(
        "--burst", type=int, default=0, help="then N agents change at once, each side in turn"
    )
    parser.add_argument("--postgres-url", default=None, help="PostgreSQL instead of SQLite")
    parser.add_argument("--servers", type=int, default=1, help="serve processes (PostgreSQL)")
    parser.add_argument(
        "--contactpads", type=int, default=1000, help="agents with a ContactPad open"
    )
    parser.add_argument(
        "--shard-size",
        type=int,
        default=8000,
        help="agents per account/org/load generator (each generator holds 2 sockets per agent)",
    )
    parser.add_argument("--shards", type=int, default=0, help="override the number of shards")
    parser.add_argument(
        "--source-ips", type=int, default=1, help="spread consoles over 127.0.0.1..N"
    )
    parser.add_argument("--mix", default=DEFAULT_MIX, help="weights of the initiated changes")
    parser.add_argument(
        "--timeout", type=float, default=15.0, help="a change with no result by then is lost"
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--plot", default=None, help="PNG of latency percentiles vs rate")
    parser.add_argument(
        "--compare",
        default=None,
        help="another run's --json to draw next to this one in --plot (label=path)",
    )
    parser.add_argument("--label", default="this run")
    parser.add_argument("--product-src", default=None, help="run the server from this src")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.servers > 1 and not args.postgres_url:
        parser.error("several serve processes need --postgres-url")
    result = run(args)
    result["label"] = args.label
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    if args.plot:
        runs = [(args.label, result)]
        if args.compare:
            label, _, path = args.compare.rpartition("=")
            runs.insert(0, (label or "baseline", json.loads(Path(path).read_text())))
        plot(runs, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
