"""The Omni-Channel mapping configuration: resolution both ways and its validation.

Salesforce -> contact center: one presence mapping per status, `maps_to` if set, else Away if
`busy` else Ready. Contact center -> Salesforce: every major state but LoggedOut maps to a status;
a minor state may, and falls back to its major. LoggedOut always means Omni offline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from presencesync.domain.errors import DomainError
from presencesync.domain.presence import PresenceStatus
from presencesync.domain.states import AWAY, READY, Major, State, StateCatalog


@dataclass(frozen=True)
class PresenceMapping:
    presence_status: str  # DeveloperName
    busy: bool
    maps_to: State | None = None

    @property
    def resolved_state(self) -> State:
        if self.maps_to is not None:
            return self.maps_to
        return AWAY if self.busy else READY

    def to_api(self) -> dict[str, object]:
        return {
            "presence_status": self.presence_status,
            "busy": self.busy,
            "maps_to": None if self.maps_to is None else str(self.maps_to),
        }


@dataclass(frozen=True)
class StateMapping:
    state: State
    presence_status: str  # DeveloperName

    def to_api(self) -> dict[str, object]:
        return {"state": str(self.state), "presence_status": self.presence_status}


@dataclass(frozen=True)
class OmniConfig:
    """A saved, valid configuration. Build one through `validate_config`."""

    enabled: bool
    presence_statuses: tuple[PresenceStatus, ...]
    presence_mappings: tuple[PresenceMapping, ...]
    state_mappings: tuple[StateMapping, ...]
    _by_status: Mapping[str, PresenceMapping] = field(init=False, repr=False, compare=False)
    _by_state: Mapping[State, str] = field(init=False, repr=False, compare=False)
    _statuses: Mapping[str, PresenceStatus] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_by_status", {m.presence_status: m for m in self.presence_mappings}
        )
        object.__setattr__(
            self, "_by_state", {m.state: m.presence_status for m in self.state_mappings}
        )
        object.__setattr__(self, "_statuses", {s.developer_name: s for s in self.presence_statuses})

    def status(self, developer_name: str) -> PresenceStatus | None:
        return self._statuses.get(developer_name)

    def is_known_status(self, developer_name: str) -> bool:
        return developer_name in self._statuses

    def state_for_presence(self, developer_name: str) -> State | None:
        """The contact-center state a presence status maps to; None if the status is unknown
        (not in the last fetch: rule 9 keeps the current state)."""
        mapping = self._by_status.get(developer_name)
        if mapping is not None:
            return mapping.resolved_state
        status = self._statuses.get(developer_name)
        if status is None:
            return None
        # A fetched status nobody mapped yet: follow its own status option.
        return AWAY if status.is_busy else READY

    def presence_for_state(self, state: State) -> str | None:
        """The status a state maps to (minor falls back to major); None means Omni offline."""
        if state.major is Major.LOGGED_OUT:
            return None
        found = self._by_state.get(state)
        if found is None and state.minor is not None:
            found = self._by_state.get(state.major_only)
        return found

    def is_busy_status(self, developer_name: str) -> bool:
        status = self._statuses.get(developer_name)
        if status is not None:
            return status.is_busy
        mapping = self._by_status.get(developer_name)
        return bool(mapping and mapping.busy)

    def to_api(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "presence_mappings": [m.to_api() for m in self.presence_mappings],
            "state_mappings": [m.to_api() for m in self.state_mappings],
        }


@dataclass(frozen=True)
class Finding:
    """A validation problem (blocks saving) or warning (reported), tied to the row it is about."""

    code: str
    message: str
    section: str | None = None  # "presence_mappings" | "state_mappings" | None
    index: int | None = None  # row in that section, as submitted
    key: str | None = None  # the status developer name or state the row is about
    round_trip: tuple[str, ...] | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.section is not None:
            out["field"] = (
                f"{self.section}[{self.index}]" if self.index is not None else self.section
            )
            out["section"] = self.section
            out["index"] = self.index
        if self.key is not None:
            out["key"] = self.key
        if self.round_trip is not None:
            out["round_trip"] = list(self.round_trip)
        return out


@dataclass(frozen=True)
class ValidationResult:
    config: OmniConfig | None
    problems: tuple[Finding, ...]
    warnings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


class InvalidConfig(DomainError):
    def __init__(self, problems: Sequence[Finding]) -> None:
        count = len(problems)
        super().__init__(
            "INVALID_CONFIG",
            f"the configuration has {count} problem{'s' if count != 1 else ''}",
            [p.to_api() for p in problems],
        )
        self.problems = tuple(problems)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def validate_config(
    raw: Mapping[str, Any],
    catalog: StateCatalog,
    presence_statuses: Iterable[PresenceStatus],
) -> ValidationResult:
    """Check a submitted configuration (the API's JSON shape) and return every problem at once.

    `presence_statuses` is the last fetch of the org. Nothing here raises on bad input: each
    problem becomes a Finding tied to its row, so the admin page can show it next to that row.
    """
    statuses = {s.developer_name: s for s in presence_statuses}
    problems: list[Finding] = []
    warnings: list[Finding] = []

    enabled = raw.get("enabled", False)
    if not isinstance(enabled, bool):
        problems.append(Finding("INVALID_FIELD", "'enabled' must be true or false", "enabled"))
        enabled = False

    presence_rows = raw.get("presence_mappings", [])
    state_rows = raw.get("state_mappings", [])
    if not isinstance(presence_rows, list):
        problems.append(
            Finding("INVALID_FIELD", "'presence_mappings' must be a list", "presence_mappings")
        )
        presence_rows = []
    if not isinstance(state_rows, list):
        problems.append(
            Finding("INVALID_FIELD", "'state_mappings' must be a list", "state_mappings")
        )
        state_rows = []

    presence_mappings = _check_presence_rows(presence_rows, catalog, statuses, problems)
    state_mappings = _check_state_rows(state_rows, catalog, statuses, problems)

    mapped_states = {m.state for m in state_mappings}
    for major in Major:
        if major is Major.LOGGED_OUT or State(major) in mapped_states:
            continue
        problems.append(
            Finding(
                "MISSING_MAJOR_MAPPING",
                f"the major state {major.value} must be mapped to a presence status",
                "state_mappings",
                None,
                major.value,
            )
        )

    if problems:
        return ValidationResult(None, tuple(problems), ())

    config = OmniConfig(
        enabled=enabled,
        presence_statuses=tuple(statuses.values()),
        presence_mappings=tuple(presence_mappings),
        state_mappings=tuple(state_mappings),
    )
    warnings.extend(_round_trip_warnings(config, presence_rows))
    warnings.extend(_routing_risk_warnings(config, catalog, state_mappings))
    mapped_statuses = {m.presence_status for m in presence_mappings}
    for name in statuses:
        if name not in mapped_statuses:
            status = statuses[name]
            warnings.append(
                Finding(
                    "UNMAPPED_PRESENCE_STATUS",
                    f"{name} has no row in Presence Status Configuration; it will follow its "
                    f"status option ({status.status_option.value}) and map to "
                    f"{config.state_for_presence(name)}",
                    "presence_mappings",
                    None,
                    name,
                )
            )
    return ValidationResult(config, (), tuple(warnings))


def _check_presence_rows(
    rows: list[Any],
    catalog: StateCatalog,
    statuses: Mapping[str, PresenceStatus],
    problems: list[Finding],
) -> list[PresenceMapping]:
    section = "presence_mappings"
    seen: dict[str, int] = {}
    out: list[PresenceMapping] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            problems.append(Finding("INVALID_ROW", "each row must be an object", section, index))
            continue
        name = _text(row.get("presence_status"))
        if name is None:
            problems.append(
                Finding("INVALID_FIELD", "'presence_status' is required", section, index)
            )
            continue
        row_ok = True
        if name in seen:
            problems.append(
                Finding(
                    "DUPLICATE_PRESENCE_MAPPING",
                    f"{name} is configured twice (rows {seen[name]} and {index})",
                    section,
                    index,
                    name,
                )
            )
            row_ok = False
        seen.setdefault(name, index)
        status = statuses.get(name)
        if status is None:
            problems.append(
                Finding(
                    "UNKNOWN_PRESENCE_STATUS",
                    f"{name} is not a presence status of the org (fetch the Omni-channel "
                    "configuration again if it was added in Salesforce)",
                    section,
                    index,
                    name,
                )
            )
            row_ok = False
        busy = row.get("busy", False)
        if not isinstance(busy, bool):
            problems.append(
                Finding("INVALID_FIELD", "'busy' must be true or false", section, index, name)
            )
            row_ok = False
        elif status is not None and busy != status.is_busy:
            problems.append(
                Finding(
                    "BUSY_CONTRADICTS_STATUS_OPTION",
                    f"Busy must match the status option of {name} in Salesforce, which is "
                    f"'{status.status_option.value}': "
                    + ("select Busy" if status.is_busy else "clear Busy"),
                    section,
                    index,
                    name,
                )
            )
            row_ok = False
        maps_to: State | None = None
        raw_maps_to = row.get("maps_to")
        if raw_maps_to is not None and raw_maps_to != "":
            try:
                maps_to = catalog.parse(raw_maps_to)
            except DomainError as error:
                problems.append(Finding("UNKNOWN_STATE", error.message, section, index, name))
                row_ok = False
            else:
                if not catalog.describe(maps_to).agent_selectable:
                    problems.append(
                        Finding(
                            "MAPS_TO_SYSTEM_STATE",
                            f"Maps to may name only a state an agent can select; {maps_to} is "
                            "set by the system only",
                            section,
                            index,
                            name,
                        )
                    )
                    row_ok = False
        if row_ok:
            out.append(PresenceMapping(name, bool(busy), maps_to))
    return out


def _check_state_rows(
    rows: list[Any],
    catalog: StateCatalog,
    statuses: Mapping[str, PresenceStatus],
    problems: list[Finding],
) -> list[StateMapping]:
    section = "state_mappings"
    seen: dict[State, int] = {}
    out: list[StateMapping] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            problems.append(Finding("INVALID_ROW", "each row must be an object", section, index))
            continue
        raw_state = row.get("state")
        try:
            state = catalog.parse(raw_state) if raw_state is not None else None
        except DomainError as error:
            problems.append(Finding("UNKNOWN_STATE", error.message, section, index, str(raw_state)))
            continue
        if state is None:
            problems.append(Finding("INVALID_FIELD", "'state' is required", section, index))
            continue
        key = str(state)
        if state.major is Major.LOGGED_OUT:
            problems.append(
                Finding(
                    "LOGGED_OUT_NOT_MAPPABLE",
                    "LoggedOut always means offline in Omni-Channel and takes no mapping",
                    section,
                    index,
                    key,
                )
            )
            continue
        if state in seen:
            problems.append(
                Finding(
                    "DUPLICATE_STATE_MAPPING",
                    f"{key} is mapped twice (rows {seen[state]} and {index})",
                    section,
                    index,
                    key,
                )
            )
            continue
        seen[state] = index
        name = _text(row.get("presence_status"))
        if name is None:
            # An unmapped minor uses its major's mapping; an unmapped major is reported once,
            # as MISSING_MAJOR_MAPPING, by the caller.
            continue
        if name not in statuses:
            problems.append(
                Finding(
                    "UNKNOWN_PRESENCE_STATUS",
                    f"{name} is not a presence status of the org",
                    section,
                    index,
                    key,
                )
            )
            continue
        out.append(StateMapping(state, name))
    return out


def _round_trip_warnings(config: OmniConfig, presence_rows: list[Any]) -> list[Finding]:
    """Rule 10: status S -> state X, but X -> status T != S. Legal, but say what happens."""
    index_of = {
        row.get("presence_status"): i
        for i, row in enumerate(presence_rows)
        if isinstance(row, Mapping)
    }
    out: list[Finding] = []
    for status in config.presence_statuses:
        name = status.developer_name
        state = config.state_for_presence(name)
        if state is None:
            continue
        back = config.presence_for_state(state)
        if back != name:
            out.append(
                Finding(
                    "ASYMMETRIC_MAPPING",
                    f"{name} maps to {state}, but {state} maps back to {back}: when an agent "
                    f"picks {name} in Salesforce, ContactPad shows {state} and Omni-Channel "
                    f"stays in {name}; when the agent picks {state} in ContactPad, "
                    f"Omni-Channel goes to {back}",
                    "presence_mappings",
                    index_of.get(name),
                    name,
                    (name, str(state), str(back)),
                )
            )
    return out


def _routing_risk_warnings(
    config: OmniConfig, catalog: StateCatalog, state_mappings: list[StateMapping]
) -> list[Finding]:
    """A state in which the contact center is routing-blocked (on a call, wrapping) mapped to
    an online status lets Omni push work into the call: the very double routing we exist to
    prevent. Legal, but worth a warning."""
    out: list[Finding] = []
    for info in catalog.states():
        state = info.state
        if state.major not in (Major.BUSY, Major.WRAP):
            continue
        target = config.presence_for_state(state)
        if target is None or config.is_busy_status(target):
            continue
        index = next((i for i, m in enumerate(state_mappings) if m.state == state), None)
        out.append(
            Finding(
                "ONLINE_WHILE_BUSY",
                f"{state} maps to {target}, an online status: Omni-Channel may route work to "
                "an agent who is on a call",
                "state_mappings",
                index,
                str(state),
            )
        )
    return out
