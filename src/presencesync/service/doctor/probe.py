"""The preflight's I/O: ask the org (through the connector) and the server (HTTP and the
bridge WebSocket) for the facts ``checks.py`` judges.

The org is asked as the integration user, with the SOQL Salesforce documents for each fact:

- ``PermissionSetAssignment`` with ``PermissionSet.PermissionsApiEnabled`` /
  ``PermissionsViewSetup`` (a profile's permissions are a permission set the profile owns, so
  profiles count too);
- a ``LIMIT 1`` probe of every query presencesync runs (an object the user may not read does not
  exist for them: ``INVALID_TYPE``; a hidden field: ``INVALID_FIELD``);
- ``User`` (``IsActive``) for the linked agents;
- ``PermissionSetAssignment`` of the agents and ``SetupEntityAccess`` rows whose
  ``SetupEntityId`` is a mapped presence status (filtered by id, not by ``SetupEntityType``:
  Salesforce's list of that picklist's values does not name presence statuses);
- ``/services/data/vNN.0/limits`` (``DailyApiRequests``), else the ``Sforce-Limit-Info`` header;
- ``CspTrustedSite`` (``EndpointUrl``, ``IsActive``, ``Context``, ``IsApplicableToConnectSrc``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from presencesync.salesforce import (
    DEFAULT_API_VERSION,
    AsyncSalesforceClient,
    RetryPolicy,
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceCredentials,
    SalesforceError,
    SalesforceLimitError,
    SalesforceUnavailable,
)
from presencesync.salesforce.models import OPEN_WORK_STATUSES
from presencesync.salesforce.omni import (
    CURRENT_PRESENCE_SOQL,
    OPEN_WORK_SOQL,
    chunked,
    soql_in,
    soql_quote,
)
from presencesync.service.doctor.checks import (
    API_DISABLED_CODES,
    OMNI_OBJECTS,
    AgentLink,
    ApiError,
    BridgeFacts,
    Expectations,
    LoginFact,
    OrgFacts,
    PubSubFacts,
    Report,
    TopicFact,
    bridge_socket_url,
    evaluate,
    id15,
)
from presencesync.service.model import SalesforceConnection

ClientFactory = Callable[[SalesforceConnection], Any]

# The queries presencesync runs, cut to one row: if these work, the real ones do.
PROBES: dict[str, str] = {
    "ServicePresenceStatus": "SELECT Id, DeveloperName, MasterLabel FROM ServicePresenceStatus",
    "ServiceChannel": "SELECT Id, DeveloperName, MasterLabel FROM ServiceChannel",
    "ServiceChannelStatus": (
        "SELECT Id, ServicePresenceStatusId, ServiceChannelId FROM ServiceChannelStatus"
    ),
    "UserServicePresence": CURRENT_PRESENCE_SOQL,
    "AgentWork": OPEN_WORK_SOQL.format(statuses=soql_in(OPEN_WORK_STATUSES)),
}
assert tuple(PROBES) == OMNI_OBJECTS


@dataclass(frozen=True)
class DoctorInputs:
    """What to check: a connection (stored or given), and, with an account, its mapping and
    linked agents."""

    connection: SalesforceConnection | None
    state_statuses: tuple[str, ...] | None = None
    other_statuses: tuple[str, ...] = ()
    agents: tuple[AgentLink, ...] | None = None
    server_url: str | None = None
    api_version: str = DEFAULT_API_VERSION
    budget_warning: float = 0.10
    change_data_capture: bool = False  # check the Pub/Sub API subscription too

    def flows(self) -> tuple[str, ...]:
        c = self.connection
        if c is None:
            return ()
        flows = []
        if c.private_key_pem and c.username:
            flows.append("jwt_bearer")
        if c.client_secret:
            flows.append("client_credentials")
        return tuple(flows)

    def expectations(self) -> Expectations:
        return Expectations(
            connection=self.connection is not None and bool(self.flows()),
            flows=self.flows(),
            api_version=self.api_version,
            state_statuses=self.state_statuses,
            other_statuses=self.other_statuses,
            agents=self.agents,
            server_url=self.server_url,
            budget_warning=self.budget_warning,
            change_data_capture=self.change_data_capture,
        )


def connection_for_flow(connection: SalesforceConnection, flow: str) -> SalesforceConnection:
    """The connection reduced to one OAuth flow (a stored connection may hold both)."""
    if flow == "jwt_bearer":
        return replace(connection, client_secret=None)
    return replace(connection, private_key_pem=None)


def default_client_factory(connection: SalesforceConnection) -> AsyncSalesforceClient:
    # Few retries: the admin is waiting, and a failing org should say so quickly.
    return AsyncSalesforceClient(
        SalesforceCredentials.from_connection(connection),
        verify=connection.verify,
        timeout=10.0,
        retry=RetryPolicy(max_attempts=2, base_delay=0.2),
    )


async def _run(client: Any, flow: Any) -> Any:
    result = client.run(flow)
    return await result if inspect.isawaitable(result) else result


async def _close(client: Any) -> None:
    closer = getattr(client, "aclose", None) or getattr(client, "close", None)
    if closer is not None:
        result = closer()
        if inspect.isawaitable(result):
            await result


class _Stop(Exception):
    """The org refuses every further call (API disabled, budget exhausted, unreachable)."""

    def __init__(self, error: ApiError) -> None:
        self.error = error


def _api_error(exc: Exception) -> ApiError:
    if isinstance(exc, SalesforceApiError):
        return ApiError(exc.error_code, exc.message)
    if isinstance(exc, SalesforceAuthError):
        return ApiError(exc.error, exc.description)
    if isinstance(exc, SalesforceUnavailable):
        return ApiError("UNAVAILABLE", exc.last_error)
    return ApiError(type(exc).__name__, str(exc))


class _Org:
    """One logged-in client and the calls the gathering makes with it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.session = client.session

    async def call(self, flow: Any) -> Any:
        """Run a flow; errors that stop everything raise _Stop, others propagate."""
        try:
            return await _run(self.client, flow)
        except SalesforceLimitError as exc:
            raise _Stop(ApiError(exc.error_code, exc.message)) from exc
        except SalesforceApiError as exc:
            if exc.error_code in API_DISABLED_CODES:
                raise _Stop(ApiError(exc.error_code, exc.message)) from exc
            raise
        except (SalesforceUnavailable, SalesforceAuthError, httpx.HTTPError, OSError) as exc:
            raise _Stop(_api_error(exc)) from exc

    async def query(self, soql: str) -> list[dict[str, Any]]:
        return list(await self.call(self.session.query_all_flow(soql)))

    async def query_in(self, soql: str, field: str, values: Sequence[str]) -> list[dict[str, Any]]:
        """``soql WHERE field IN (values)``, in chunks (long IN lists make long URLs)."""
        records: list[dict[str, Any]] = []
        for chunk in chunked(list(dict.fromkeys(values))):
            records += await self.query(f"{soql} WHERE {field} IN ({soql_in(chunk)})")
        return records


