"""Account settings that change how the rules apply (DESIGN.md 5, rules 5, 8, 11, 12)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from presencesync.domain.errors import DomainError
from presencesync.domain.events import LogoutReason

SESSION_END_POLICIES = ("logout", "away", "none")
MAX_OFFER_TIMEOUT = 600

# What an Omni-Channel logout with a `reason` does to the contact center (rule 5, 3.5a-c), one
# setting per reason; the first value is the default. A logout without a reason (the agent's
# own) always logs the agent out of the contact center (rule 5).
#   ignore: another console of the same user took over Omni: the person is still online there
#   keep:   keep the contact-center state; presence is driven again when Omni comes back
#   logout: log the agent out of the contact center
OMNI_LOGOUT_SETTINGS: dict[LogoutReason, tuple[str, tuple[str, ...]]] = {
    LogoutReason.DUPLICATE_LOGIN: ("omni_logout_duplicate_login", ("ignore", "logout")),
    LogoutReason.DUPLICATE_LOGIN_SAME_BROWSER: (
        "omni_logout_duplicate_login_same_browser",
        ("ignore", "logout"),
    ),
    LogoutReason.MAINTENANCE: ("omni_logout_maintenance", ("keep", "logout")),
    LogoutReason.SUPERVISOR: ("omni_logout_supervisor", ("logout", "keep")),
}
OMNI_LOGOUT_CHOICES = {name: choices for name, choices in OMNI_LOGOUT_SETTINGS.values()}


@dataclass(frozen=True)
class SyncSettings:
    wrap_seconds: int = 30
    session_grace_seconds: int = 60
    session_end_policy: str = "logout"
    busy_status_means_busy_inbound: bool = False
    # Ring time of an offered call before the router moves it on (redirect on no answer);
    # 0: the offer rings until the agent answers or declines.
    offer_timeout_seconds: int = 20
    omni_logout_duplicate_login: str = "ignore"
    omni_logout_duplicate_login_same_browser: str = "ignore"
    omni_logout_maintenance: str = "keep"
    omni_logout_supervisor: str = "logout"
    # Observe Omni-Channel from the server too: Change Data Capture of UserServicePresence and
    # AgentWork over the Pub/Sub API (domain/channels.py; service/cdc.py runs the subscription).
    change_data_capture: bool = False

    def omni_logout_policy(self, reason: LogoutReason) -> str:
        name, _choices = OMNI_LOGOUT_SETTINGS[reason]
        return str(getattr(self, name))

    def to_api(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any], base: SyncSettings | None = None) -> SyncSettings:
        """Validate a (partial) settings document; every problem is reported at once."""
        current = asdict(base or cls())
        problems: list[dict[str, str]] = []
        if not isinstance(raw, Mapping):
            raise DomainError("INVALID_SETTINGS", "settings must be a JSON object")
        for key, value in raw.items():
            if key not in current:
                problems.append({"field": key, "message": f"unknown setting {key!r}"})
                continue
            if key in ("wrap_seconds", "session_grace_seconds"):
                if isinstance(value, bool) or not isinstance(value, int):
                    problems.append({"field": key, "message": "must be a whole number of seconds"})
                elif not 0 <= value <= 86_400:
                    problems.append({"field": key, "message": "must be between 0 and 86400"})
            elif key == "session_end_policy":
                if value not in SESSION_END_POLICIES:
                    problems.append(
                        {
                            "field": key,
                            "message": "must be one of " + ", ".join(SESSION_END_POLICIES),
                        }
                    )
            elif key in (
                "busy_status_means_busy_inbound",
                "change_data_capture",
            ) and not isinstance(value, bool):
                problems.append({"field": key, "message": "must be true or false"})
            elif key == "offer_timeout_seconds":
                if isinstance(value, bool) or not isinstance(value, int):
                    problems.append({"field": key, "message": "must be a whole number of seconds"})
                elif not 0 <= value <= MAX_OFFER_TIMEOUT:
                    message = f"must be 0 (no timeout) or between 1 and {MAX_OFFER_TIMEOUT}"
                    problems.append({"field": key, "message": message})
            elif key in OMNI_LOGOUT_CHOICES and value not in OMNI_LOGOUT_CHOICES[key]:
                choices = ", ".join(OMNI_LOGOUT_CHOICES[key])
                problems.append({"field": key, "message": f"must be one of {choices}"})
            current[key] = value
        if problems:
            raise DomainError("INVALID_SETTINGS", "the settings are not valid", problems)
        return cls(**current)
