"""Change Data Capture over Salesforce's Pub/Sub API (gRPC): the subscriber, its change events
and where subscriptions resume. See subscriber.py for the behaviour and the README for the
Salesforce documentation it follows."""

from .events import ChangeEvent, EventSchema, decode_field_list
from .replay import ReplayStore
from .subscriber import (
    DEFAULT_TARGET,
    MAX_BATCH,
    PubSubSubscriber,
    ReconnectPolicy,
    StreamGap,
    SubscriberStats,
    org_id_of,
)

TOPIC_USER_SERVICE_PRESENCE = "/data/UserServicePresenceChangeEvent"
TOPIC_AGENT_WORK = "/data/AgentWorkChangeEvent"
TOPIC_CHANGE_EVENTS = "/data/ChangeEvents"

__all__ = [
    "DEFAULT_TARGET",
    "MAX_BATCH",
    "TOPIC_AGENT_WORK",
    "TOPIC_CHANGE_EVENTS",
    "TOPIC_USER_SERVICE_PRESENCE",
    "ChangeEvent",
    "EventSchema",
    "PubSubSubscriber",
    "ReconnectPolicy",
    "ReplayStore",
    "StreamGap",
    "SubscriberStats",
    "decode_field_list",
    "org_id_of",
]
