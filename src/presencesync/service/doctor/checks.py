"""The preflight's verdicts, without I/O: facts gathered from the org, the store and the
server (``probe.py``) go in, one :class:`CheckResult` per check comes out.

Each check says ``ok``, ``warning`` (works, but look at it), ``problem`` (presencesync will
not work until it is fixed: the CLI exits non-zero) or ``skipped`` (an earlier problem or a
missing input makes it meaningless), with what to do about it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

Status = Literal["ok", "warning", "problem", "skipped"]

OK: Status = "ok"
WARNING: Status = "warning"
PROBLEM: Status = "problem"
SKIPPED: Status = "skipped"

# The objects presencesync reads, in the order it needs them.
OMNI_OBJECTS = (
    "ServicePresenceStatus",
    "ServiceChannel",
    "ServiceChannelStatus",
    "UserServicePresence",
    "AgentWork",
)
API_DISABLED_CODES = frozenset({"API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED"})
DEFAULT_BUDGET_WARNING = 0.10  # warn when less than this share of the daily requests is left
INTEGRATION_PERMISSION_SET = "PresenceSync_Integration"
AGENT_PERMISSION_SET = "PresenceSync_Agent"
SETUP_GUIDE = "salesforce/SETUP.md"


@dataclass(frozen=True)
class CheckResult:
    id: str
    title: str
    status: Status
    message: str
    fix: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "message": self.message,
            "fix": self.fix,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class Report:
    checks: tuple[CheckResult, ...]

    def count(self, status: Status) -> int:
        return sum(1 for c in self.checks if c.status == status)

    @property
    def ok(self) -> bool:
        return self.count(PROBLEM) == 0

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary(self) -> str:
        parts = [f"{self.count(OK)} ok"]
        for status, word in ((WARNING, "warning"), (PROBLEM, "problem"), (SKIPPED, "skipped")):
            n = self.count(status)
            if n:
                parts.append(f"{n} {word}{'s' if n != 1 and status != SKIPPED else ''}")
        return ", ".join(parts)

    def to_api(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "summary": self.summary(),
            "problems": self.count(PROBLEM),
            "warnings": self.count(WARNING),
            "checks": [c.to_api() for c in self.checks],
        }

    def render_text(self) -> str:
        marks = {OK: "ok     ", WARNING: "WARNING", PROBLEM: "PROBLEM", SKIPPED: "skipped"}
        lines = []
        for c in self.checks:
            lines.append(f"[{marks[c.status]}] {c.title}: {c.message}")
            if c.fix and c.status in (WARNING, PROBLEM):
                lines.append(f"          -> {c.fix}")
        verdict = "presencesync is ready for this org" if self.ok else "fix the problems above"
        lines.append("")
        lines.append(f"{self.summary()}: {verdict}.")
        return "\n".join(lines)


# -- facts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginFact:
    flow: str  # "jwt_bearer" | "client_credentials"
    ok: bool
    error: str | None = None  # OAuth error, or "unreachable"
    description: str | None = None
    user_id: str | None = None
    username: str | None = None
    audience: str | None = None


@dataclass(frozen=True)
class ApiError:
    code: str
    message: str


@dataclass(frozen=True)
class OrgFacts:
    """What the org answered; None where a step did not run."""

    logins: tuple[LoginFact, ...] = ()
    rest_error: ApiError | None = None  # the call that stopped the gathering (API disabled...)
    versions: tuple[str, ...] | None = None
    integration_user: Mapping[str, Any] | None = None
    permission_sets: tuple[Mapping[str, Any], ...] | None = None
    permission_sets_error: ApiError | None = None
    object_errors: Mapping[str, ApiError | None] | None = None  # object -> None when readable
    statuses: Mapping[str, str] | None = None  # DeveloperName -> Id
    statuses_error: ApiError | None = None
    users: Mapping[str, Mapping[str, Any]] | None = None  # 15-char id -> User record
    users_error: ApiError | None = None
    grants: Mapping[str, frozenset[str]] | None = None  # 15-char user id -> 15-char status ids
    grants_visible: bool = True  # any SetupEntityAccess row for a mapped status in the org
    grants_error: ApiError | None = None
    api_limit: tuple[int, int] | None = None  # (max, remaining) of DailyApiRequests
    api_usage: tuple[int, int] | None = None  # (used, limit) from Sforce-Limit-Info
    csp_sites: tuple[Mapping[str, Any], ...] | None = None
    csp_error: ApiError | None = None


@dataclass(frozen=True)
class BridgeFacts:
    server_url: str
    script_ok: bool
    script_detail: str
    socket_ok: bool
    socket_detail: str


@dataclass(frozen=True)
class AgentLink:
    agent_id: str
    salesforce_user_id: str


@dataclass(frozen=True)
class Expectations:
    """What the account's store says the org must provide."""

    connection: bool  # a Salesforce connection is configured
    flows: tuple[str, ...]  # the OAuth flows it can use
    api_version: str  # "v62.0"
    state_statuses: tuple[str, ...] | None  # statuses presencesync sets (state mapping targets)
    other_statuses: tuple[str, ...] = ()  # statuses only named by presence mappings
    agents: tuple[AgentLink, ...] | None = None  # None: no account given
    server_url: str | None = None
    budget_warning: float = DEFAULT_BUDGET_WARNING
    change_data_capture: bool = False  # the account's setting (or --change-data-capture)


