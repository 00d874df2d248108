"""Commands the core asks the adapters to carry out.

Salesforce commands go to the agent's console bridge, which runs them through the Omni-Channel
toolkit; their `command_id` is the idempotency key and the key the echo comes back with.
Contact-center commands tell the contact-center side (ContactPad, an external ACD) what the sync
did to the agent's state.
"""

from __future__ import annotations

from dataclasses import dataclass

from presencesync.domain.events import Side
from presencesync.domain.states import State


@dataclass(frozen=True, kw_only=True)
class Command:
    caused_by_seq: int | None = None  # the history entry that made us send it

    @property
    def side(self) -> Side:
        return Side.SALESFORCE


@dataclass(frozen=True, kw_only=True)
class SalesforceCommand(Command):
    command_id: str


@dataclass(frozen=True, kw_only=True)
class SetPresence(SalesforceCommand):
    presence_status: str


@dataclass(frozen=True, kw_only=True)
class OmniLogin(SalesforceCommand):
    presence_status: str


@dataclass(frozen=True, kw_only=True)
class OmniLogout(SalesforceCommand):
    pass


@dataclass(frozen=True, kw_only=True)
class ContactCenterCommand(Command):
    @property
    def side(self) -> Side:
        return Side.CONTACT_CENTER


@dataclass(frozen=True, kw_only=True)
class SetState(ContactCenterCommand):
    state: State


@dataclass(frozen=True, kw_only=True)
class LogOut(ContactCenterCommand):
    pass


def command_kind(command: Command) -> str:
    return {
        SetPresence: "set_presence",
        OmniLogin: "omni_login",
        OmniLogout: "omni_logout",
        SetState: "set_state",
        LogOut: "log_out",
    }[type(command)]


def command_payload(command: Command) -> dict[str, object]:
    """The JSON a command travels as (outbox row, bridge message)."""
    payload: dict[str, object] = {"kind": command_kind(command)}
    if isinstance(command, SalesforceCommand):
        payload["command_id"] = command.command_id
    if isinstance(command, SetPresence | OmniLogin):
        payload["presence_status"] = command.presence_status
    if isinstance(command, SetState):
        payload["state"] = str(command.state)
    payload["caused_by_seq"] = command.caused_by_seq
    return payload
