"""`presencesync demo`: the server and the Salesforce org emulator in one process, ready to play.

The demo glues the product (built through `presencesync.bootstrap`, like `serve`), the emulator
and the headless consoles together; it lives outside both so that neither imports the other.

What it sets up (DESIGN.md 5c):
- the emulator (seed data) on --emulator-port, its SQLite file next to the server's database
  (`presencesync-demo.db` -> `presencesync-demo-emulator.db`; in memory when the server's store
  is not a SQLite file);
- the server on --port, store at --database-url (migrated on start);
- an account with the Omni-Channel feature on, its Salesforce connection to the emulator's
  connected app, an admin, a supervisor and N agents linked to emulator users;
- the org's presence statuses fetched (through the API, as the admin page does) and a default
  mapping saved and enabled, so that both directions work at once;
- with `--consoles headless`, one headless console per agent (`headless_console.py`) standing
  in for the agent's open Salesforce console tab (a browser console opened later takes over
  from it).

Re-running on an existing database reuses the account when the info file's tokens still resolve
in it (same tokens, same agents; the saved mapping is kept); otherwise it creates a new account.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
import uvicorn

from presencesync_sandbox.headless_console import HeadlessConsole, HeadlessConsoles

ACCOUNT_NAME = "Demo contact center"

# A mapping that makes sense for the emulator's seed statuses (DESIGN.md 2: maps_to names only
# agent-selectable states; busy follows each status's own option).
DEFAULT_MAPS_TO = {
    "Available": "Ready",
    "Available_for_Cases": "Ready",
    "Available_for_Chat": "Ready",
    "On_Break": "Away/Break",
    "Lunch": "ExtendedAway/Lunch",
    "Training": "ExtendedAway/Training",
}
DEFAULT_STATE_MAPPINGS = {
    "Ready": "Available",
    "Busy": "On_a_Call",
    "Wrap": "Busy",
    "Away": "On_Break",
    "ExtendedAway": "Busy",
    "ExtendedAway/Lunch": "Lunch",
    "ExtendedAway/Training": "Training",
}


def default_omni_config(statuses: list[dict[str, Any]]) -> dict[str, Any]:
    """The PUT /omni/config body the demo saves, for the statuses the org has."""
    names = {s["developer_name"] for s in statuses}
    return {
        "enabled": True,
        "presence_mappings": [
            {
                "presence_status": s["developer_name"],
                "busy": s["status_option"] == "busy",
                "maps_to": DEFAULT_MAPS_TO.get(s["developer_name"]),
            }
            for s in statuses
        ],
        "state_mappings": [
            {"state": state, "presence_status": status}
            for state, status in DEFAULT_STATE_MAPPINGS.items()
            if status in names
        ],
    }


class ServerThread:
    """One uvicorn server on its own thread and event loop (port 0: a free port)."""

    def __init__(self, host: str, port: int, name: str) -> None:
        # Bound first, so that the app can be told its own URL before it starts.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.name = f"{name}-{self.port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.beside: Any = None

    def start(
        self,
        app: Any,
        *,
        lifespan: Literal["auto", "on", "off"] = "on",  # uvicorn's LifespanType
        timeout: float = 20.0,
        beside: Callable[[], Awaitable[Any]] | None = None,
    ) -> ServerThread:
        """Serve `app`; `beside()` starts something else in the same event loop first (the
        emulator's Pub/Sub API) and returns it (`self.beside`; its `stop()` is awaited when
        the server ends)."""
        limits = getattr(getattr(app, "state", None), "limits", None)
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan=lifespan,
            ws="websockets-sansio",
            log_config=None,
            ws_max_size=limits.max_ws_message_bytes if limits else 16 * 1024 * 1024,
        )
        self.server = uvicorn.Server(config)
        server, sock = self.server, self.sock

        async def main() -> None:
            if beside is not None:
                self.beside = await beside()
            try:
                await server.serve(sockets=[sock])
            finally:
                if self.beside is not None:
                    with contextlib.suppress(Exception):
                        await self.beside.stop(0.2)

        self.thread = threading.Thread(
            target=lambda: asyncio.run(main()), name=self.name, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout)
        with contextlib.suppress(OSError):
            self.sock.close()


def emulator_db_for(database_url: str) -> str:
    """The emulator's SQLite file next to the server's (":memory:" when there is no file)."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        return ":memory:"
    path = database_url[len(prefix) :]
    if not path or path == ":memory:":
        return ":memory:"
    p = Path(path)
    return str(p.with_name(f"{p.stem}-emulator{p.suffix or '.db'}"))


