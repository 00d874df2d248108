"""The shapes of the API's answers, for the OpenAPI document (DESIGN.md 5 and the web README).

These models document; they do not filter: the endpoints build their JSON themselves, and the
schemathesis test (tests/web/test_api_schemathesis.py) checks every answer against these
schemas, so the document cannot drift from what is sent. New fields may be added to an answer
(the contract only grows), so every object allows properties beyond the listed ones.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


def documented(
    model: Any,
    status: int = 200,
    description: str = "Success",
    errors: dict[int, str] | None = None,
) -> dict[str, Any]:
    """Route decorator arguments: the answer's schema in the document, nothing filtered.
    `errors`: the route's own error codes beyond the ones every API operation has
    (web/openapi.py adds those, and the error shape to all)."""
    responses: dict[int | str, dict[str, Any]] = {
        status: {"model": model, "description": description}
    }
    for code, text in (errors or {}).items():
        responses[code] = {"description": text}
    return {"response_model": None, "responses": responses}


SALESFORCE_ERRORS = {
    502: "Salesforce refused or failed (SALESFORCE_AUTH_FAILED, SALESFORCE_UNAVAILABLE, "
    "SALESFORCE_LIMIT_EXCEEDED, SALESFORCE_ERROR)",
    503: "The stored Salesforce credentials cannot be decrypted with this server's key "
    "(SECRET_KEY_MISSING, SECRET_KEY_MISMATCH)",
}


class OpenWorkItem(_Out):
    id: str
    channel: str | None
    status: Literal["Assigned", "Opened"]


class Agent(_Out):
    agent_id: str
    salesforce_user_id: str | None
    logged_in: bool
    state: str = Field(examples=["Away/Lunch"])
    since: str | None = Field(description="ISO 8601")
    presence_status: str | None = Field(description="DeveloperName; null: Omni offline")
    open_work_items: list[OpenWorkItem]
    name: str
    pending_state: str | None
    desired_presence_status: str | None
    busy_reason: str | None
    interaction_id: str | None
    offered_interaction_id: str | None
    console_connected: bool
    version: int


class Transition(_Out):
    seq: int
    at: str = Field(description="ISO 8601")
    side: Literal["contact_center", "salesforce"]
    from_: str = Field(alias="from")
    to: str
    cause: Literal[
        "agent", "supervisor", "system", "router", "salesforce", "sync", "reconcile", "session_end"
    ]
    rule: str | None
    caused_by_seq: int | None
    latency_ms: float | None


class StateInfo(_Out):
    state: str
    major: Literal["Ready", "Busy", "Wrap", "Away", "ExtendedAway", "LoggedOut"]
    minor: str | None
    agent_selectable: bool
    system: bool
    routable: bool


class StatesSaved(_Out):
    minor_states: dict[str, list[str]]
    states: list[StateInfo]


class Settings(_Out):
    wrap_seconds: int
    session_grace_seconds: int
    session_end_policy: Literal["logout", "away", "none"]
    busy_status_means_busy_inbound: bool
    offer_timeout_seconds: int


class PresenceStatus(_Out):
    id: str
    developer_name: str
    label: str
    status_option: Literal["online", "busy"]
    channels: list[str]


class Fetched(_Out):
    presence_statuses: list[PresenceStatus]


class PresenceMapping(_Out):
    presence_status: str
    busy: bool
    maps_to: str | None


class StateMapping(_Out):
    state: str
    presence_status: str


class Finding(_Out):
    code: str
    message: str


class OmniConfig(_Out):
    enabled: bool
    presence_mappings: list[PresenceMapping]
    state_mappings: list[StateMapping]
    warnings: list[Finding]
    version: int | None
    saved_by: str | None
    saved_at: str | None
    presence_statuses: list[PresenceStatus]


class Interaction(_Out):
    id: str
    queue: str
    status: Literal["offered", "queued", "answered", "ended"]
    agent_id: str | None
    created_at: str


class Reconciled(_Out):
    checked: int
    corrected: list[str]
    skipped_in_flight: list[str]
