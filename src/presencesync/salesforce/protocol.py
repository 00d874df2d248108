"""The connector's logic without I/O, shared by the sync and the async client.

Every operation is a *flow*: a generator that yields actions (``Send`` a request, ``Sleep``) and
receives their results (an ``httpx.Response``, or the ``httpx.TransportError`` the send raised).
A driver (``SalesforceClient`` or ``AsyncSalesforceClient``) performs the actions. So login,
re-login on ``INVALID_SESSION_ID``, retry with backoff and paging are written once, and tests can
drive them with any transport and a fake clock.
"""

from __future__ import annotations

import random
import re
import ssl
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote

import httpx

from .auth import AccessToken, SalesforceCredentials, parse_token_response, token_request
from .errors import (
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceLimitError,
    SalesforceQueryError,
    SalesforceUnavailable,
)

T = TypeVar("T")

DEFAULT_API_VERSION = "v62.0"

# Error codes Salesforce uses for a query it refuses to run (REST API developer guide, "Status
# Codes and Error Responses", and SOQL reference).
QUERY_ERROR_CODES = frozenset(
    {
        "MALFORMED_QUERY",
        "INVALID_FIELD",
        "INVALID_TYPE",
        "INVALID_QUERY_FILTER_OPERATOR",
        "INVALID_QUERY_LOCATOR",
        "QUERY_TOO_COMPLICATED",
    }
)
# 429 is not documented for the REST API but proxies in front of an org may send it.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_LIMIT_INFO = re.compile(r"(?:^|[,\s])api-usage=(\d+)/(\d+)")


@dataclass(frozen=True)
class Send:
    """Action: send this request and resume the flow with the response (or transport error)."""

    request: httpx.Request


@dataclass(frozen=True)
class Sleep:
    """Action: wait this many seconds, then resume the flow with ``None``."""

    seconds: float


Action = Send | Sleep
Flow = Generator[Action, Any, T]