@dataclass(frozen=True)
class TopicFact:
    topic: str
    ok: bool  # subscribed (the Subscribe call was not refused)
    code: str | None = None  # gRPC status name, or "timeout" / "unreachable"
    error_code: str | None = None  # Salesforce's error-code trailer
    detail: str | None = None


@dataclass(frozen=True)
class PubSubFacts:
    """What the Pub/Sub API answered the integration user, per change event topic."""

    endpoint: str
    topics: tuple[TopicFact, ...] = ()
    error: str | None = None  # nothing could be asked (no login, a bad endpoint)


def id15(value: str) -> str:
    return value[:15]


# -- verdicts ------------------------------------------------------------------------------

_FLOW_NAMES = {"jwt_bearer": "JWT bearer flow", "client_credentials": "client credentials flow"}


def _login_fix(fact: LoginFact) -> str:
    error, text = fact.error or "", (fact.description or "").lower()
    if error == "unreachable":
        return (
            "Check the login URL (https://login.salesforce.com, https://test.salesforce.com or "
            "your My Domain URL), the network and, for a private CA, the CA file."
        )
    if "audience" in text:
        return (
            "The JWT 'aud' must be https://login.salesforce.com (production), "
            "https://test.salesforce.com (sandbox) or your Experience Cloud site URL, never the "
            f"My Domain URL (it was {fact.audience}): set the connection's audience."
        )
    if error == "invalid_client_id":
        return (
            "Use the External Client App's Consumer Key (Settings > OAuth Settings > Consumer "
            "Key and Secret)."
        )
    if error == "invalid_client":
        return "The Consumer Secret is wrong: copy it again from the External Client App."
    if "client credentials" in text:
        return (
            "Enable the Client Credentials Flow in the External Client App's settings and pick "
            "the integration user as Run As in its Policies."
        )
    if "signature" in text or "assertion" in text:
        return (
            "The private key does not match the certificate uploaded to the External Client "
            "App (Enable JWT Bearer Flow): upload the certificate of this key."
        )
    if "expired" in text:
        return (
            "The assertion was already expired when Salesforce read it: check this server's "
            "clock (NTP)."
        )
    if "approved" in text or "consumer" in text:
        return (
            f"Pre-authorize the integration user ({fact.username}): in the External Client App's "
            "Policies set Permitted Users to 'Admin approved users are pre-authorized' and select "
            f"the {INTEGRATION_PERMISSION_SET} permission set; check the username and that the "
            "user is active."
        )
    return f"See {SETUP_GUIDE}, step 'External Client App'."