def _user_id(identity_url: str | None) -> str | None:
    # .../id/<org id>/<user id>
    if not identity_url:
        return None
    tail = identity_url.rstrip("/").rsplit("/", 1)[-1]
    return tail if tail.startswith("005") else None


async def _logins(
    inputs: DoctorInputs, make_client: ClientFactory
) -> tuple[list[LoginFact], Any | None]:
    assert inputs.connection is not None
    facts: list[LoginFact] = []
    main: Any | None = None
    for flow in inputs.flows():
        connection = connection_for_flow(inputs.connection, flow)
        credentials = SalesforceCredentials.from_connection(connection)
        audience = credentials.jwt_audience if flow == "jwt_bearer" else None
        username = connection.username if flow == "jwt_bearer" else None
        client = make_client(connection)
        try:
            token = await _run(client, client.session.login_flow())
        except SalesforceAuthError as exc:
            facts.append(
                LoginFact(flow, False, exc.error, exc.description, None, username, audience)
            )
            await _close(client)
            continue
        except (SalesforceError, httpx.HTTPError, OSError) as exc:
            facts.append(LoginFact(flow, False, "unreachable", str(exc), None, username, audience))
            await _close(client)
            continue
        facts.append(
            LoginFact(flow, True, None, None, _user_id(token.identity_url), username, audience)
        )
        if main is None:
            main = client
        else:
            await _close(client)
    return facts, main