def ws_url(http_url: str) -> str:
    parts = urlsplit(http_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}"


def console_url(info: dict[str, Any], agent: dict[str, Any]) -> str:
    """The emulator's console page of `agent`, running our bridge against the server."""
    api = info["api_url"]
    return (
        f"{info['emulator_url']}/console/{agent['salesforce_user_id']}"
        f"?bridge={quote(api + '/static/bridge.js', safe='')}"
        f"&server={quote(ws_url(api), safe='')}&token={quote(agent['token'], safe='')}"
    )


@dataclass
class DemoStack:
    engine: Any
    server: ServerThread
    emulator: ServerThread
    emulator_app: Any
    info: dict[str, Any]
    consoles: HeadlessConsoles | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def api_url(self) -> str:
        return str(self.info["api_url"])

    @property
    def emulator_url(self) -> str:
        return str(self.info["emulator_url"])

    @property
    def pubsub_target(self) -> str | None:
        """host:port of the emulator's Pub/Sub API (None: not served)."""
        beside = self.emulator.beside
        return None if beside is None else str(beside.target)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.consoles is not None:
            self.consoles.stop()
        self.server.stop()
        self.emulator.stop()
        with contextlib.suppress(Exception):
            self.emulator_app.state.org.store.close()
        self.engine.close()


def start_stack(
    *,
    database_url: str,
    host: str = "127.0.0.1",
    port: int = 0,
    emulator_port: int = 0,
    emulator_db: str | None = None,
    agents: int = 3,
    consoles: str = "headless",
    info_file: str | Path | None = None,
    configure: bool = True,
    pubsub_port: int | None = None,
) -> DemoStack:
    """Start emulator + server, provision the demo account, optionally the headless consoles.

    `configure=False` leaves the Omni-Channel configuration to do (nothing fetched, no mapping):
    what an admin finds on a new account (the browser tests start there). `pubsub_port` (0: a
    free port) also serves the emulator's Pub/Sub API and turns Change Data Capture on for the
    account (its connection names the endpoint); None: neither."""
    from presencesync.bootstrap import build_app, open_engine
    from presencesync_emulator.app import create_app as create_emulator_app
    from presencesync_emulator.pubsub import server as pubsub_server

    if agents < 1:
        raise ValueError("the demo needs at least one agent")
    emulator = ServerThread(host, emulator_port, "emulator")
    server = ServerThread(host, port, "presencesync")
    emulator_app = create_emulator_app(
        emulator_db or emulator_db_for(database_url), base_url=emulator.url
    )
    beside = None
    if pubsub_port is not None:

        async def beside() -> Any:
            return await pubsub_server.start(
                emulator_app.state.org,
                host=host,
                port=pubsub_port,
                instance_url_ok=pubsub_server.exact_instance_url(emulator.url),
            )

    emulator.start(emulator_app, lifespan="on", beside=beside)  # Omni push time-outs run in it
    engine = open_engine(database_url)
    try:
        server.start(build_app(engine))
        previous = _load_info(info_file)
        target = None if emulator.beside is None else str(emulator.beside.target)
        info = provision(
            engine,
            server.url,
            emulator.url,
            agents,
            previous,
            configure=configure,
            pubsub_target=target,
        )
    except BaseException:
        server.stop()
        emulator.stop()
        engine.close()
        raise
    stack = DemoStack(engine, server, emulator, emulator_app, info)
    if info_file is not None:
        path = Path(info_file)
        path.write_text(json.dumps(info, indent=2) + "\n")
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)  # it holds tokens
    if consoles == "headless":
        stack.consoles = HeadlessConsoles(
            HeadlessConsole(
                emulator.url,
                agent["salesforce_user_id"],
                server.url,
                agent["token"],
                name=agent["agent_id"],
            )
            for agent in info["agents"]
        ).start()
        try:
            stack.consoles.wait_ready(15)
        except Exception:
            stack.stop()
            raise
    return stack