def check_logins(exp: Expectations, facts: OrgFacts) -> list[CheckResult]:
    if not exp.connection:
        return [
            CheckResult(
                "login",
                "Salesforce login",
                PROBLEM,
                "no Salesforce connection is configured for this account",
                "Store one: presencesync doctor --account ID --login-url ... --client-id ... "
                "(--username U --private-key-file KEY | client secret) --save-connection",
            )
        ]
    results = []
    for fact in facts.logins:
        title = f"Salesforce login ({_FLOW_NAMES.get(fact.flow, fact.flow)})"
        if fact.ok:
            who = f" as {fact.username}" if fact.username else ""
            if not who and fact.user_id:
                who = f" (run-as user {fact.user_id})"
            results.append(
                CheckResult(
                    f"login.{fact.flow}",
                    title,
                    OK,
                    f"token issued{who}",
                    details={"user_id": fact.user_id, "audience": fact.audience},
                )
            )
        else:
            detail = f"{fact.error}: {fact.description}" if fact.description else str(fact.error)
            results.append(
                CheckResult(
                    f"login.{fact.flow}",
                    title,
                    PROBLEM,
                    f"Salesforce refused the login ({detail})",
                    _login_fix(fact),
                    {"error": fact.error, "description": fact.description},
                )
            )
    return results


def _logged_in(facts: OrgFacts) -> bool:
    return any(f.ok for f in facts.logins)


def _blocked(facts: OrgFacts, check_id: str, title: str) -> CheckResult | None:
    """A skipped result when no REST call could be made."""
    if not _logged_in(facts):
        return CheckResult(check_id, title, SKIPPED, "no login succeeded")
    if facts.rest_error is not None and facts.rest_error.code not in API_DISABLED_CODES:
        if facts.rest_error.code == "REQUEST_LIMIT_EXCEEDED":
            return CheckResult(check_id, title, SKIPPED, "the org's API budget is exhausted")
        return CheckResult(
            check_id, title, SKIPPED, f"the REST API failed ({facts.rest_error.code})"
        )
    if facts.rest_error is not None:
        return CheckResult(check_id, title, SKIPPED, "the integration user cannot use the API")
    return None


def check_api_version(exp: Expectations, facts: OrgFacts) -> CheckResult:
    title = f"REST API version {exp.api_version}"
    blocked = _blocked(facts, "api_version", title)
    if blocked is not None and facts.versions is None:
        return blocked
    versions = facts.versions or ()
    wanted = exp.api_version.lstrip("v")
    if wanted in versions:
        return CheckResult("api_version", title, OK, f"served (newest: v{max_version(versions)})")
    newest = max_version(versions) if versions else None
    return CheckResult(
        "api_version",
        title,
        PROBLEM,
        f"the org does not serve v{wanted}" + (f" (newest: v{newest})" if newest else ""),
        f"Run presencesync with an API version the org serves (e.g. --api-version v{newest})."
        if newest
        else "The org answered no API versions: check the login URL.",
        {"versions": list(versions)},
    )


def max_version(versions: Sequence[str]) -> str:
    return max(versions, key=lambda v: tuple(int(p) for p in v.split(".") if p.isdigit()))


def check_api_enabled(facts: OrgFacts) -> CheckResult:
    title = "Integration user: API Enabled"
    if not _logged_in(facts):
        return CheckResult("api_enabled", title, SKIPPED, "no login succeeded")
    if facts.rest_error is not None and facts.rest_error.code in API_DISABLED_CODES:
        return CheckResult(
            "api_enabled",
            title,
            PROBLEM,
            f"Salesforce refuses the integration user's API calls ({facts.rest_error.code}: "
            f"{facts.rest_error.message})",
            f"Assign the {INTEGRATION_PERMISSION_SET} permission set (API Enabled) to the "
            "integration user, and check that the org's edition includes API access.",
        )
    if facts.rest_error is not None and facts.versions is None:
        return CheckResult(
            "api_enabled", title, SKIPPED, f"the REST API failed ({facts.rest_error.code})"
        )
    return CheckResult("api_enabled", title, OK, "the REST API answers the integration user")


def check_view_setup(facts: OrgFacts) -> CheckResult:
    title = "Integration user: View Setup and Configuration"
    blocked = _blocked(facts, "view_setup", title)
    if blocked is not None:
        return blocked
    fix = (
        f"Assign the {INTEGRATION_PERMISSION_SET} permission set (View Setup and Configuration) "
        "to the integration user: presencesync needs it to read presence status API names and "
        "who may use which status."
    )
    if facts.permission_sets is None:
        error = facts.permission_sets_error
        return CheckResult(
            "view_setup",
            title,
            PROBLEM,
            "the integration user cannot read permission sets"
            + (f" ({error.code})" if error else ""),
            fix,
        )
    names = [str(ps.get("Label") or ps.get("Name")) for ps in facts.permission_sets]
    if any(ps.get("PermissionsViewSetup") for ps in facts.permission_sets):
        return CheckResult("view_setup", title, OK, "granted", details={"permission_sets": names})
    return CheckResult(
        "view_setup",
        title,
        PROBLEM,
        "none of the integration user's permission sets or profile grants it",
        fix,
        {"permission_sets": names},
    )