async def gather_org(inputs: DoctorInputs, make_client: ClientFactory) -> OrgFacts:
    """Everything the checks need from the org. Never raises for what the org answers: a
    refusal is a fact."""
    if inputs.connection is None or not inputs.flows():
        return OrgFacts()
    logins, client = await _logins(inputs, make_client)
    facts: dict[str, Any] = {"logins": tuple(logins)}
    if client is None:
        return OrgFacts(**facts)
    org = _Org(client)
    try:
        await _gather_rest(org, inputs, logins, facts)
    except _Stop as stop:
        facts["rest_error"] = stop.error
    finally:
        usage = org.session.api_usage
        if usage is not None:
            facts["api_usage"] = (usage.used, usage.limit)
        await _close(client)
    return OrgFacts(**facts)


async def _gather_rest(
    org: _Org, inputs: DoctorInputs, logins: Sequence[LoginFact], facts: dict[str, Any]
) -> None:
    versions = await org.call(org.session.versions_flow())
    facts["versions"] = tuple(str(v.get("version")) for v in versions if isinstance(v, dict))
    user_id = next((f.user_id for f in logins if f.ok and f.user_id), None)
    if user_id:
        user_rows = await org.query(
            f"SELECT Id, Username, Name, IsActive FROM User WHERE Id = {soql_quote(user_id)}"
        )
        facts["integration_user"] = user_rows[0] if user_rows else None
        try:
            facts["permission_sets"] = tuple(
                {
                    "Name": (r.get("PermissionSet") or {}).get("Name"),
                    "Label": (r.get("PermissionSet") or {}).get("Label"),
                    "IsOwnedByProfile": (r.get("PermissionSet") or {}).get("IsOwnedByProfile"),
                    "PermissionsApiEnabled": (r.get("PermissionSet") or {}).get(
                        "PermissionsApiEnabled"
                    ),
                    "PermissionsViewSetup": (r.get("PermissionSet") or {}).get(
                        "PermissionsViewSetup"
                    ),
                }
                for r in await org.query(
                    "SELECT PermissionSetId, PermissionSet.Name, PermissionSet.Label,"
                    " PermissionSet.IsOwnedByProfile, PermissionSet.PermissionsApiEnabled,"
                    " PermissionSet.PermissionsViewSetup FROM PermissionSetAssignment"
                    f" WHERE AssigneeId = {soql_quote(user_id)}"
                )
            )
        except SalesforceApiError as exc:
            facts["permission_sets_error"] = _api_error(exc)
    object_errors: dict[str, ApiError | None] = {}
    for sobject, soql in PROBES.items():
        try:
            await org.query(f"{soql} LIMIT 1")
            object_errors[sobject] = None
        except SalesforceApiError as exc:
            object_errors[sobject] = _api_error(exc)
    facts["object_errors"] = object_errors

    statuses: dict[str, str] | None = None
    try:
        rows = await org.query("SELECT Id, DeveloperName FROM ServicePresenceStatus")
        statuses = {str(r["DeveloperName"]): str(r["Id"]) for r in rows}
        facts["statuses"] = statuses
    except SalesforceApiError as exc:
        facts["statuses_error"] = _api_error(exc)

    agents = inputs.agents or ()
    users: dict[str, dict[str, Any]] | None = None
    if agents:
        try:
            rows = await org.query_in(
                "SELECT Id, Username, Name, IsActive FROM User",
                "Id",
                [a.salesforce_user_id for a in agents],
            )
            users = {id15(str(r["Id"])): r for r in rows}
            facts["users"] = users
        except SalesforceApiError as exc:
            facts["users_error"] = _api_error(exc)

    wanted = [s for s in (inputs.state_statuses or ()) if statuses and s in statuses]
    if agents and statuses is not None and wanted:
        try:
            await _gather_grants(org, agents, [statuses[s] for s in wanted], facts)
        except SalesforceApiError as exc:
            facts["grants_error"] = _api_error(exc)

    try:
        limits = await org.call(org.session.request_flow("GET", f"{org.session.data_path}/limits"))
        daily = limits.get("DailyApiRequests") if isinstance(limits, dict) else None
        if isinstance(daily, dict) and "Max" in daily and "Remaining" in daily:
            facts["api_limit"] = (int(daily["Max"]), int(daily["Remaining"]))
    except SalesforceApiError:
        pass  # the Sforce-Limit-Info header of the other calls says the same

    if inputs.server_url:
        try:
            rows = await org.query(
                "SELECT DeveloperName, EndpointUrl, IsActive, Context, IsApplicableToConnectSrc,"
                " IsApplicableToFontSrc, IsApplicableToFrameSrc, IsApplicableToImgSrc,"
                " IsApplicableToMediaSrc, IsApplicableToStyleSrc FROM CspTrustedSite"
            )
            facts["csp_sites"] = tuple(rows)
        except SalesforceApiError as exc:
            facts["csp_error"] = _api_error(exc)


