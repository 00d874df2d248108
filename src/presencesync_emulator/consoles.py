"""What happens to an agent's consoles beyond the org's own state: one console at a time owns
the user's Omni-Channel session (a second one logs the first out with DuplicateLogin), Omni's
connection can fail (lightning:omniChannelConnectionError) and come back, and toolkit calls can
be made to reject or never answer. The control API drives all of it (control.py).

Salesforce documents the events and their `reason`s, not how a console recovers: here the end
of a connection error or of a maintenance sends each console a fresh `hello` (its Omni link is
back), which the console page turns into `omni:hello` and a console's bridge into a new hello
to presencesync. A console that a duplicate login displaced sees itself offline until it logs
in again (login / setServicePresenceStatus), which takes Omni back: the other console is then
the one logged out with DuplicateLogin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from presencesync_emulator.events import EventHub, Subscription
from presencesync_emulator.omni import (
    EV,
    LOGOUT_DUPLICATE,
    LOGOUT_DUPLICATE_SAME_BROWSER,
    Omni,
    OmniError,
)

# Toolkit methods and what the control API can make each do.
TOOLKIT_METHODS = (
    "login",
    "logout",
    "setServicePresenceStatus",
    "getServicePresenceStatusId",
    "getServicePresenceStatusChannels",
    "getAgentWorks",
    "getAgentWorkload",
    "acceptAgentWork",
    "declineAgentWork",
    "closeAgentWork",
)
FAULT_MODES = ("reject", "reject_when_offline", "hang")
HANG = object()  # the call is never answered
_TAKE_BACK = ("login", "setServicePresenceStatus")
_OFFLINE_FOR_DISPLACED = (
    "getServicePresenceStatusId",
    "getServicePresenceStatusChannels",
    "acceptAgentWork",
    "declineAgentWork",
    "closeAgentWork",
)


@dataclass
class ConsoleSessions:
    omni: Omni
    hub: EventHub
    # user id -> the error object of the connection error in progress
    connection_errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    # user id -> toolkit method -> fault mode
    faults: dict[str, dict[str, str]] = field(default_factory=dict)

    # -- duplicate login ------------------------------------------------------------------

    def attach(self, sub: Subscription) -> None:
        """A console connected (call right after subscribing, before any await). A widget
        console of a user online in Omni takes the Omni session over."""
        if sub.widget and self.omni.current_status(sub.user_id) is not None:
            self._displace_others(sub)

    def _displace_others(self, owner: Subscription) -> None:
        for other in self.hub.subscribers(owner.user_id):
            if other is owner or not other.widget or other.displaced:
                continue
            same = owner.browser is not None and owner.browser == other.browser
            reason = LOGOUT_DUPLICATE_SAME_BROWSER if same else LOGOUT_DUPLICATE
            self.hub.send_to(other, EV + "Logout", {"reason": reason})
            other.displaced = True

    def hello(self, sub: Subscription) -> dict[str, Any]:
        """The console socket's hello, as this console sees Omni."""
        status = None if sub.displaced else self.omni.current_status(sub.user_id)
        return {
            "type": "hello",
            "user_id": sub.user_id,
            "online": status is not None,
            "status": self.omni.status_info(status) if status else None,
        }

    # -- toolkit calls --------------------------------------------------------------------

    def screen(self, sub: Subscription, method: str) -> tuple[str, str] | object | None:
        """Before a toolkit call runs: None (run it), HANG (never answer), or the
        (errorCode, message) to reject it with."""
        mode = self.faults.get(sub.user_id, {}).get(method)
        if mode == "hang":
            return HANG
        if sub.widget and sub.user_id in self.connection_errors:
            return ("CONNECTION_ERROR", "Omni-Channel lost its connection")
        offline = sub.displaced or self.omni.current_status(sub.user_id) is None
        if mode == "reject" or (mode == "reject_when_offline" and offline):
            return ("TOOLKIT_ERROR", f"{method} failed (emulated fault)")
        if sub.displaced:
            if method in _TAKE_BACK:
                sub.displaced = False
                if self.omni.current_status(sub.user_id) is not None:
                    self._displace_others(sub)
                return None
            if method in _OFFLINE_FOR_DISPLACED:
                return ("OMNI_OFFLINE", "this console was logged out of Omni-Channel")
            if method == "logout":
                return ("NOT_LOGGED_IN", "this console was logged out of Omni-Channel")
        return None

    def set_faults(self, user_id: str, faults: dict[str, str | None]) -> dict[str, str]:
        """Change some methods' faults (None clears one); every problem is reported at once."""
        problems = []
        for method, mode in faults.items():
            if method not in TOOLKIT_METHODS:
                problems.append(f"unknown toolkit method {method!r}")
            elif mode is not None and mode not in FAULT_MODES:
                problems.append(f"{method}: mode must be one of {', '.join(FAULT_MODES)} or null")
        if problems:
            raise OmniError(422, "INVALID_BODY", "; ".join(problems))
        current = self.faults.setdefault(user_id, {})
        for method, mode in faults.items():
            if mode is None:
                current.pop(method, None)
            else:
                current[method] = mode
        return dict(current)

    # -- connection error -----------------------------------------------------------------

    def start_connection_error(self, user_id: str, error: dict[str, Any]) -> None:
        """lightning:omniChannelConnectionError to the user's Omni consoles; their toolkit
        calls reject (CONNECTION_ERROR) until it ends."""
        self.connection_errors[user_id] = error
        for sub in self.hub.subscribers(user_id):
            if sub.widget and not sub.displaced:
                self.hub.send_to(sub, EV + "ConnectionError", {"error": error})

    def end_connection_error(self, user_id: str) -> None:
        if self.connection_errors.pop(user_id, None) is not None:
            self.reconnect_consoles([user_id])

    def reconnect_consoles(self, user_ids: list[str]) -> None:
        """The consoles' Omni link is back: each gets a fresh hello."""
        for user_id in user_ids:
            for sub in self.hub.subscribers(user_id):
                if sub.widget:
                    sub.put(self.hello(sub))