def check_object_access(facts: OrgFacts) -> CheckResult:
    title = "Integration user: read access to the Omni-Channel objects"
    blocked = _blocked(facts, "object_access", title)
    if blocked is not None or facts.object_errors is None:
        return blocked or CheckResult("object_access", title, SKIPPED, "not checked")
    denied = {o: e for o, e in facts.object_errors.items() if e is not None}
    if not denied:
        return CheckResult("object_access", title, OK, "reads " + ", ".join(facts.object_errors))
    parts = []
    for obj, error in denied.items():
        reason = "no read access" if error.code == "INVALID_TYPE" else error.code
        if error.code == "INVALID_FIELD":
            reason = "a field is hidden: " + error.message.splitlines()[-1]
        parts.append(f"{obj} ({reason})")
    return CheckResult(
        "object_access",
        title,
        PROBLEM,
        "cannot read " + "; ".join(parts),
        f"Assign the {INTEGRATION_PERMISSION_SET} permission set to the integration user (Read "
        "on Agent Work and User Presence; View Setup and Configuration for presence status API "
        "names), and check that Omni-Channel is enabled (Setup > Omni-Channel Settings).",
        {"denied": {o: e.code for o, e in denied.items()}},
    )


def check_presence_statuses(exp: Expectations, facts: OrgFacts) -> CheckResult:
    title = "Mapped presence statuses exist in the org"
    if exp.state_statuses is None:
        return CheckResult(
            "presence_statuses",
            title,
            SKIPPED,
            "no saved mapping to check"
            if exp.agents is not None
            else "no account given (--account)",
        )
    blocked = _blocked(facts, "presence_statuses", title)
    if blocked is not None:
        return blocked
    if facts.statuses is None:
        code = facts.statuses_error.code if facts.statuses_error else "not read"
        return CheckResult(
            "presence_statuses", title, SKIPPED, f"the org's statuses could not be read ({code})"
        )
    missing = [s for s in exp.state_statuses if s not in facts.statuses]
    stale = [s for s in exp.other_statuses if s not in facts.statuses and s not in missing]
    if missing:
        return CheckResult(
            "presence_statuses",
            title,
            PROBLEM,
            "the state mapping sets statuses the org does not have: " + ", ".join(missing),
            "Create them in Setup > Presence Statuses (same API names), or fetch the "
            "configuration again on the admin page and map the states to existing statuses.",
            {"missing": missing, "stale": stale},
        )
    if stale:
        return CheckResult(
            "presence_statuses",
            title,
            WARNING,
            "presence mappings name statuses the org no longer has: " + ", ".join(stale),
            "Fetch the Omni-channel configuration again on the admin page and save.",
            {"stale": stale},
        )
    n = len(exp.state_statuses)
    return CheckResult(
        "presence_statuses",
        title,
        OK,
        f"all {n} status{'es' if n != 1 else ''} the mapping sets exist",
    )


