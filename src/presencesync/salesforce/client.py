"""Sync and async Salesforce REST clients.

Both are thin drivers around :class:`SalesforceSession` (``protocol.py``), which holds the
logic: they only perform its ``Send``/``Sleep`` actions with an ``httpx.Client`` or
``httpx.AsyncClient``. Use ``AsyncSalesforceClient`` from asyncio code (the server), and
``SalesforceClient`` from scripts and tests.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Self, TypeVar

import httpx

from .auth import AccessToken, SalesforceCredentials
from .protocol import (
    DEFAULT_API_VERSION,
    ApiUsage,
    Flow,
    RetryPolicy,
    SalesforceSession,
    Send,
)

T = TypeVar("T")

Verify = bool | str | ssl.SSLContext


def ssl_verify(verify: Verify) -> bool | ssl.SSLContext:
    """httpx wants a bool or an SSLContext; a str is the path of a CA bundle or of the
    (self-signed) server certificate to trust, as for the emulator's ``cert.pem``."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


def _timeout_extension(timeout: httpx.Timeout) -> dict[str, float | None]:
    # Requests built by the flows carry no timeout; give each the client's.
    return timeout.as_dict()


class _ClientBase:
    def __init__(
        self,
        credentials: SalesforceCredentials,
        *,
        api_version: str,
        retry: RetryPolicy | None,
        rng: random.Random | None,
        timeout: float,
    ) -> None:
        self.session = SalesforceSession(
            credentials,
            api_version=api_version,
            retry=retry or RetryPolicy(),
            rng=rng or random.Random(),
        )
        self._timeout = httpx.Timeout(timeout)

    @property
    def api_usage(self) -> ApiUsage | None:
        """(used, limit) from the last ``Sforce-Limit-Info`` header seen, if any."""
        return self.session.api_usage

    @property
    def token(self) -> AccessToken | None:
        return self.session.token

    @property
    def instance_url(self) -> str | None:
        return self.session.token.instance_url if self.session.token else None

    @property
    def api_version(self) -> str:
        return self.session.api_version

    def invalidate_token(self) -> None:
        """Forget the cached token; the next call logs in again."""
        self.session.token = None


class SalesforceClient(_ClientBase):
    """Blocking client. ``sleep`` is injectable so tests of backoff run instantly.

    ``verify`` applies to httpx's default transport; a custom ``transport`` brings its own TLS
    settings.
    """

    def __init__(
        self,
        credentials: SalesforceCredentials,
        *,
        api_version: str = DEFAULT_API_VERSION,
        verify: Verify = True,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            credentials, api_version=api_version, retry=retry, rng=rng, timeout=timeout
        )
        self._http = httpx.Client(verify=ssl_verify(verify), transport=transport)
        self._sleep = sleep

    def run(self, flow: Flow[T]) -> T:
        """Perform a flow's actions until it returns."""
        reply: Any = None
        while True:
            try:
                action = flow.send(reply)
            except StopIteration as done:
                result: T = done.value  # StopIteration is not generic: the flow's return value
                return result
            if isinstance(action, Send):
                action.request.extensions["timeout"] = _timeout_extension(self._timeout)
                try:
                    reply = self._http.send(action.request)
                except httpx.TransportError as exc:
                    reply = exc
            else:
                self._sleep(action.seconds)
                reply = None

    def login(self) -> AccessToken:
        return self.run(self.session.login_flow())

    def query(self, soql: str, batch_size: int | None = None) -> list[dict[str, Any]]:
        """All records of a SOQL query (every page)."""
        return self.run(self.session.query_all_flow(soql, batch_size))

    def query_iter(self, soql: str, batch_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Records of a SOQL query, fetching the next page only when needed."""
        page = self.run(self.session.query_page_flow(soql, batch_size))
        yield from page.records
        while page.next_records_url:
            page = self.run(self.session.next_page_flow(page.next_records_url))
            yield from page.records

    def versions(self) -> list[dict[str, Any]]:
        return self.run(self.session.versions_flow())

    def describe(self, sobject: str) -> dict[str, Any]:
        return self.run(self.session.describe_flow(sobject))

    def get_record(self, sobject: str, record_id: str) -> dict[str, Any]:
        return self.run(self.session.record_flow(sobject, record_id))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncSalesforceClient(_ClientBase):
    """asyncio client for the server. Safe to share between tasks of one event loop.

    ``verify`` applies to httpx's default transport; a custom ``transport`` brings its own TLS
    settings.
    """

    def __init__(
        self,
        credentials: SalesforceCredentials,
        *,
        api_version: str = DEFAULT_API_VERSION,
        verify: Verify = True,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            credentials, api_version=api_version, retry=retry, rng=rng, timeout=timeout
        )
        self._http = httpx.AsyncClient(verify=ssl_verify(verify), transport=transport)
        self._sleep = sleep

    async def run(self, flow: Flow[T]) -> T:
        """Perform a flow's actions until it returns."""
        reply: Any = None
        while True:
            try:
                action = flow.send(reply)
            except StopIteration as done:
                result: T = done.value  # StopIteration is not generic: the flow's return value
                return result
            if isinstance(action, Send):
                action.request.extensions["timeout"] = _timeout_extension(self._timeout)
                try:
                    reply = await self._http.send(action.request)
                except httpx.TransportError as exc:
                    reply = exc
            else:
                await self._sleep(action.seconds)
                reply = None

    async def login(self) -> AccessToken:
        return await self.run(self.session.login_flow())

    async def query(self, soql: str, batch_size: int | None = None) -> list[dict[str, Any]]:
        """All records of a SOQL query (every page)."""
        return await self.run(self.session.query_all_flow(soql, batch_size))

    async def query_iter(
        self, soql: str, batch_size: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Records of a SOQL query, fetching the next page only when needed."""
        page = await self.run(self.session.query_page_flow(soql, batch_size))
        for record in page.records:
            yield record
        while page.next_records_url:
            page = await self.run(self.session.next_page_flow(page.next_records_url))
            for record in page.records:
                yield record

    async def versions(self) -> list[dict[str, Any]]:
        return await self.run(self.session.versions_flow())

    async def describe(self, sobject: str) -> dict[str, Any]:
        return await self.run(self.session.describe_flow(sobject))

    async def get_record(self, sobject: str, record_id: str) -> dict[str, Any]:
        return await self.run(self.session.record_flow(sobject, record_id))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