def _load_info(info_file: str | Path | None) -> dict[str, Any] | None:
    if info_file is None:
        return None
    try:
        data = json.loads(Path(info_file).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _reusable(engine: Any, previous: dict[str, Any] | None, agents: int) -> str | None:
    """The account of a previous run, if its tokens still resolve here."""
    if not previous:
        return None
    try:
        admin = engine.resolve_token(previous["admin_token"])
        supervisor = engine.resolve_token(previous["supervisor_token"])
        if admin is None or admin.role != "admin" or supervisor is None:
            return None
        if supervisor.account_id != admin.account_id or len(previous["agents"]) < agents:
            return None
        for agent in previous["agents"][:agents]:
            principal = engine.resolve_token(agent["token"])
            if principal is None or principal.agent_id != agent["agent_id"]:
                return None
            if principal.account_id != admin.account_id:
                return None
    except (KeyError, TypeError):
        return None
    return str(admin.account_id)


def provision(
    engine: Any,
    api_url: str,
    emulator_url: str,
    agents: int,
    previous: dict[str, Any] | None = None,
    *,
    configure: bool = True,
    pubsub_target: str | None = None,
) -> dict[str, Any]:
    """Account, connection, people, statuses and mapping; returns the info file's content.
    With `pubsub_target` (the emulator's Pub/Sub API), Change Data Capture is turned on."""
    from presencesync.service import SalesforceConnection

    with httpx.Client(base_url=emulator_url, timeout=10, trust_env=False) as emu:
        oauth = emu.get("/emulator/v1/oauth-clients").raise_for_status().json()[0]
        users = emu.get("/emulator/v1/users").raise_for_status().json()
        candidates = [
            u for u in users if u["username"] != oauth["username"] and u.get("is_active", True)
        ]
        # What the package's CSP Trusted Site does in a real org: let the console's bridge
        # open its WebSocket to this server (presencesync doctor checks it).
        emu.put(
            "/emulator/v1/csp-trusted-sites/PresenceSyncServer",
            json={"endpoint_url": ws_url(api_url), "context": "LEX", "connect_src": True},
        ).raise_for_status()
        while len(candidates) < agents:
            n = len(candidates) + 1
            created = emu.post(
                "/emulator/v1/users",
                json={"name": f"Demo Agent {n}", "username": f"demo.agent{n}@presencesync.example"},
            )
            candidates.append(created.raise_for_status().json())

    account_id = _reusable(engine, previous, agents)
    reused = account_id is not None
    if account_id is None:
        account_id = engine.create_account(ACCOUNT_NAME, omni_feature=True)
        admin_token = engine.create_token(account_id, "admin", label="demo admin")
        supervisor_token = engine.create_token(account_id, "supervisor", label="demo supervisor")
        agent_entries: list[dict[str, Any]] = []
    else:
        assert previous is not None
        admin_token = previous["admin_token"]
        supervisor_token = previous["supervisor_token"]
        agent_entries = [dict(a) for a in previous["agents"][:agents]]
    engine.set_salesforce_connection(
        account_id,
        SalesforceConnection(
            login_url=emulator_url,
            client_id=oauth["client_id"],
            username=oauth["username"],
            client_secret=oauth.get("client_secret"),
            private_key_pem=oauth.get("private_key_pem"),
            pubsub_endpoint=None if pubsub_target is None else f"grpc://{pubsub_target}",
        ),
    )
    if not reused:
        for index, user in enumerate(candidates[:agents], start=1):
            agent_id = f"agent-{index}"
            engine.create_agent(account_id, agent_id, user["name"], user["id"])
            token = engine.create_token(account_id, "agent", agent_id=agent_id, label=agent_id)
            agent_entries.append(
                {"agent_id": agent_id, "salesforce_user_id": user["id"], "token": token}
            )

    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30, trust_env=False) as api:
        if pubsub_target is not None:
            api.put("/api/v1/settings", json={"change_data_capture": True}).raise_for_status()
        if not configure:
            return _info(api_url, emulator_url, admin_token, supervisor_token, agent_entries, oauth)
        fetched = api.post("/api/v1/omni/fetch").raise_for_status().json()
        current = api.get("/api/v1/omni/config").raise_for_status().json()
        if not (reused and current.get("state_mappings")):
            config = default_omni_config(fetched["presence_statuses"])
            saved = api.put("/api/v1/omni/config", json=config)
            if saved.status_code != 200:
                raise RuntimeError(f"the demo mapping was refused: {saved.text}")
    return _info(api_url, emulator_url, admin_token, supervisor_token, agent_entries, oauth)