def check_agents(exp: Expectations, facts: OrgFacts) -> CheckResult:
    title = "Linked agents' Salesforce users exist and are active"
    if exp.agents is None:
        return CheckResult("agents", title, SKIPPED, "no account given (--account)")
    if not exp.agents:
        return CheckResult(
            "agents",
            title,
            WARNING,
            "no agent is linked to a Salesforce user yet",
            "Create agents with POST /api/v1/agents and their Salesforce user id (005...).",
        )
    blocked = _blocked(facts, "agents", title)
    if blocked is not None:
        return blocked
    if facts.users is None:
        code = facts.users_error.code if facts.users_error else "not read"
        return CheckResult("agents", title, SKIPPED, f"users could not be read ({code})")
    missing = [a for a in exp.agents if id15(a.salesforce_user_id) not in facts.users]
    inactive = [
        a
        for a in exp.agents
        if id15(a.salesforce_user_id) in facts.users
        and not facts.users[id15(a.salesforce_user_id)].get("IsActive")
    ]
    if missing or inactive:
        parts = []
        if missing:
            parts.append(
                "no such user: "
                + ", ".join(f"{a.agent_id} ({a.salesforce_user_id})" for a in missing)
            )
        if inactive:
            parts.append(
                "inactive: " + ", ".join(f"{a.agent_id} ({a.salesforce_user_id})" for a in inactive)
            )
        return CheckResult(
            "agents",
            title,
            PROBLEM,
            "; ".join(parts),
            "Link each agent to an active Salesforce user (Setup > Users: copy the 18-character "
            "id from the user's URL), or remove agents who left.",
            {
                "missing": [a.agent_id for a in missing],
                "inactive": [a.agent_id for a in inactive],
            },
        )
    return CheckResult("agents", title, OK, f"all {len(exp.agents)} active")


def check_status_access(exp: Expectations, facts: OrgFacts) -> CheckResult:
    title = "Mapped presence statuses granted to every linked agent"
    if exp.agents is None or exp.state_statuses is None:
        return CheckResult(
            "status_access",
            title,
            SKIPPED,
            "no account given (--account)" if exp.agents is None else "no saved mapping to check",
        )
    if not exp.agents or not exp.state_statuses:
        return CheckResult("status_access", title, SKIPPED, "no linked agents")
    blocked = _blocked(facts, "status_access", title)
    if blocked is not None:
        return blocked
    if facts.statuses is None or facts.grants is None:
        error = facts.grants_error or facts.statuses_error
        return CheckResult(
            "status_access",
            title,
            SKIPPED,
            "grants could not be read" + (f" ({error.code})" if error else ""),
        )
    checkable = [s for s in exp.state_statuses if s in facts.statuses]
    if not facts.grants_visible:
        return CheckResult(
            "status_access",
            title,
            WARNING,
            "Salesforce shows no presence status access through the API for any mapped status",
            "Check by hand that each agent's profile or permission set lists the mapped statuses "
            f"under Service Presence Status Access (the {AGENT_PERMISSION_SET} permission set).",
        )
    gaps: dict[str, list[str]] = {}
    for status in checkable:
        status_id = id15(facts.statuses[status])
        for agent in exp.agents:
            user = id15(agent.salesforce_user_id)
            if facts.users is not None and user not in facts.users:
                continue  # reported by the agents check
            if status_id not in facts.grants.get(user, frozenset()):
                gaps.setdefault(status, []).append(agent.agent_id)
    if gaps:
        text = "; ".join(f"{s} not granted to {', '.join(a)}" for s, a in gaps.items())
        return CheckResult(
            "status_access",
            title,
            PROBLEM,
            text,
            f"Add the statuses to the {AGENT_PERMISSION_SET} permission set (Setup > Permission "
            "Sets > presencesync Agent > Service Presence Status Access) and assign it to every "
            "agent: the Omni-Channel toolkit refuses a status the agent may not use.",
            {"missing": gaps},
        )
    return CheckResult(
        "status_access",
        title,
        OK,
        f"{len(checkable)} status{'es' if len(checkable) != 1 else ''} x {len(exp.agents)} agents",
    )