class ApiUsage(NamedTuple):
    """The org's API request usage from the ``Sforce-Limit-Info`` header."""

    used: int
    limit: int


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter for transient failures."""

    max_attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, retry_number: int, rng: random.Random, retry_after: float | None) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based).

        "Equal jitter": half the exponential step is fixed, half random, so waits grow with
        every retry while concurrent clients still spread out.
        """
        factor: int = 2 ** (retry_number - 1)  # int ** int is Any to mypy (negative exponents)
        step = min(self.max_delay, self.base_delay * factor)
        wait = step / 2 + rng.uniform(0, step / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


@dataclass(frozen=True)
class QueryPage:
    """One page of a SOQL result."""

    total_size: int
    records: list[dict[str, Any]]
    next_records_url: str | None


def parse_limit_info(header: str | None) -> ApiUsage | None:
    """``api-usage=18/5000`` (possibly among ``per-app-api-usage=...``) -> ApiUsage(18, 5000)."""
    if not header:
        return None
    match = _LIMIT_INFO.search(header)
    if match is None:
        return None
    return ApiUsage(int(match.group(1)), int(match.group(2)))


def error_of(response: httpx.Response) -> tuple[str, str]:
    """(errorCode, message) of a REST error body ``[{"message", "errorCode"}]``."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP_{response.status_code}", response.text[:200]
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict):
        code = body.get("errorCode") or body.get("error") or f"HTTP_{response.status_code}"
        message = body.get("message") or body.get("error_description") or ""
        return str(code), str(message)
    return f"HTTP_{response.status_code}", response.text[:200]


def _untrusted_certificate(error: httpx.TransportError) -> bool:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(error)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


@dataclass
class SalesforceSession:
    """State and flows of one connection to an org: token cache, API usage, retry policy.

    Not tied to an event loop or a thread; the drivers own the HTTP client.
    """

    credentials: SalesforceCredentials
    api_version: str = DEFAULT_API_VERSION
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rng: random.Random = field(default_factory=random.Random)
    token: AccessToken | None = None
    api_usage: ApiUsage | None = None
    login_count: int = 0

    def __post_init__(self) -> None:
        if not re.fullmatch(r"v\d+\.\d", self.api_version):
            raise ValueError(f"api_version must look like 'v62.0', not {self.api_version!r}")

    @property
    def data_path(self) -> str:
        return f"/services/data/{self.api_version}"

    # -- transport-level retry -------------------------------------------------------------

    def send_with_retry(self, build: Callable[[], httpx.Request]) -> Flow[httpx.Response]:
        """Send ``build()`` until it gets a non-transient answer or the attempts run out.

        ``build`` is called for every attempt so each gets a fresh request (and, for the
        REST API, the current token and instance URL).
        """
        last_error = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            # The runner resumes a Send with the response or the transport error.
            result: httpx.Response | httpx.TransportError = yield Send(build())
            retry_after: float | None = None
            if isinstance(result, httpx.TransportError):
                last_error = f"{type(result).__name__}: {result}"
                if _untrusted_certificate(result):
                    # Waiting does not make a certificate trusted: fail now.
                    raise SalesforceUnavailable(attempt, last_error)
            elif result.status_code in RETRYABLE_STATUS:
                code, message = error_of(result)
                last_error = f"HTTP {result.status_code} {code} {message}".rstrip()
                retry_after = _retry_after(result)
            else:
                return result
            if attempt < self.retry.max_attempts:
                yield Sleep(self.retry.delay(attempt, self.rng, retry_after))
        raise SalesforceUnavailable(self.retry.max_attempts, last_error)

    # -- OAuth -----------------------------------------------------------------------------

    def login_flow(self) -> Flow[AccessToken]:
        """Log in with the credentials' flow and cache the token."""
        response = yield from self.send_with_retry(lambda: token_request(self.credentials))
        self.token = parse_token_response(response)
        self.login_count += 1
        return self.token

    # -- REST ------------------------------------------------------------------------------

    def request_flow(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        *,
        is_query: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Flow[Any]:
        """Call the REST API at ``path`` (relative to the instance URL) and return its JSON.

        Logs in when there is no token. On 401 ``INVALID_SESSION_ID`` it logs in again once
        and retries; a second rejection raises SalesforceAuthError.
        """
        relogged = False
        while True:
            token = self.token
            if token is None:
                token = yield from self.login_flow()

            def build(token: AccessToken = token) -> httpx.Request:
                # Salesforce gives nextRecordsUrl as a path; accept a full URL all the same.
                url = (
                    path if path.startswith(("https://", "http://")) else token.instance_url + path
                )
                return httpx.Request(
                    method,
                    url,
                    params=params,
                    headers={
                        **(headers or {}),
                        "Authorization": f"Bearer {token.access_token}",
                        "Accept": "application/json",
                    },
                )

            response = yield from self.send_with_retry(build)
            usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
            if usage is not None:
                self.api_usage = usage
            if response.is_success:
                return _json(response)
            code, message = error_of(response)
            if response.status_code == 401:
                if code == "INVALID_SESSION_ID" and not relogged:
                    relogged = True
                    # Another caller may already have replaced the token; only drop ours.
                    if self.token is token:
                        self.token = None
                    continue
                raise SalesforceAuthError(code, message, 401)
            if code == "REQUEST_LIMIT_EXCEEDED":
                raise SalesforceLimitError(response.status_code, code, message)
            if code in QUERY_ERROR_CODES or (is_query and response.status_code == 400):
                raise SalesforceQueryError(response.status_code, code, message)
            raise SalesforceApiError(response.status_code, code, message)

    def query_page_flow(self, soql: str, batch_size: int | None = None) -> Flow[QueryPage]:
        """First page of a SOQL query. ``batch_size`` asks for pages of that many records
        (``Sforce-Query-Options: batchSize=N``; Salesforce accepts 200-2000 and treats it as a
        hint)."""
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else None
        body = yield from self.request_flow(
            "GET", f"{self.data_path}/query", {"q": soql}, is_query=True, headers=headers
        )
        return _page(body)

    def next_page_flow(self, next_records_url: str) -> Flow[QueryPage]:
        """A following page; ``nextRecordsUrl`` is a path on the instance."""
        body = yield from self.request_flow("GET", next_records_url, is_query=True)
        return _page(body)

    def query_all_flow(
        self, soql: str, batch_size: int | None = None
    ) -> Flow[list[dict[str, Any]]]:
        """Every record of a SOQL query, following ``nextRecordsUrl``."""
        page = yield from self.query_page_flow(soql, batch_size)
        records = list(page.records)
        while page.next_records_url:
            page = yield from self.next_page_flow(page.next_records_url)
            records.extend(page.records)
        return records

    def versions_flow(self) -> Flow[list[dict[str, Any]]]:
        """``GET /services/data/``: the API versions the org serves."""
        body = yield from self.request_flow("GET", "/services/data/")
        return list(body or [])

    def describe_flow(self, sobject: str) -> Flow[dict[str, Any]]:
        body = yield from self.request_flow(
            "GET", f"{self.data_path}/sobjects/{quote(sobject, safe='')}/describe"
        )
        return dict(body)

    def record_flow(self, sobject: str, record_id: str) -> Flow[dict[str, Any]]:
        body = yield from self.request_flow(
            "GET",
            f"{self.data_path}/sobjects/{quote(sobject, safe='')}/{quote(record_id, safe='')}",
        )
        return dict(body)


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        # e.g. an HTML page from a proxy or a maintenance window answering 200
        raise SalesforceApiError(
            response.status_code, "INVALID_RESPONSE", f"not JSON: {response.text[:120]!r}"
        ) from exc


def _page(body: Any) -> QueryPage:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SalesforceApiError(200, "INVALID_RESPONSE", "query response without records")
    next_url = body.get("nextRecordsUrl")
    return QueryPage(
        total_size=int(body.get("totalSize", len(body["records"]))),
        records=body["records"],
        next_records_url=next_url or None,
    )
