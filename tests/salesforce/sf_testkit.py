"""Helpers of the connector tests: a test key pair and mock-transport fakes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

LOGIN_URL = "https://login.example.test"
INSTANCE_URL = "https://org.example.test"


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_pem: str


def generate_key_pair() -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return KeyPair(private_pem, public_pem)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def invalid_session() -> httpx.Response:
    return json_response(
        401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    )


@dataclass
class FakeOrg:
    """Scripted responses for a MockTransport: token endpoint plus a REST handler.

    ``rest`` answers every non-token request; each login hands out a new token
    (``token-1``, ``token-2``...) so tests can see which token a request carried.
    """

    rest: Callable[[httpx.Request], httpx.Response]
    token_failures: list[httpx.Response] = field(default_factory=list)
    logins: int = 0
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/services/oauth2/token":
            if self.token_failures:
                return self.token_failures.pop(0)
            self.logins += 1
            return json_response(
                200,
                {
                    "access_token": f"token-{self.logins}",
                    "instance_url": INSTANCE_URL,
                    "id": f"{LOGIN_URL}/id/00D000000000001/005000000000001",
                    "token_type": "Bearer",
                    "issued_at": "1700000000000",
                    "signature": "c2lnbmF0dXJl",
                },
            )
        return self.rest(request)

    @property
    def rest_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path != "/services/oauth2/token"]


def bearer(request: httpx.Request) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ")