def check_api_budget(exp: Expectations, facts: OrgFacts) -> CheckResult:
    title = "Daily API requests left"
    if not _logged_in(facts):
        return CheckResult("api_budget", title, SKIPPED, "no login succeeded")
    if facts.rest_error is not None and facts.rest_error.code == "REQUEST_LIMIT_EXCEEDED":
        return CheckResult(
            "api_budget",
            title,
            PROBLEM,
            "the org's daily API request limit is exhausted (REQUEST_LIMIT_EXCEEDED)",
            "Wait for the 24-hour window to roll over, find the integration that uses the "
            "requests (Setup > System Overview, API usage), or buy more API capacity.",
        )
    if facts.api_limit is not None:
        limit, remaining = facts.api_limit
        used = limit - remaining
    elif facts.api_usage is not None:
        used, limit = facts.api_usage
        remaining = limit - used
    else:
        return CheckResult("api_budget", title, SKIPPED, "the org reported no API usage")
    remaining = max(0, remaining)
    details = {"limit": limit, "used": used, "remaining": remaining}
    if remaining <= 0:
        return CheckResult(
            "api_budget",
            title,
            PROBLEM,
            f"none of {limit} left",
            "Wait for the 24-hour window to roll over or find the integration that uses them.",
            details,
        )
    if limit and remaining < exp.budget_warning * limit:
        return CheckResult(
            "api_budget",
            title,
            WARNING,
            f"{remaining} of {limit} left (less than {exp.budget_warning:.0%})",
            "Reconciliation and configuration fetches stop when the budget runs out: find what "
            "uses the requests (Setup > System Overview).",
            details,
        )
    return CheckResult("api_budget", title, OK, f"{remaining} of {limit} left", details=details)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    scheme = (parts.scheme or "").lower()
    default = {"https": 443, "wss": 443, "http": 80, "ws": 80}.get(scheme)
    return scheme, (parts.hostname or "").lower(), parts.port or default


def bridge_socket_url(server_url: str) -> str:
    scheme, host, port = _origin(server_url)
    ws = "wss" if scheme in ("https", "wss") else "ws"
    default = 443 if ws == "wss" else 80
    netloc = host if port in (None, default) else f"{host}:{port}"
    return f"{ws}://{netloc}"


def check_bridge(exp: Expectations, bridge: BridgeFacts | None) -> CheckResult:
    title = "Bridge reachable"
    if bridge is None:
        return CheckResult(
            "bridge", title, SKIPPED, "no server URL given (--server-url https://your-server)"
        )
    title = f"Bridge reachable at {bridge.server_url}"
    if bridge.script_ok and bridge.socket_ok:
        return CheckResult("bridge", title, OK, f"{bridge.script_detail}; {bridge.socket_detail}")
    parts = [
        d
        for ok, d in (
            (bridge.script_ok, bridge.script_detail),
            (bridge.socket_ok, bridge.socket_detail),
        )
        if not ok
    ]
    return CheckResult(
        "bridge",
        title,
        PROBLEM,
        "; ".join(parts),
        "The agents' browsers must reach this server over TLS: check --server-url, DNS, the "
        "proxy (WebSocket upgrade on /api/v1/bridge) and the certificate.",
        {"script": bridge.script_detail, "socket": bridge.socket_detail},
    )


def check_csp(exp: Expectations, facts: OrgFacts) -> CheckResult:
    title = "CSP Trusted Site for the bridge"
    if exp.server_url is None:
        return CheckResult("csp_trusted_site", title, SKIPPED, "no server URL given")
    blocked = _blocked(facts, "csp_trusted_site", title)
    if blocked is not None:
        return blocked
    if facts.csp_sites is None:
        code = facts.csp_error.code if facts.csp_error else "not read"
        return CheckResult(
            "csp_trusted_site", title, SKIPPED, f"trusted URLs could not be read ({code})"
        )
    want = _origin(bridge_socket_url(exp.server_url))
    secure = want[0] == "wss"
    fitting_schemes = {"wss", "https"} if secure else {"ws", "http"}
    same_host = []
    for site in facts.csp_sites:
        scheme, host, port = _origin(str(site.get("EndpointUrl") or ""))
        if host == want[1] and port == want[2] and scheme in fitting_schemes:
            same_host.append(site)
    fix = (
        "Deploy the package's CSP Trusted Site with endpointUrl "
        f"{bridge_socket_url(exp.server_url)} (salesforce/package/cspTrustedSites), or add it in "
        "Setup > Trusted URLs: active, "
        "context Lightning Experience (or All), connect-src checked."
    )
    for site in same_host:
        applies = site.get("Context") in ("LEX", "All", None)
        # Salesforce treats a site with every isApplicable* false as applicable to all.
        flags = [site.get(k) for k in site if str(k).startswith("IsApplicableTo")]
        connect = site.get("IsApplicableToConnectSrc") or (flags and not any(flags))
        if site.get("IsActive") and applies and connect:
            return CheckResult(
                "csp_trusted_site",
                title,
                OK,
                f"{site.get('DeveloperName')} allows {site.get('EndpointUrl')}",
            )
    if same_host:
        site = same_host[0]
        return CheckResult(
            "csp_trusted_site",
            title,
            PROBLEM,
            f"{site.get('DeveloperName')} names the server but is inactive, not for Lightning "
            "Experience or not for connect-src",
            fix,
        )
    return CheckResult(
        "csp_trusted_site",
        title,
        PROBLEM,
        f"no trusted URL allows {bridge_socket_url(exp.server_url)}: Lightning blocks the bridge's "
        "WebSocket",
        fix,
        {"sites": [s.get("EndpointUrl") for s in facts.csp_sites]},
    )


