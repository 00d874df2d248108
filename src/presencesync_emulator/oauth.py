"""Authentication as a Salesforce org does it: the OAuth 2.0 token endpoint (JWT bearer,
client credentials, username-password), the SOAP `login()` call, sessions, and the daily API
request limit.

Error bodies are Salesforce's: `{"error", "error_description"}` from the token endpoint (400,
or 401 for a bad client), a SOAP fault for `login()`, and
`[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]` (401) for a
missing, unknown, expired or revoked bearer token on the REST API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html import escape
from typing import Any

import jwt
from cryptography import x509
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from presencesync_emulator.httputil import base_url_of, org_of
from presencesync_emulator.org import Org
from presencesync_emulator.store import Store

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_TOKEN_ALPHABET = string.ascii_letters + string.digits + "._"


@dataclass(frozen=True)
class Session:
    token: str
    user_id: str
    client_id: str | None
    expires_at: float


class AuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def invalid_session() -> JSONResponse:
    return JSONResponse(
        [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="presencesync-emulator"'},
    )


# -- sessions --------------------------------------------------------------------------------


def open_session(org: Org, user_id: str, client_id: str | None) -> Session:
    # Salesforce session ids are "<15-char org id>!<opaque>".
    token = f"{org.org_id[:15]}!{''.join(secrets.choice(_TOKEN_ALPHABET) for _ in range(96))}"
    now = time.time()
    expires = now + org.token_lifetime_s
    org.store.execute(
        "INSERT INTO emu_session (token, user_id, client_id, issued_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (token, user_id, client_id, now, expires),
    )
    return Session(token, user_id, client_id, expires)


def session_from_request(request: Request) -> Session | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in ("bearer", "oauth") or not token.strip():
        return None
    return session_for_token(org_of(request).store, token.strip())


def session_for_token(store: Store, token: str) -> Session | None:
    """The live session of an access token (None when unknown, expired or revoked)."""
    rows = store.query(
        "SELECT token, user_id, client_id, expires_at, revoked FROM emu_session WHERE token = ?",
        (token,),
    )
    if not rows or rows[0]["revoked"] or rows[0]["expires_at"] <= time.time():
        return None
    row = rows[0]
    return Session(row["token"], row["user_id"], row["client_id"], row["expires_at"])


# -- API usage -------------------------------------------------------------------------------


def _today(store: Store) -> str:
    return store.now().date().isoformat()


def api_usage_today(store: Store) -> int:
    rows = store.query("SELECT count FROM emu_api_usage WHERE day = ?", (_today(store),))
    return int(rows[0][0]) if rows else 0


def count_api_request(org: Org) -> tuple[bool, str]:
    """Count one API request; returns (allowed, Sforce-Limit-Info header value)."""
    store = org.store
    limit = org.daily_api_limit
    with store.tx():
        used = api_usage_today(store)
        if used >= limit:
            return False, f"api-usage={used}/{limit}"
        store.execute(
            "INSERT INTO emu_api_usage (day, count) VALUES (?, 1) "
            "ON CONFLICT(day) DO UPDATE SET count = count + 1",
            (_today(store),),
        )
    return True, f"api-usage={used + 1}/{limit}"


# -- token endpoint --------------------------------------------------------------------------


def _client(store: Store, client_id: str | None) -> dict[str, Any]:
    rows = store.query("SELECT * FROM emu_oauth_client WHERE client_id = ?", (client_id or "",))
    if not rows:
        raise AuthError("invalid_client_id", "client identifier invalid")
    return dict(rows[0])


def _user_by_username(store: Store, username: str | None) -> dict[str, Any] | None:
    users = store.find("User", '"Username" = ? AND "IsActive" = 1', (username or "",))
    return users[0] if users else None


def _audience_ok(request: Request, aud: Any) -> bool:
    """Salesforce accepts its authorization server's URL (login/test.salesforce.com) or an
    Experience Cloud site URL as `aud`; the org's own My Domain / instance URL is refused even
    though the token request is sent there."""
    auds = [aud] if isinstance(aud, str) else list(aud or []) if isinstance(aud, list) else []
    accepted = {a.rstrip("/") for a in org_of(request).login_audiences}
    own = base_url_of(request).rstrip("/")
    return any(
        isinstance(a, str) and a.rstrip("/") in accepted and a.rstrip("/") != own for a in auds
    )


def _jwt_bearer(request: Request, form: dict[str, str]) -> tuple[dict[str, Any], str]:
    store = org_of(request).store
    assertion = form.get("assertion", "")
    try:
        unverified = jwt.decode(assertion, options={"verify_signature": False})
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as exc:
        raise AuthError("invalid_grant", "invalid assertion") from exc
    if header.get("alg") != "RS256":
        raise AuthError("invalid_grant", "invalid assertion")
    client = _client(store, unverified.get("iss"))
    public_key = x509.load_pem_x509_certificate(client["certificate_pem"].encode()).public_key()
    try:
        # exp is checked below: simple-salesforce sends it as a string, which PyJWT rejects.
        claims = jwt.decode(
            assertion,
            public_key,  # type: ignore[arg-type]
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_aud": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise AuthError("invalid_grant", "invalid signature on assertion") from exc
    if not _audience_ok(request, claims.get("aud")):
        raise AuthError("invalid_grant", "audience is invalid")
    try:
        exp = float(claims.get("exp"))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise AuthError("invalid_grant", "invalid assertion") from exc
    if exp <= time.time():
        raise AuthError("invalid_grant", "expired authorization code")
    user = _user_by_username(store, claims.get("sub"))
    if user is None:
        raise AuthError("invalid_grant", "user hasn't approved this consumer")
    return client, user["Id"]


def _client_secret_pair(request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise AuthError("invalid_client", "invalid client credentials", 401) from exc
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    return form.get("client_id"), form.get("client_secret")


def _authenticated_client(request: Request, form: dict[str, str]) -> dict[str, Any]:
    client_id, secret = _client_secret_pair(request, form)
    client = _client(org_of(request).store, client_id)
    if not secret or not hmac.compare_digest(secret, client["client_secret"]):
        raise AuthError("invalid_client", "invalid client credentials", 401)
    return client


def check_password(store: Store, username: str, password: str) -> dict[str, Any] | None:
    """The user when `password` is its password, alone or followed by its security token."""
    rows = store.query(
        "SELECT password, security_token FROM emu_credential WHERE username = ?", (username,)
    )
    if not rows:
        return None
    pw, token = rows[0]["password"], rows[0]["security_token"]
    if not (hmac.compare_digest(password, pw) or hmac.compare_digest(password, pw + token)):
        return None
    return _user_by_username(store, username)


async def token(request: Request) -> Response:
    org = org_of(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    grant = form.get("grant_type", "")
    try:
        if grant == JWT_BEARER:
            client, user_id = _jwt_bearer(request, form)
        elif grant == "client_credentials":
            client = _authenticated_client(request, form)
            user = _user_by_username(org.store, client["username"])
            if user is None:
                raise AuthError("invalid_grant", "no client credentials user enabled")
            user_id = user["Id"]
        elif grant == "password":
            client = _authenticated_client(request, form)
            user = check_password(org.store, form.get("username", ""), form.get("password", ""))
            if user is None:
                raise AuthError("invalid_grant", "authentication failure")
            user_id = user["Id"]
        else:
            raise AuthError("unsupported_grant_type", "grant type not supported")
    except AuthError as exc:
        return JSONResponse(
            {"error": exc.error, "error_description": exc.description}, status_code=exc.status
        )
    session = open_session(org, user_id, client["client_id"])
    base = base_url_of(request)
    identity = f"{base}/id/{org.org_id}/{user_id}"
    issued_at = str(int(time.time() * 1000))
    signature = base64.b64encode(
        hmac.new(
            client["client_secret"].encode(), (identity + issued_at).encode(), hashlib.sha256
        ).digest()
    ).decode()
    return JSONResponse(
        {
            "access_token": session.token,
            "scope": "api",
            "instance_url": base,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
        },
        headers={"Cache-Control": "no-cache, no-store", "Pragma": "no-cache"},
    )


async def identity(request: Request) -> Response:
    session = session_from_request(request)
    if session is None:
        return invalid_session()
    org = org_of(request)
    user = org.store.get("User", request.path_params["user_id"])
    if user is None or request.path_params["org_id"] != org.org_id:
        return JSONResponse("Bad_Id", status_code=403)
    base = base_url_of(request)
    return JSONResponse(
        {
            "id": f"{base}/id/{org.org_id}/{user['Id']}",
            "user_id": user["Id"],
            "organization_id": org.org_id,
            "username": user["Username"],
            "display_name": user["Name"],
            "email": user["Email"],
            "active": user["IsActive"],
            "user_type": "STANDARD",
            "urls": {
                "rest": f"{base}/services/data/v{{version}}/",
                "query": f"{base}/services/data/v{{version}}/query/",
                "sobjects": f"{base}/services/data/v{{version}}/sobjects/",
            },
        }
    )


# -- SOAP login (simple-salesforce's default username/password/security token flow) ---------

_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _soap_fault(code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        f'<detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}'
        f"</sf:exceptionCode><sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(body, status_code=500, media_type="text/xml")


async def soap_login(request: Request) -> Response:
    org = org_of(request)
    version = request.path_params["version"]
    try:
        root = ET.fromstring(await request.body())
    except ET.ParseError:
        return _soap_fault("INVALID_LOGIN", "Invalid request: the body is not a SOAP envelope.")
    fields = {_local(el.tag): (el.text or "") for el in root.iter()}
    if "login" not in fields:
        return _soap_fault("UNKNOWN_EXCEPTION", "Only the login() call is emulated.")
    username, password = fields.get("username", ""), fields.get("password", "")
    user = check_password(org.store, username, password)
    if user is None:
        return _soap_fault(
            "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."
        )
    session = open_session(org, user["Id"], None)
    base = base_url_of(request)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" xmlns="urn:partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><loginResponse><result>"
        f"<metadataServerUrl>{base}/services/Soap/m/{version}/{org.org_id[:15]}"
        "</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
        f"<serverUrl>{base}/services/Soap/u/{version}/{org.org_id[:15]}</serverUrl>"
        f"<sessionId>{escape(session.token)}</sessionId><userId>{user['Id']}</userId>"
        "<userInfo>"
        f"<organizationId>{org.org_id}</organizationId>"
        f"<organizationName>{escape(org.store.setting('org_name') or '')}</organizationName>"
        f"<sessionSecondsValid>{int(org.token_lifetime_s)}</sessionSecondsValid>"
        f"<userEmail>{escape(user['Email'] or '')}</userEmail>"
        f"<userFullName>{escape(user['Name'] or '')}</userFullName>"
        f"<userId>{user['Id']}</userId><userName>{escape(user['Username'])}</userName>"
        "</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )
    return Response(body, media_type="text/xml")


routes = [
    Route("/services/oauth2/token", token, methods=["POST"]),
    Route("/id/{org_id}/{user_id}", identity, methods=["GET"]),
    Route("/services/Soap/u/{version}", soap_login, methods=["POST"]),
]
