"""Hypothesis strategies: valid Omni configurations and account settings."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from presencesync.domain import (
    OmniConfig,
    PresenceStatus,
    StateCatalog,
    StatusOption,
    SyncSettings,
    validate_config,
)
from presencesync.domain.states import Major

STATUS_NAMES = ("Available", "Busy", "On_Break", "Lunch", "On_a_Call", "Training", "Email_Only")
MAPPED_MAJORS = (Major.READY, Major.BUSY, Major.WRAP, Major.AWAY, Major.EXTENDED_AWAY)


@st.composite
def presence_statuses(draw: st.DrawFn) -> list[PresenceStatus]:
    names = draw(st.lists(st.sampled_from(STATUS_NAMES), min_size=1, max_size=5, unique=True))
    out = []
    for i, name in enumerate(names):
        online = draw(st.booleans())
        out.append(
            PresenceStatus(
                f"0N5{i:012d}",
                name,
                name.replace("_", " "),
                StatusOption.ONLINE if online else StatusOption.BUSY,
                ("Case", "Chat") if online else (),
            )
        )
    return out


@st.composite
def raw_configs(
    draw: st.DrawFn, catalog: StateCatalog | None = None
) -> tuple[dict[str, Any], list[PresenceStatus]]:
    """A submitted configuration (API shape) that passes validation, and the fetch it uses."""
    catalog = catalog or StateCatalog.default()
    statuses = draw(presence_statuses())
    names = [p.developer_name for p in statuses]
    selectable = [str(i.state) for i in catalog.states() if i.agent_selectable]
    presence_rows = []
    for status in statuses:
        if draw(st.integers(0, 4)) == 0:
            continue  # unmapped: follows its status option
        maps_to = draw(st.one_of(st.none(), st.sampled_from(selectable)))
        presence_rows.append(
            {"presence_status": status.developer_name, "busy": status.is_busy, "maps_to": maps_to}
        )
    state_rows = [
        {"state": major.value, "presence_status": draw(st.sampled_from(names))}
        for major in MAPPED_MAJORS
    ]
    minors = [
        str(i.state)
        for i in catalog.states()
        if i.state.minor is not None and i.state.major is not Major.LOGGED_OUT
    ]
    for minor in draw(st.lists(st.sampled_from(minors), unique=True, max_size=4)):
        state_rows.append({"state": minor, "presence_status": draw(st.sampled_from(names))})
    order = draw(st.permutations(range(len(state_rows))))
    raw = {
        "enabled": True,
        "presence_mappings": presence_rows,
        "state_mappings": [state_rows[i] for i in order],
    }
    return raw, statuses


@st.composite
def configs(draw: st.DrawFn) -> OmniConfig:
    raw, statuses = draw(raw_configs())
    result = validate_config(raw, StateCatalog.default(), statuses)
    assert result.ok, result.problems  # the strategy builds only valid configurations
    assert result.config is not None
    return result.config


settings_strategy = st.builds(
    SyncSettings,
    session_end_policy=st.sampled_from(("logout", "away", "none")),
    busy_status_means_busy_inbound=st.booleans(),
    omni_logout_duplicate_login=st.sampled_from(("ignore", "logout")),
    omni_logout_duplicate_login_same_browser=st.sampled_from(("ignore", "logout")),
    omni_logout_maintenance=st.sampled_from(("keep", "logout")),
    omni_logout_supervisor=st.sampled_from(("logout", "keep")),
    change_data_capture=st.booleans(),
)


def examples(n: int) -> int:
    """`n` examples, times PRESENCESYNC_HYPOTHESIS_SCALE (set it to hunt longer locally)."""
    import os

    return n * int(os.environ.get("PRESENCESYNC_HYPOTHESIS_SCALE", "1"))
