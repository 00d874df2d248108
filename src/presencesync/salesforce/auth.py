"""OAuth 2.0 login to Salesforce: JWT bearer flow and client-credentials flow.

Only request building and response parsing live here (no I/O), so the sync and async clients
share them. Both flows POST a form to ``{login_url}/services/oauth2/token`` and get back
``{"access_token", "instance_url", "id", "token_type", "issued_at", "signature"}``.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from .errors import SalesforceAuthError

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_PATH = "/services/oauth2/token"
# Salesforce rejects assertions whose exp is more than a few minutes out; 3 minutes is what
# its JWT bearer flow documentation uses.
ASSERTION_LIFETIME_SECONDS = 180

# The JWT bearer flow's `aud` names Salesforce's *authorization server*, not the org: Salesforce
# documents https://login.salesforce.com, https://test.salesforce.com (sandboxes) or an
# Experience Cloud site URL. The token request itself may go to the org's My Domain URL, whose
# host is not a valid audience ("invalid_grant" / "audience is invalid").
PRODUCTION_AUDIENCE = "https://login.salesforce.com"
SANDBOX_AUDIENCE = "https://test.salesforce.com"
# Sandbox hosts: enhanced domains (mycompany--uat.sandbox.my.salesforce.com), legacy sandbox My
# Domains (mycompany--uat.my.salesforce.com), scratch orgs (*.scratch.my.salesforce.com),
# test.salesforce.com itself and the old csNN instances.
_SANDBOX_HOST = re.compile(
    r"""(^test\.salesforce\.com$)
      |(\.sandbox\.my\.salesforce\.com$)
      |(\.scratch\.my\.salesforce\.com$)
      |(^[^.]+--[^.]+\.my\.salesforce\.com$)
      |(^cs\d+\.salesforce\.com$)""",
    re.VERBOSE,
)


def default_audience(login_url: str) -> str:
    """The JWT `aud` to use with `login_url` when none is configured: test.salesforce.com for
    a sandbox or scratch org, login.salesforce.com for everything else (production and
    Developer Edition My Domains, login.salesforce.com itself, the emulator)."""
    host = (urlsplit(login_url).hostname or "").lower()
    return SANDBOX_AUDIENCE if _SANDBOX_HOST.search(host) else PRODUCTION_AUDIENCE


@dataclass(frozen=True)
class SalesforceCredentials:
    """How to log in to one org.

    ``private_key_pem`` selects the JWT bearer flow (needs ``username``); otherwise
    ``client_secret`` selects the client-credentials flow (the connected app's run-as user).
    ``login_url`` is where the token request goes (``https://login.salesforce.com``,
    ``https://test.salesforce.com`` or the org's My Domain URL). ``audience`` is the JWT's
    ``aud``: ``https://login.salesforce.com``, ``https://test.salesforce.com`` or an Experience
    Cloud site URL, never the My Domain URL; when None it is derived from ``login_url``
    (:func:`default_audience`).
    """

    login_url: str
    client_id: str
    username: str | None = None
    private_key_pem: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    audience: str | None = None

    def __post_init__(self) -> None:
        if self.private_key_pem is None and self.client_secret is None:
            raise ValueError("SalesforceCredentials needs private_key_pem or client_secret")
        if self.private_key_pem is not None and not self.username:
            raise ValueError("the JWT bearer flow needs a username")

    @classmethod
    def from_connected_app(
        cls,
        login_url: str,
        app: Mapping[str, Any],
        flow: str = "jwt_bearer",
        audience: str | None = None,
    ) -> SalesforceCredentials:
        """Credentials from a connected-app record such as the emulator's
        ``GET /emulator/v1/oauth-clients`` entries (``client_id``, ``client_secret``,
        ``username``, ``private_key_pem``)."""
        if flow == "jwt_bearer":
            return cls(
                login_url,
                app["client_id"],
                app["username"],
                private_key_pem=app["private_key_pem"],
                audience=audience,
            )
        if flow == "client_credentials":
            return cls(login_url, app["client_id"], client_secret=app["client_secret"])
        raise ValueError(f"unknown OAuth flow {flow!r}")

    @classmethod
    def from_connection(cls, connection: Any) -> SalesforceCredentials:
        """Credentials from a stored connection (``presencesync.service.SalesforceConnection``
        or anything with its attributes)."""
        return cls(
            login_url=connection.login_url,
            client_id=connection.client_id,
            username=connection.username,
            private_key_pem=connection.private_key_pem,
            client_secret=connection.client_secret,
            audience=getattr(connection, "audience", None),
        )

    @property
    def flow(self) -> str:
        return "jwt_bearer" if self.private_key_pem is not None else "client_credentials"

    @property
    def token_url(self) -> str:
        return self.login_url.rstrip("/") + TOKEN_PATH

    @property
    def jwt_audience(self) -> str:
        """The ``aud`` of the JWT bearer assertion: the configured audience, else the one
        that goes with ``login_url``."""
        return (self.audience or default_audience(self.login_url)).rstrip("/")


@dataclass(frozen=True)
class AccessToken:
    """A session obtained from the token endpoint."""

    access_token: str = field(repr=False)
    instance_url: str
    identity_url: str | None = None
    issued_at: str | None = None
    token_type: str = "Bearer"


@functools.lru_cache(maxsize=32)
def _signing_key(private_key_pem: str) -> RSAPrivateKey:
    # Parsing (and validating) an RSA key costs ~100 ms, far more than signing; parse each
    # key once per process rather than at every login.
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, RSAPrivateKey):
        # Salesforce's JWT bearer flow is RS256 only.
        raise ValueError(f"the JWT bearer flow needs an RSA private key, not {type(key).__name__}")
    return key


def jwt_assertion(credentials: SalesforceCredentials, now: float | None = None) -> str:
    """The RS256-signed assertion of the JWT bearer flow (iss, sub, aud, exp)."""
    if credentials.private_key_pem is None or credentials.username is None:
        raise ValueError("JWT assertion needs a private key and a username")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": credentials.client_id,
        "sub": credentials.username,
        "aud": credentials.jwt_audience,
        "exp": issued + ASSERTION_LIFETIME_SECONDS,
    }
    return jwt.encode(claims, _signing_key(credentials.private_key_pem), algorithm="RS256")


def token_request(credentials: SalesforceCredentials, now: float | None = None) -> httpx.Request:
    """Build the token endpoint request for the credentials' flow."""
    form: dict[str, str]
    if credentials.flow == "jwt_bearer":
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": jwt_assertion(credentials, now)}
    else:
        form = {
            "grant_type": "client_credentials",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret or "",
        }
    return httpx.Request(
        "POST",
        credentials.token_url,
        data=form,
        headers={"Accept": "application/json"},
    )


def parse_token_response(response: httpx.Response) -> AccessToken:
    """Turn a token endpoint response into an AccessToken or raise SalesforceAuthError."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        error, description = "invalid_response", response.text[:200]
        if isinstance(body, dict):
            error = str(body.get("error") or error)
            description = str(body.get("error_description") or "")
        raise SalesforceAuthError(error, description, response.status_code)
    access_token = body.get("access_token")
    instance_url = body.get("instance_url")
    if not isinstance(access_token, str) or not isinstance(instance_url, str):
        raise SalesforceAuthError(
            "invalid_response", "token response lacks access_token/instance_url", 200
        )
    return AccessToken(
        access_token=access_token,
        instance_url=instance_url.rstrip("/"),
        identity_url=body.get("id"),
        issued_at=body.get("issued_at"),
        token_type=str(body.get("token_type") or "Bearer"),
    )
