"""Shared helpers of the Pub/Sub tests: an emulator serving the Pub/Sub API, its control API,
and clients (our subscriber, or raw generated stubs the way Salesforce's examples use them)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx

from presencesync.salesforce import AsyncSalesforceClient, SalesforceCredentials
from presencesync_emulator.testing import RunningEmulator, start_emulator

T = TypeVar("T")

USP_TOPIC = "/data/UserServicePresenceChangeEvent"
AW_TOPIC = "/data/AgentWorkChangeEvent"
ALL_TOPIC = "/data/ChangeEvents"


def run(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Emulator:
    """A running emulator with the Pub/Sub API, driven through its HTTP APIs."""

    def __init__(self, handle: RunningEmulator) -> None:
        self.handle = handle
        self.url = handle.url
        assert handle.pubsub_target is not None
        self.target = handle.pubsub_target
        self.http = httpx.Client(base_url=handle.url, verify=handle.ssl_context() or True)
        self.app = self.http.get("/emulator/v1/oauth-clients").json()[0]
        self.org_id = self.http.get("/emulator/v1/org").json()["org_id"]
        self.agents = [u["id"] for u in self.http.get("/emulator/v1/users").json()[1:]]

    # -- OAuth --------------------------------------------------------------------------------

    def credentials(self) -> SalesforceCredentials:
        return SalesforceCredentials.from_connected_app(
            self.url, self.app, flow="client_credentials"
        )

    def salesforce(self) -> AsyncSalesforceClient:
        return AsyncSalesforceClient(self.credentials(), verify=self.handle.ssl_context() or True)

    def token(self) -> dict[str, Any]:
        response = self.http.post(
            "/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.app["client_id"],
                "client_secret": self.app["client_secret"],
            },
        )
        response.raise_for_status()
        return dict(response.json())

    def metadata(self, token: dict[str, Any] | None = None) -> tuple[tuple[str, str], ...]:
        token = token or self.token()
        return (
            ("accesstoken", token["access_token"]),
            ("instanceurl", token["instance_url"]),
            ("tenantid", self.org_id),
        )

    # -- the agent's clicks (control API) -------------------------------------------------------

    def _ok(self, response: httpx.Response) -> Any:
        assert response.status_code < 300, response.text
        return response.json()

    def login(self, user: str, status: str = "Available") -> Any:
        return self._ok(
            self.http.post(
                f"/emulator/v1/users/{user}/omni/login", json={"presence_status": status}
            )
        )

    def set_status(self, user: str, status: str) -> Any:
        return self._ok(
            self.http.put(
                f"/emulator/v1/users/{user}/omni/status", json={"presence_status": status}
            )
        )

    def logout(self, user: str) -> Any:
        return self._ok(self.http.post(f"/emulator/v1/users/{user}/omni/logout"))

    def create_work(self, channel: str = "Case", subject: str = "Printer on fire") -> Any:
        return self._ok(
            self.http.post("/emulator/v1/work", json={"channel": channel, "subject": subject})
        )

    def work_action(self, work_id: str, action: str) -> Any:
        return self._ok(self.http.post(f"/emulator/v1/work/{work_id}/{action}"))

    # -- the Pub/Sub control API ------------------------------------------------------------------

    def pubsub(self) -> dict[str, Any]:
        return dict(self._ok(self.http.get("/emulator/v1/pubsub")))

    def faults(self, **body: Any) -> dict[str, Any]:
        return dict(self._ok(self.http.post("/emulator/v1/pubsub/faults", json=body)))

    def settings(self, **body: Any) -> dict[str, Any]:
        return dict(self._ok(self.http.put("/emulator/v1/pubsub/settings", json=body)))

    def expire_sessions(self) -> None:
        self._ok(self.http.post("/emulator/v1/sessions/expire"))

    def streams_open(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until `count` Subscribe streams are open (their start position is fixed then)."""
        deadline = time.monotonic() + timeout
        while len(streams := self.pubsub()["streams"]) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} streams never opened: {streams}")
            time.sleep(0.01)
        return list(streams)

    async def wait_for(
        self, check: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll GET /emulator/v1/pubsub until `check(state)` holds."""
        deadline = time.monotonic() + timeout
        while True:
            state = await asyncio.to_thread(self.pubsub)
            if check(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"pubsub state never matched: {state}")
            await asyncio.sleep(0.02)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A blocking control call from async test code."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def close(self) -> None:
        self.http.close()
        self.handle.stop()


@contextmanager
def emulator(**options: Any) -> Iterator[Emulator]:
    emu = Emulator(start_emulator(pubsub=True, **options))
    try:
        yield emu
    finally:
        emu.close()


async def collect(
    events: Any, count: int, on_each: Callable[[Any], Awaitable[None]] | None = None
) -> list[Any]:
    """The next `count` items of an async iterator."""
    out = []
    async for item in events:
        out.append(item)
        if on_each is not None:
            await on_each(item)
        if len(out) == count:
            break
    return out
