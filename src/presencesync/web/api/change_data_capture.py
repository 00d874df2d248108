"""Change Data Capture, as the admin sees it: is it on, where is the Pub/Sub API, how does the
account's subscription do, and which agents are observed without a console.

`GET /api/v1/omni/change-data-capture` (admin, Omni feature) answers
`{"enabled", "pubsub_endpoint", "topics", "subscription": {"holder", "state", "detail",
"events", "last_event_at", "started_at", "updated_at"} | null, "agents": {"linked",
"console_connected", "observed_over_change_data_capture", "not_observed"}}`. The setting itself
is `change_data_capture` in `PUT /api/v1/settings`; the endpoint is the stored connection's
(`presencesync doctor --pubsub-endpoint ... --save-connection`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from presencesync.service.cdc import TOPICS, pubsub_endpoint
from presencesync.web.api.common import engine_of, observed_via
from presencesync.web.api.omni import OmniAdmin

router = APIRouter(tags=["omni-channel"])


def cdc_overview(engine: Any, account_id: str) -> dict[str, Any]:
    """The document of `GET /omni/change-data-capture` (also the admin page's section)."""
    settings = engine.get_settings(account_id)
    connection = engine.get_salesforce_connection(account_id)
    configured = None if connection is None else getattr(connection, "pubsub_endpoint", None)
    try:
        endpoint = pubsub_endpoint(configured)
        shown = ("" if endpoint.secure else "grpc://") + endpoint.target
    except ValueError:
        shown = configured or ""
    status = engine.get_cdc_status(account_id)
    linked = connected = cdc = 0
    after: str | None = None
    while True:
        page = engine.list_agents(account_id, limit=500, after=after)
        for record in page:
            if not record.salesforce_user_id:
                continue
            linked += 1
            via = observed_via(record.snapshot)
            connected += via == "console"
            cdc += via == "change_data_capture"
        if len(page) < 500:
            break
        after = page[-1].agent_id
    return {
        "enabled": bool(settings.change_data_capture),
        "pubsub_endpoint": shown,
        "topics": list(TOPICS),
        "subscription": None if status is None else status.to_api(),
        "agents": {
            "linked": linked,
            "console_connected": connected,
            "observed_over_change_data_capture": cdc,
            "not_observed": linked - connected - cdc,
        },
    }


@router.get(
    "/omni/change-data-capture",
    summary="Change Data Capture: the setting, the Pub/Sub endpoint, the subscription, agents",
    description="How presencesync observes Omni-Channel from the server: whether the "
    "`change_data_capture` setting is on, the Pub/Sub API endpoint of the stored connection, "
    "the subscribed topics, the subscription's state as the process holding it last reported "
    "it (`starting`, `streaming`, `retrying`, `failed`, `stopped`), and how many linked agents "
    "are observed through their console, over Change Data Capture only, or not at all.",
)
def get_change_data_capture(request: Request, caller: OmniAdmin) -> dict[str, Any]:
    return cdc_overview(engine_of(request), caller.account_id)