def _info(
    api_url: str,
    emulator_url: str,
    admin_token: str,
    supervisor_token: str,
    agents: list[dict[str, Any]],
    oauth: dict[str, Any],
) -> dict[str, Any]:
    return {
        "api_url": api_url,
        "emulator_url": emulator_url,
        "admin_token": admin_token,
        "supervisor_token": supervisor_token,
        "agents": agents,
        "salesforce": {
            "client_id": oauth["client_id"],
            "client_secret": oauth.get("client_secret"),
            "username": oauth["username"],
        },
    }


def describe(info: dict[str, Any], info_file: str, consoles: str) -> str:
    api = info["api_url"]
    lines = [
        "presencesync demo is running (Ctrl-C stops it).",
        "",
        f"  server            {api}",
        f"  emulator          {info['emulator_url']}",
        f"  info file         {info_file}",
        "",
        f"  sign in           {api}/login",
        f"  admin page        {api}/admin/omni-channel   (admin token below)",
        f"  ContactPad        {api}/contactpad           (an agent's token)",
        "",
        f"  admin token       {info['admin_token']}",
        f"  supervisor token  {info['supervisor_token']}",
        "",
    ]
    for agent in info["agents"]:
        lines += [
            f"  {agent['agent_id']}  (Salesforce user {agent['salesforce_user_id']})",
            f"    token           {agent['token']}",
            f"    console         {console_url(info, agent)}",
        ]
    lines.append("")
    if consoles == "headless":
        lines.append(
            "  Headless consoles are connected for every agent: the emulator control API\n"
            f"  ({info['emulator_url']}/emulator/v1/...) reaches presencesync without a browser.\n"
            "  Opening an agent's console URL in a browser takes over from its headless console."
        )
    else:
        lines.append(
            "  No consoles are running: open an agent's console URL to connect its bridge."
        )
    return "\n".join(lines)


def run_demo(
    info_file: str,
    consoles: str,
    agents: int,
    host: str,
    port: int,
    emulator_port: int,
    database_url: str,
    pubsub_port: int | None = None,
) -> None:
    from presencesync.web.logging import configure_logging

    # Logs go to stderr, warnings and worse by default: the URLs and tokens stay readable.
    configure_logging(os.environ.get("PRESENCESYNC_LOG_LEVEL", "WARNING"))
    stack = start_stack(
        database_url=database_url,
        host=host,
        port=port,
        emulator_port=emulator_port,
        agents=agents,
        consoles=consoles,
        info_file=info_file,
        pubsub_port=pubsub_port,
    )
    print(describe(stack.info, info_file, consoles), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    finally:
        stack.stop()