_CDC_TITLE = "Change Data Capture over the Pub/Sub API"
_CDC_OBJECTS = "User Presence (UserServicePresence) and Agent Work (AgentWork)"


def _cdc_fix(fact: TopicFact, endpoint: str) -> str:
    code, error = fact.code or "", (fact.error_code or "") + " " + (fact.detail or "")
    if code == "NOT_FOUND" or ("topic" in error.lower() and "not" in error.lower()):
        return (
            f"In Setup, Quick Find 'Change Data Capture': move {_CDC_OBJECTS} to Selected "
            f"Entities and Save (see {SETUP_GUIDE}, 'Change Data Capture')."
        )
    if code == "PERMISSION_DENIED":
        return (
            f"Give the integration user View All on {_CDC_OBJECTS}: assign the "
            f"{INTEGRATION_PERMISSION_SET} permission set (it grants Read and View All)."
        )
    if code in ("UNAUTHENTICATED",):
        return "The Pub/Sub API refused the token: check the login checks above."
    return (
        f"Check that this server reaches {endpoint} (outbound TCP, HTTP/2 and TLS: Salesforce "
        "serves api.pubsub.salesforce.com:7443) and the connection's --pubsub-endpoint."
    )


def check_change_data_capture(exp: Expectations, pubsub: PubSubFacts | None) -> CheckResult:
    if not exp.change_data_capture:
        return CheckResult(
            "change_data_capture",
            _CDC_TITLE,
            SKIPPED,
            "off for this account (the change_data_capture setting; doctor "
            "--change-data-capture checks it before you turn it on)",
        )
    if pubsub is None or pubsub.error is not None:
        why = "no login succeeded" if pubsub is None else pubsub.error
        return CheckResult("change_data_capture", _CDC_TITLE, SKIPPED, str(why))
    failed = [t for t in pubsub.topics if not t.ok]
    details = {
        "endpoint": pubsub.endpoint,
        "topics": {
            t.topic: "subscribed" if t.ok else f"{t.code} {t.error_code or ''}".strip()
            for t in pubsub.topics
        },
    }
    if not failed:
        names = " and ".join(t.topic for t in pubsub.topics)
        return CheckResult(
            "change_data_capture",
            _CDC_TITLE,
            OK,
            f"subscribed to {names} at {pubsub.endpoint}",
            details=details,
        )
    first = failed[0]
    reasons = "; ".join(
        f"{t.topic}: {t.code}"
        + (f" {t.error_code}" if t.error_code else "")
        + (f" ({t.detail})" if t.detail else "")
        for t in failed
    )
    return CheckResult(
        "change_data_capture",
        _CDC_TITLE,
        PROBLEM,
        f"the Pub/Sub API at {pubsub.endpoint} refused: {reasons}",
        _cdc_fix(first, pubsub.endpoint),
        details,
    )


def evaluate(
    exp: Expectations,
    facts: OrgFacts,
    bridge: BridgeFacts | None,
    pubsub: PubSubFacts | None = None,
) -> Report:
    """Every check, in the order an admin fixes them."""
    return Report(
        (
            *check_logins(exp, facts),
            check_api_version(exp, facts),
            check_api_enabled(facts),
            check_view_setup(facts),
            check_object_access(facts),
            check_presence_statuses(exp, facts),
            check_agents(exp, facts),
            check_status_access(exp, facts),
            check_api_budget(exp, facts),
            check_bridge(exp, bridge),
            check_csp(exp, facts),
            # Only for an account that uses it (or asked with --change-data-capture).
            *([check_change_data_capture(exp, pubsub)] if exp.change_data_capture else []),
        )
    )