async def _gather_grants(
    org: _Org, agents: Iterable[AgentLink], status_ids: Sequence[str], facts: dict[str, Any]
) -> None:
    """Which mapped statuses each agent may use: the permission sets assigned to them
    (profile-owned ones included) and the SetupEntityAccess rows of those sets."""
    assignments = await org.query_in(
        "SELECT AssigneeId, PermissionSetId FROM PermissionSetAssignment",
        "AssigneeId",
        [a.salesforce_user_id for a in agents],
    )
    sets_of: dict[str, set[str]] = {}
    for row in assignments:
        sets_of.setdefault(id15(str(row["AssigneeId"])), set()).add(
            id15(str(row["PermissionSetId"]))
        )
    all_sets = sorted({ps for sets in sets_of.values() for ps in sets})
    granted: dict[str, set[str]] = {}  # permission set -> statuses
    status_filter = f" AND SetupEntityId IN ({soql_in(status_ids)})"
    for chunk in chunked(all_sets):
        rows = await org.query(
            "SELECT ParentId, SetupEntityId FROM SetupEntityAccess"
            f" WHERE ParentId IN ({soql_in(chunk)}){status_filter}"
        )
        for row in rows:
            granted.setdefault(id15(str(row["ParentId"])), set()).add(
                id15(str(row["SetupEntityId"]))
            )
    facts["grants"] = {
        user: frozenset(s for ps in sets for s in granted.get(ps, ()))
        for user, sets in sets_of.items()
    }
    if not granted:
        # Nobody seems to have any mapped status: does the org show such grants at all?
        any_row = await org.query(
            "SELECT Id FROM SetupEntityAccess"
            f" WHERE SetupEntityId IN ({soql_in(status_ids)}) LIMIT 1"
        )
        facts["grants_visible"] = bool(any_row)


# -- the server ----------------------------------------------------------------------------


