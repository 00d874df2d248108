"""The default org: users, Omni-Channel setup, some history, and one connected app (its
permission model: permissions.seed_permissions).

Seeding runs once per database (an empty org gets it; an existing file keeps its state,
including its connected app's generated key pair).
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from presencesync_emulator.ids import make_id
from presencesync_emulator.permissions import give_agent_defaults
from presencesync_emulator.store import Store, sf_datetime

ORG_NAME = "presencesync Emulated Org"
DEFAULT_PASSWORD = "emulator-password"
DEFAULT_CAPACITY = 10


@dataclass(frozen=True)
class ChannelSeed:
    key: str  # what the control API calls it: "Case" | "Chat" | "Lead"
    developer_name: str
    related_entity: str
    weight: float


CHANNELS = (
    ChannelSeed("Case", "sfdc_case", "Case", 2),
    ChannelSeed("Chat", "sfdc_liveagent", "LiveChatTranscript", 3),
    ChannelSeed("Lead", "sfdc_lead", "Lead", 1),
    # Enhanced messaging sessions and Service Cloud Voice calls, routed like the others.
    ChannelSeed("Messaging", "sfdc_livemessage", "MessagingSession", 2),
    ChannelSeed("Voice", "sfdc_phone", "VoiceCall", 5),
)

# (DeveloperName, MasterLabel, channel keys). No channels = a "busy" (away) status.
PRESENCE_STATUSES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Available", "Available", ("Case", "Chat", "Lead", "Messaging", "Voice")),
    ("Available_for_Cases", "Available for Cases", ("Case",)),
    ("Available_for_Chat", "Available for Chat", ("Chat",)),
    ("Available_for_Messaging", "Available for Messaging", ("Messaging",)),
    ("Available_for_Voice", "Available for Voice", ("Voice",)),
    ("Busy", "Busy", ()),
    ("On_Break", "On Break", ()),
    ("On_a_Call", "On a Call", ()),
    ("Lunch", "Lunch", ()),
    ("Training", "Training", ()),
)

AGENTS = (
    ("Avery", "Chen"),
    ("Blake", "Johnson"),
    ("Casey", "Morgan"),
    ("Devon", "Patel"),
    ("Emery", "Rossi"),
)
INTEGRATION_USER = ("Integration", "User")
USERNAME_DOMAIN = "presencesync-demo.example"


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def generate_key_pair(common_name: str) -> tuple[str, str]:
    """An RSA key and a self-signed certificate for it (what the connected app stores)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert_pem, key_pem


def org_id(store: Store) -> str:
    value = store.setting("org_id")
    assert value is not None, "org not seeded"
    return value


def add_user(store: Store, first: str, last: str, username: str, *, agent: bool = True) -> str:
    """Create a user (with login credentials and, for agents, the presence configuration)."""
    with store.tx():
        user_id = store.insert(
            "User",
            {
                "Username": username,
                "Name": f"{first} {last}".strip(),
                "FirstName": first or None,
                "LastName": last,
                "Email": username if "@" in username else None,
                "Alias": (first[:1] + last[:4]).lower() or "user",
                "IsActive": True,
                "UserType": "Standard",
            },
        )
        store.execute(
            "INSERT INTO emu_credential (username, password, security_token) VALUES (?, ?, ?)",
            (username, DEFAULT_PASSWORD, _random(string.ascii_letters + string.digits, 24)),
        )
        if agent:
            config_id = store.setting("presence_user_config_id")
            store.insert(
                "PresenceUserConfigUser", {"PresenceUserConfigId": config_id, "UserId": user_id}
            )
            give_agent_defaults(store, user_id)
    return user_id