async def probe_bridge(
    server_url: str, *, timeout: float = 5.0, verify: bool | ssl.SSLContext = True
) -> BridgeFacts:
    """Does the server answer where the agents' consoles will look for it: the bridge script
    over HTTP(S) and the bridge WebSocket (a hello without a token must be refused with 4401,
    which proves it is presencesync's bridge endpoint that answered)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

    base = server_url.rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=timeout, verify=verify) as http:
            response = await http.get(base + "/static/bridge.js")
        script_ok = response.status_code == 200 and "PresenceSyncBridge" in response.text
        script = f"GET /static/bridge.js: HTTP {response.status_code}" + (
            "" if script_ok or response.status_code != 200 else " but not the bridge script"
        )
    except httpx.HTTPError as exc:
        script_ok, script = False, f"GET /static/bridge.js failed: {exc or type(exc).__name__}"

    url = bridge_socket_url(base) + "/api/v1/bridge"
    ssl_option: Any = None
    if url.startswith("wss://"):
        ssl_option = verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()
        if verify is False:
            ssl_option.check_hostname = False
            ssl_option.verify_mode = ssl.CERT_NONE
    hello = {"type": "hello", "token": "", "session": "presencesync-doctor"}
    try:
        async with connect(url, open_timeout=timeout, ssl=ssl_option, proxy=None) as ws:
            await ws.send(json.dumps(hello))
            reply = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        socket_ok = reply.get("type") == "error" and reply.get("code") == "UNAUTHORIZED"
        socket = f"WebSocket {url}: " + (
            "answers (refused an empty token, as it should)"
            if socket_ok
            else f"unexpected answer {reply!r}"
        )
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else None
        socket_ok = code == 4401
        socket = f"WebSocket {url}: closed with {code}"
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ValueError) as exc:
        socket_ok, socket = False, f"WebSocket {url} failed: {exc or type(exc).__name__}"
    return BridgeFacts(base, script_ok, script, socket_ok, socket)


# -- the Pub/Sub API -----------------------------------------------------------------------


async def probe_topic(
    client: Any, topic: str, endpoint: str, *, verify: Any = True, timeout: float = 8.0
) -> TopicFact:
    """Subscribe to `topic` (LATEST, one event asked for) as the client's user and see whether
    Salesforce refuses it: a refusal comes at once; a call still open after the subscriber's
    settle time is a subscription. Nothing is consumed or stored."""
    from presencesync.salesforce.pubsub import PubSubSubscriber, ReconnectPolicy
    from presencesync.service.cdc import pubsub_endpoint

    target = pubsub_endpoint(endpoint)
    roots = None
    if target.secure and isinstance(verify, str) and verify:
        with contextlib.suppress(OSError):
            roots = Path(verify).read_bytes()
    subscriber = PubSubSubscriber(
        client,
        topic,
        target=target.target,
        secure=target.secure,
        root_certificates=roots,
        batch_size=1,
        auto_confirm=False,
        reconnect=ReconnectPolicy(base_delay=0.2, max_delay=0.5, max_auth_failures=1),
    )
    events = subscriber.events()
    first = asyncio.ensure_future(anext(events))
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not subscriber.streaming and not first.done():
            refused_again = subscriber.stats.connects >= 3 and subscriber.stats.last_error
            if refused_again or asyncio.get_running_loop().time() > deadline:
                last = subscriber.stats.last_error
                code = "UNAVAILABLE" if last else "timeout"
                return TopicFact(topic, False, code, None, last or f"no answer in {timeout:.0f} s")
            await asyncio.sleep(0.05)
        if first.done() and not first.cancelled() and first.exception() is not None:
            error = first.exception()
            return TopicFact(
                topic,
                False,
                getattr(error, "status", None) or type(error).__name__,
                getattr(error, "error_code", None) or None,
                getattr(error, "message", None) or str(error),
            )
        return TopicFact(topic, True)
    finally:
        first.cancel()
        with contextlib.suppress(BaseException):
            await first
        with contextlib.suppress(Exception):
            await events.aclose()
        await subscriber.close()


async def gather_pubsub(inputs: DoctorInputs, make_client: ClientFactory) -> PubSubFacts | None:
    """Both change event topics, subscribed as the integration user (None: not asked)."""
    from presencesync.salesforce.pubsub import TOPIC_AGENT_WORK, TOPIC_USER_SERVICE_PRESENCE
    from presencesync.service.cdc import pubsub_endpoint

    if not inputs.change_data_capture or inputs.connection is None or not inputs.flows():
        return None
    configured = inputs.connection.pubsub_endpoint
    try:
        endpoint = pubsub_endpoint(configured)
    except ValueError as exc:
        return PubSubFacts(configured or "", error=str(exc))
    shown = ("" if endpoint.secure else "grpc://") + endpoint.target
    connection = connection_for_flow(inputs.connection, inputs.flows()[0])
    client = make_client(connection)
    if not hasattr(client, "invalidate_token") or not inspect.iscoroutinefunction(
        getattr(client, "login", None)
    ):
        await _close(client)
        return PubSubFacts(shown, error="the Pub/Sub API needs an asyncio Salesforce client")
    try:
        try:
            await client.login()
        except (SalesforceError, httpx.HTTPError, OSError) as exc:
            return PubSubFacts(shown, error=f"no login for the Pub/Sub API ({exc})")
        topics = await asyncio.gather(
            *(
                probe_topic(client, topic, configured or "", verify=connection.verify)
                for topic in (TOPIC_USER_SERVICE_PRESENCE, TOPIC_AGENT_WORK)
            )
        )
        return PubSubFacts(shown, tuple(topics))
    finally:
        await _close(client)


BridgeProbe = Callable[[str], Any]


async def run_doctor(
    inputs: DoctorInputs,
    make_client: ClientFactory | None = None,
    bridge_probe: BridgeProbe | None = None,
) -> Report:
    """Gather and judge. `make_client` turns a connection into a connector client (default:
    an AsyncSalesforceClient); `bridge_probe(server_url)` returns BridgeFacts."""
    factory = make_client or default_client_factory
    probe = bridge_probe or probe_bridge
    org_task = gather_org(inputs, factory)
    if inputs.server_url:
        facts, bridge = await asyncio.gather(org_task, probe(inputs.server_url))
    else:
        facts, bridge = await org_task, None
    pubsub = await gather_pubsub(inputs, factory) if any(f.ok for f in facts.logins) else None
    return evaluate(inputs.expectations(), facts, bridge, pubsub)


# -- the store -----------------------------------------------------------------------------


def inputs_from_store(
    engine: Any,
    account_id: str,
    *,
    connection: SalesforceConnection | None = None,
    server_url: str | None = None,
    api_version: str = DEFAULT_API_VERSION,
    budget_warning: float = 0.10,
    change_data_capture: bool = False,
) -> DoctorInputs:
    """The account's stored connection (unless `connection` replaces it), mapping and linked
    agents; the Change Data Capture check when the account has it on (or
    `change_data_capture`)."""
    stored = engine.get_salesforce_connection(account_id)
    config = engine.get_omni_config(account_id)
    state_statuses: tuple[str, ...] | None = None
    others: tuple[str, ...] = ()
    if config is not None:
        state_statuses = tuple(
            dict.fromkeys(m.presence_status for m in config.config.state_mappings)
        )
        others = tuple(
            m.presence_status
            for m in config.config.presence_mappings
            if m.presence_status not in state_statuses
        )
    agents: list[AgentLink] = []
    after: str | None = None
    while True:
        page = engine.list_agents(account_id, limit=500, after=after)
        agents += [
            AgentLink(r.agent_id, r.salesforce_user_id) for r in page if r.salesforce_user_id
        ]
        if len(page) < 500:
            break
        after = page[-1].agent_id
    return DoctorInputs(
        connection=connection or stored,
        state_statuses=state_statuses,
        other_statuses=others,
        agents=tuple(agents),
        server_url=server_url,
        api_version=api_version,
        budget_warning=budget_warning,
        change_data_capture=change_data_capture
        or bool(engine.get_settings(account_id).change_data_capture),
    )