def seed_if_empty(store: Store) -> bool:
    """Seed a new org; returns False when the database already holds one."""
    if store.setting("org_id"):
        return False
    with store.tx():
        store.set_setting("org_id", make_id("Organization", store.next_serial("Organization")))
        store.set_setting("org_name", ORG_NAME)
        config_id = store.insert(
            "PresenceUserConfig",
            {
                "DeveloperName": "Agent_Configuration",
                "MasterLabel": "Agent Configuration",
                "Capacity": DEFAULT_CAPACITY,
                "IsAllowDeclineRequest": True,
                "IsAutoAcceptEnabled": False,
            },
        )
        store.set_setting("presence_user_config_id", config_id)
        integration_username = f"integration@{USERNAME_DOMAIN}"
        add_user(store, *INTEGRATION_USER, integration_username, agent=False)
        agent_ids = [
            add_user(store, first, last, f"{first.lower()}.{last.lower()}@{USERNAME_DOMAIN}")
            for first, last in AGENTS
        ]
        channel_ids: dict[str, str] = {}
        for channel in CHANNELS:
            cid = store.insert(
                "ServiceChannel",
                {
                    "DeveloperName": channel.developer_name,
                    "MasterLabel": channel.key,
                    "RelatedEntity": channel.related_entity,
                },
            )
            channel_ids[channel.key] = cid
            rid = store.insert(
                "QueueRoutingConfig",
                {
                    "DeveloperName": f"{channel.key}_Routing",
                    "MasterLabel": f"{channel.key} Routing",
                    "RoutingModel": "LeastActive",
                    "RoutingPriority": 1,
                    "CapacityWeight": channel.weight,
                    "PushTimeout": 0,
                },
            )
            store.execute(
                "INSERT INTO emu_channel_routing (service_channel_id, queue_routing_config_id) "
                "VALUES (?, ?)",
                (cid, rid),
            )
        status_ids: dict[str, str] = {}
        for dev, label, channels in PRESENCE_STATUSES:
            sid = store.insert(
                "ServicePresenceStatus",
                {"DeveloperName": dev, "MasterLabel": label, "Language": "en_US"},
            )
            status_ids[dev] = sid
            for key in channels:
                store.insert(
                    "ServiceChannelStatus",
                    {"ServiceChannelId": channel_ids[key], "ServicePresenceStatusId": sid},
                )
        _seed_history(store, agent_ids, status_ids, channel_ids)
        cert_pem, key_pem = generate_key_pair("presencesync-emulator-connected-app")
        store.execute(
            "INSERT INTO emu_oauth_client (client_id, client_secret, username, certificate_pem, "
            "private_key_pem, name) VALUES (?, ?, ?, ?, ?, ?)",
            (
                "3MVG9" + _random(string.ascii_letters + string.digits + "._", 80),
                _random("0123456789ABCDEF", 64),
                integration_username,
                cert_pem,
                key_pem,
                "presencesync",
            ),
        )
    return True


def _seed_history(
    store: Store, agent_ids: list[str], status_ids: dict[str, str], channel_ids: dict[str, str]
) -> None:
    """Yesterday's shift for each agent: presence rows and a few closed work items."""
    day = store.now().astimezone(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    day -= timedelta(days=1)
    shift = (("Available", 0, 240), ("Lunch", 240, 270), ("Available_for_Cases", 270, 540))
    for n, user_id in enumerate(agent_ids):
        start = day + timedelta(minutes=5 * n)
        for dev, begin, end in shift:
            s, e = start + timedelta(minutes=begin), start + timedelta(minutes=end)
            store.insert(
                "UserServicePresence",
                {
                    "Name": f"UP-{store.next_serial('UserServicePresenceName'):08d}",
                    "OwnerId": user_id,
                    "UserId": user_id,
                    "ServicePresenceStatusId": status_ids[dev],
                    "IsCurrentState": False,
                    "IsAway": dev == "Lunch",
                    "StatusStartDate": sf_datetime(s),
                    "StatusEndDate": sf_datetime(e),
                    "StatusDuration": int((e - s).total_seconds()),
                    "ConfiguredCapacity": DEFAULT_CAPACITY,
                    "CreatedDate": sf_datetime(s),
                },
            )
        for k in range(2):
            assigned = start + timedelta(minutes=30 + 60 * k)
            case_no = store.next_serial("CaseNumber")
            case_id = store.insert(
                "Case",
                {
                    "CaseNumber": f"{case_no:08d}",
                    "Subject": f"Seeded case {case_no}",
                    "Status": "Closed",
                    "Origin": "Web",
                    "Priority": "Medium",
                    "OwnerId": user_id,
                    "IsClosed": True,
                    "CreatedDate": sf_datetime(assigned - timedelta(minutes=1)),
                },
            )
            store.insert(
                "AgentWork",
                {
                    "Name": f"AW-{store.next_serial('AgentWorkName'):08d}",
                    "OwnerId": user_id,
                    "UserId": user_id,
                    "WorkItemId": case_id,
                    "ServiceChannelId": channel_ids["Case"],
                    "Status": "Closed",
                    "CapacityWeight": 2.0,
                    "RequestDateTime": sf_datetime(assigned - timedelta(minutes=1)),
                    "AssignedDateTime": sf_datetime(assigned),
                    "AcceptDateTime": sf_datetime(assigned + timedelta(seconds=20)),
                    "CloseDateTime": sf_datetime(assigned + timedelta(minutes=25)),
                    "ActiveTime": 1480,
                    "HandleTime": 1500,
                    "RoutingType": "QueueBased",
                    "CreatedDate": sf_datetime(assigned),
                },
            )
