"""Omni-Channel: agents' presence, routing of work by channel and capacity, AgentWork lifecycle.

Every operation runs in one store transaction and returns the console events it caused, in
order, for the caller to publish (after the commit) to that user's consoles. Nothing changes
when an operation raises OmniError.

Routing (documented Salesforce behaviour, simplified): a work item waits as a
PendingServiceRouting record until an agent is online in a status that includes the item's
service channel and has spare capacity (configured capacity minus the capacity weights of the
agent's Assigned and Opened work). Among those agents the least-loaded wins, then the one who
was assigned work least recently ("least active"). Assigned -> Opened (accept) -> Closed;
Assigned -> Declined puts the item back in the queue for anyone but the decliner. Logging out
with Assigned work returns it to the queue (the AgentWork becomes "Unavailable"); Opened work
stays with the agent, as in Salesforce, where the record stays open in the agent's console.
Assigned -> DeclinedOnPushTimeout when the routing configuration's push time-out runs out (the
item is rerouted, the agent moves to the presence configuration's status on push time-out with
reason OmniPushTimeout); Assigned/Opened -> Canceled (the item no longer needs routing) or
Transferred (to another agent or back to the queue). UserServicePresence keeps IdleDuration,
AtCapacityDuration and AverageCapacity, updated when the agent's workload changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from presencesync_emulator import ids
from presencesync_emulator.seed import DEFAULT_CAPACITY, add_user
from presencesync_emulator.store import Store, parse_sf_datetime, sf_datetime

# Values of lightning:omniChannelStatusChanged's `reason`.
REASON_TOOLKIT = "OmniToolkitStatusChange"
REASON_MANUAL = "OmniManualStatusChange"
REASON_SUPERVISOR = "OmniSupervisorStatusChange"
REASON_LOGIN = "OmniLoginStatusChange"
REASON_DECLINE = "OmniDeclineWork"
REASON_PUSH_TIMEOUT = "OmniPushTimeout"
REASONS = frozenset(
    {
        REASON_TOOLKIT,
        REASON_MANUAL,
        REASON_SUPERVISOR,
        REASON_LOGIN,
        REASON_DECLINE,
        REASON_PUSH_TIMEOUT,
    }
)
# Values of lightning:omniChannelLogout's `reason` (the agent's own logout carries none).
LOGOUT_DUPLICATE = "DuplicateLogin"
LOGOUT_DUPLICATE_SAME_BROWSER = "DuplicateLoginInSameBrowser"
LOGOUT_MAINTENANCE = "MaintenanceLogout"
LOGOUT_SUPERVISOR = "OmniSupervisorLogout"
LOGOUT_REASONS = frozenset(
    {LOGOUT_DUPLICATE, LOGOUT_DUPLICATE_SAME_BROWSER, LOGOUT_MAINTENANCE, LOGOUT_SUPERVISOR}
)

# Bookkeeping of the emulator's own: the running workload of each presence row (for
# IdleDuration, AtCapacityDuration, AverageCapacity), and the subject of work items whose
# object has no text field for one.
_OMNI_TABLES = """
CREATE TABLE IF NOT EXISTS emu_presence_load (
    presence_id TEXT PRIMARY KEY, since REAL NOT NULL, workload REAL NOT NULL,
    idle_s REAL NOT NULL, at_capacity_s REAL NOT NULL, load_s REAL NOT NULL);
CREATE TABLE IF NOT EXISTS emu_work_subject (item_id TEXT PRIMARY KEY, subject TEXT);
"""

OPEN_STATUSES = ("Assigned", "Opened")
EV = "lightning:omniChannel"


class OmniError(Exception):
    """A refused Omni operation: `status` is the HTTP status the control API answers with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class OmniEvent:
    user_id: str
    name: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Channel:
    id: str
    developer_name: str
    key: str  # MasterLabel: "Case" | "Chat" | "Lead"
    related_entity: str
    weight: float
    routing_config_id: str


@dataclass(frozen=True)
class PresenceStatus:
    id: str
    developer_name: str
    label: str
    channels: tuple[Channel, ...]

    @property
    def online(self) -> bool:
        return bool(self.channels)

    @cached_property
    def channel_ids(self) -> frozenset[str]:
        return frozenset(c.id for c in self.channels)

    def channels_json(self) -> str:
        return json.dumps(
            [{"channelId": c.id, "developerName": c.developer_name} for c in self.channels]
        )


@dataclass
class _Candidate:
    user_id: str
    channels: frozenset[str]
    capacity: int
    used: float
    last_assigned: str
    declined: set[str] = field(default_factory=set)


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


class Omni:
    def __init__(self, store: Store) -> None:
        self.store = store
        with store.lock:
            store.conn.executescript(_OMNI_TABLES)
        self._load_setup()

    # -- setup (presence statuses and channels are configuration: read once) ---------------

    def _load_setup(self) -> None:
        routing = {
            r[0]: r[1]
            for r in self.store.query(
                "SELECT service_channel_id, queue_routing_config_id FROM emu_channel_routing"
            )
        }
        configs = {c["Id"]: c for c in self.store.find("QueueRoutingConfig")}
        self.channels: dict[str, Channel] = {}
        for row in self.store.find("ServiceChannel", order='"Id"'):
            rid = routing.get(row["Id"], "")
            weight = float(configs[rid]["CapacityWeight"]) if rid in configs else 1.0
            self.channels[row["Id"]] = Channel(
                row["Id"],
                row["DeveloperName"],
                row["MasterLabel"],
                row["RelatedEntity"],
                weight,
                rid,
            )
        links: dict[str, list[Channel]] = {}
        for link in self.store.find("ServiceChannelStatus", order='"Id"'):
            links.setdefault(link["ServicePresenceStatusId"], []).append(
                self.channels[link["ServiceChannelId"]]
            )
        self.statuses: dict[str, PresenceStatus] = {}
        for row in self.store.find("ServicePresenceStatus", order='"Id"'):
            self.statuses[row["Id"]] = PresenceStatus(
                row["Id"], row["DeveloperName"], row["MasterLabel"], tuple(links.get(row["Id"], ()))
            )
        self._status_by_dev = {s.developer_name: s for s in self.statuses.values()}

    def channel_by_key(self, key: str) -> Channel:
        for channel in self.channels.values():
            if key in (channel.key, channel.developer_name, channel.related_entity):
                return channel
        known = ", ".join(c.key for c in self.channels.values())
        raise OmniError(422, "INVALID_CHANNEL", f"unknown channel {key!r} (known: {known})")

    def status_by_dev(self, developer_name: str) -> PresenceStatus:
        status = self._status_by_dev.get(developer_name)
        if status is None:
            known = ", ".join(self._status_by_dev)
            raise OmniError(
                422,
                "INVALID_STATUS",
                f"unknown presence status {developer_name!r} (known: {known})",
            )
        return status

    def status_by_id(self, status_id: str) -> PresenceStatus:
        status = self.statuses.get(ids.normalize(status_id)) if status_id else None
        if status is None:
            raise OmniError(422, "INVALID_STATUS", f"unknown presence status id {status_id!r}")
        return status

    # -- reads ------------------------------------------------------------------------------

    def user(self, user_id: str) -> dict[str, Any]:
        row = self.store.get("User", ids.normalize(user_id)) if user_id else None
        if row is None:
            raise OmniError(404, "NOT_FOUND", f"no user {user_id!r}")
        return row

    def users(self) -> list[dict[str, Any]]:
        return self.store.find("User", order='"Id"')

    def create_user(self, name: str, username: str) -> dict[str, Any]:
        if self.store.find("User", '"Username" = ?', (username,)):
            raise OmniError(409, "DUPLICATE_USERNAME", f"username {username!r} already exists")
        first, _, last = name.strip().rpartition(" ")
        if not last:
            first, last = "", name.strip()
        user_id = add_user(self.store, first, last, username)
        return self.user(user_id)

    def current_presence(self, user_id: str) -> dict[str, Any] | None:
        rows = self.store.find(
            "UserServicePresence", '"UserId" = ? AND "IsCurrentState" = 1', (user_id,)
        )
        return rows[0] if rows else None

    def current_status(self, user_id: str) -> PresenceStatus | None:
        row = self.current_presence(user_id)
        return self.statuses[row["ServicePresenceStatusId"]] if row else None

    def capacity(self, user_id: str) -> int:
        rows = self.store.query(
            'SELECT c."Capacity" FROM "PresenceUserConfigUser" u '
            'JOIN "PresenceUserConfig" c ON c."Id" = u."PresenceUserConfigId" '
            'WHERE u."UserId" = ?',
            (user_id,),
        )
        return int(rows[0][0]) if rows else DEFAULT_CAPACITY

    def used(self, user_id: str) -> float:
        rows = self.store.query(
            'SELECT COALESCE(SUM("CapacityWeight"), 0) FROM "AgentWork" '
            "WHERE \"UserId\" = ? AND \"Status\" IN ('Assigned', 'Opened')",
            (user_id,),
        )
        return float(rows[0][0])

    def work_items(self, user_id: str, open_only: bool = False) -> list[dict[str, Any]]:
        where = '"UserId" = ?'
        if open_only:
            where += " AND \"Status\" IN ('Assigned', 'Opened')"
        return self.store.find("AgentWork", where, (user_id,), order='"CreatedDate", "Id"')

    def describe_work(self, work: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(work["ServiceChannelId"])
        return {
            "id": work["Id"],
            "work_item_id": work["WorkItemId"],
            "channel": channel.key if channel else None,
            "subject": self._subject(work["WorkItemId"]),
            "status": work["Status"],
            "user_id": work["UserId"],
            "capacity_weight": _num(work["CapacityWeight"]),
            "assigned_at": work["AssignedDateTime"],
            "accepted_at": work["AcceptDateTime"],
            "closed_at": work["CloseDateTime"],
        }

    def snapshot(self, user_id: str) -> dict[str, Any]:
        """GET /emulator/v1/users/{id}/omni."""
        user = self.user(user_id)
        status = self.current_status(user["Id"])
        return {
            "user_id": user["Id"],
            "online": status is not None,
            "presence_status": status.developer_name if status else None,
            "presence_status_id": status.id if status else None,
            "presence_status_label": status.label if status else None,
            "work": [self.describe_work(w) for w in self.work_items(user["Id"])],
            "capacity": {
                "configured": self.capacity(user["Id"]),
                "used": _num(self.used(user["Id"])),
            },
        }

    def status_info(self, status: PresenceStatus) -> dict[str, Any]:
        return {
            "statusId": status.id,
            "statusName": status.label,
            "statusApiName": status.developer_name,
        }

    # -- presence ---------------------------------------------------------------------------

    def login(self, user_id: str, status: PresenceStatus, reason: str) -> list[OmniEvent]:
        """Log in to Omni (or, when already online, change status with `reason`)."""
        user = self.user(user_id)
        uid = user["Id"]
        with self.store.tx():
            if self.current_presence(uid) is not None:
                return self.set_status(uid, status, reason)
            if self.maintenance:
                raise OmniError(503, "OMNI_MAINTENANCE", "Omni-Channel is down for maintenance")
            self._open_presence(uid, status, self.store.now())
            events = [
                # Documented response: statusId only.
                OmniEvent(uid, EV + "LoginSuccess", {"statusId": status.id}),
                self._status_event(uid, status, REASON_LOGIN),
            ]
            events += self._route()
        return events

    def set_status(self, user_id: str, status: PresenceStatus, reason: str) -> list[OmniEvent]:
        """Change status; logs in first when offline (as the toolkit's setServicePresenceStatus)."""
        if reason not in REASONS:
            raise OmniError(422, "INVALID_REASON", f"unknown reason {reason!r}")
        uid = self.user(user_id)["Id"]
        with self.store.tx():
            current = self.current_presence(uid)
            if current is None:
                return self.login(uid, status, reason)
            if current["ServicePresenceStatusId"] == status.id:
                return []
            now = self.store.now()
            self._close_presence(current, now)
            self._open_presence(uid, status, now)
            events = [self._status_event(uid, status, reason)]
            events += self._route()
        return events

    def logout(self, user_id: str, reason: str | None = None) -> list[OmniEvent]:
        """Log out of Omni: the agent's own logout (no `reason`), or Omni's, with one of
        LOGOUT_REASONS (a supervisor, a maintenance, a duplicate login)."""
        if reason is not None and reason not in LOGOUT_REASONS:
            known = ", ".join(sorted(LOGOUT_REASONS))
            raise OmniError(422, "INVALID_REASON", f"unknown reason {reason!r} (known: {known})")
        uid = self.user(user_id)["Id"]
        with self.store.tx():
            current = self.current_presence(uid)
            if current is None:
                raise OmniError(409, "NOT_LOGGED_IN", "user is not logged in to Omni-Channel")
            before = self.used(uid)
            now = self.store.now_text()
            for work in self.store.find(
                "AgentWork", '"UserId" = ? AND "Status" = \'Assigned\'', (uid,)
            ):
                self.store.update("AgentWork", work["Id"], {"Status": "Unavailable"})
                self._requeue(work, now)
            self._close_presence(current, self.store.now())
            events: list[OmniEvent] = []
            if self.used(uid) != before:
                events.append(self._workload_event(uid, before))
            events.append(OmniEvent(uid, EV + "Logout", {"reason": reason} if reason else {}))
            events += self._route()
        return events

    def _open_presence(self, user_id: str, status: PresenceStatus, at: datetime) -> None:
        now = sf_datetime(at)
        self.store.insert(
            "UserServicePresence",
            {
                "Name": f"UP-{self.store.next_serial('UserServicePresenceName'):08d}",
                "OwnerId": user_id,
                "UserId": user_id,
                "ServicePresenceStatusId": status.id,
                "IsCurrentState": True,
                "IsAway": not status.online,
                "StatusStartDate": now,
                "CreatedDate": now,
                "ConfiguredCapacity": self.capacity(user_id),
                "ConfiguredInterruptCapacity": self.interruptible_capacity(user_id),
                "IdleDuration": 0,
                "AtCapacityDuration": 0,
                "AverageCapacity": _num(self.used(user_id)),
            },
        )
        row = self.current_presence(user_id)
        assert row is not None
        self.store.execute(
            "INSERT OR REPLACE INTO emu_presence_load VALUES (?, ?, ?, 0, 0, 0)",
            (row["Id"], at.timestamp(), self.used(user_id)),
        )

    def _close_presence(self, row: dict[str, Any], end: datetime) -> None:
        start = parse_sf_datetime(row["StatusStartDate"])
        self.store.update(
            "UserServicePresence",
            row["Id"],
            {
                **self._account_load(row, end, 0.0),
                "IsCurrentState": False,
                "StatusEndDate": sf_datetime(end),
                "StatusDuration": max(0, int((end - start).total_seconds())),
            },
        )

    def _account_load(self, row: dict[str, Any], now: datetime, workload: float) -> dict[str, Any]:
        """Add the time since the last workload change to the presence row's durations and
        its time-weighted average, and start counting `workload` from `now`."""
        start = parse_sf_datetime(row["StatusStartDate"]).timestamp()
        found = self.store.query(
            "SELECT since, workload, idle_s, at_capacity_s, load_s FROM emu_presence_load "
            "WHERE presence_id = ?",
            (row["Id"],),
        )
        since, current, idle, at_capacity, load = found[0] if found else (start, 0.0, 0, 0, 0)
        moment = now.timestamp()
        elapsed = max(0.0, moment - since)
        capacity = row.get("ConfiguredCapacity") or DEFAULT_CAPACITY
        idle += elapsed if current <= 0 else 0.0
        at_capacity += elapsed if current >= capacity else 0.0
        load += elapsed * current
        self.store.execute(
            "INSERT OR REPLACE INTO emu_presence_load VALUES (?, ?, ?, ?, ?, ?)",
            (row["Id"], moment, workload, idle, at_capacity, load),
        )
        total = moment - start
        average = load / total if total > 0 else current
        return {
            "IdleDuration": int(idle),
            "AtCapacityDuration": int(at_capacity),
            "AverageCapacity": round(average, 2),
        }

    def _load_changed(self, user_id: str) -> None:
        """The agent's workload changed (assigned, declined, closed, ...): bring the current
        presence row's capacity fields up to date, as Salesforce does at such moments."""
        row = self.current_presence(user_id)
        if row is not None:
            fields = self._account_load(row, self.store.now(), self.used(user_id))
            self.store.update("UserServicePresence", row["Id"], fields)

    def interruptible_capacity(self, user_id: str) -> int | None:
        """The presence configuration's interruptible capacity (None: the feature is off)."""
        rows = self.store.query(
            'SELECT c."InterruptibleCapacity" FROM "PresenceUserConfigUser" u '
            'JOIN "PresenceUserConfig" c ON c."Id" = u."PresenceUserConfigId" '
            'WHERE u."UserId" = ?',
            (user_id,),
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def _status_event(self, user_id: str, status: PresenceStatus, reason: str) -> OmniEvent:
        return OmniEvent(
            user_id,
            EV + "StatusChanged",
            {
                "statusId": status.id,
                "channels": status.channels_json(),
                "statusName": status.label,
                "statusApiName": status.developer_name,
                "reason": reason,
            },
        )

    def _workload_event(self, user_id: str, before: float) -> OmniEvent:
        self._load_changed(user_id)
        return _workload(
            user_id,
            self.capacity(user_id),
            self.interruptible_capacity(user_id),
            before,
            self.used(user_id),
        )

    # -- work -------------------------------------------------------------------------------

    def create_work(self, channel_key: str, subject: str) -> tuple[dict[str, Any], list[OmniEvent]]:
        """A new case/chat/lead for Omni to route; returns (work, events)."""
        channel = self.channel_by_key(channel_key)
        with self.store.tx():
            item_id = self._create_work_item(channel, subject)
            self.store.insert(
                "PendingServiceRouting",
                {
                    "WorkItemId": item_id,
                    "ServiceChannelId": channel.id,
                    "QueueRoutingConfigId": channel.routing_config_id or None,
                    "CapacityWeight": channel.weight,
                    "IsPushed": False,
                    "RoutingType": "QueueBased",
                    "RoutingPriority": 1,
                },
            )
            events = self._route()
            work = self.describe_item(item_id)
        return work, events

    def describe_item(self, item_id: str) -> dict[str, Any]:
        """The routing state of one work item: its current AgentWork, or queued."""
        works = self.store.find(
            "AgentWork", '"WorkItemId" = ?', (item_id,), order='"CreatedDate" DESC, "Id" DESC'
        )
        pending = self.store.find("PendingServiceRouting", '"WorkItemId" = ?', (item_id,))
        if works and not (pending and not pending[0]["IsPushed"]):
            return self.describe_work(works[0])
        psr = pending[0] if pending else None
        channel = self.channels.get(psr["ServiceChannelId"]) if psr else None
        return {
            "id": None,
            "work_item_id": item_id,
            "channel": channel.key if channel else None,
            "subject": self._subject(item_id),
            "status": "Queued",
            "user_id": None,
            "capacity_weight": _num(psr["CapacityWeight"]) if psr else None,
            "assigned_at": None,
            "accepted_at": None,
            "closed_at": None,
        }

    def _create_work_item(self, channel: Channel, subject: str) -> str:
        entity = channel.related_entity
        if entity == "Case":
            number = self.store.next_serial("CaseNumber")
            return self.store.insert(
                "Case",
                {
                    "CaseNumber": f"{number:08d}",
                    "Subject": subject,
                    "Status": "New",
                    "Origin": "Web",
                    "Priority": "Medium",
                    "IsClosed": False,
                },
            )
        if entity == "MessagingSession":
            number = self.store.next_serial("MessagingSessionName")
            item_id = self.store.insert(
                "MessagingSession",
                {
                    "Name": f"MS-{number:08d}",
                    "Status": "Waiting",
                    "ChannelType": "EmbeddedMessaging",
                    "Origin": "InboundInitiated",
                    "StartTime": self.store.now_text(),
                },
            )
            self._keep_subject(item_id, subject)
            return item_id
        if entity == "VoiceCall":
            item_id = self.store.insert(
                "VoiceCall",
                {
                    "CallType": "Inbound",
                    "CallDisposition": "new",
                    "CallStartDateTime": self.store.now_text(),
                },
            )
            self._keep_subject(item_id, subject)
            return item_id
        if entity == "LiveChatTranscript":
            number = self.store.next_serial("LiveChatTranscriptName")
            return self.store.insert(
                "LiveChatTranscript",
                {
                    "Name": f"{number:08d}",
                    "Body": subject,
                    "Status": "Waiting",
                    "StartTime": self.store.now_text(),
                },
            )
        return self.store.insert(
            "Lead",
            {
                "LastName": subject or "Lead",
                "Name": subject or "Lead",
                "Company": subject or "-",
                "Description": subject,
                "Status": "Open - Not Contacted",
            },
        )

    def _keep_subject(self, item_id: str, subject: str) -> None:
        self.store.execute(
            "INSERT OR REPLACE INTO emu_work_subject (item_id, subject) VALUES (?, ?)",
            (item_id, subject),
        )

    def _subject(self, item_id: str) -> str | None:
        prefix = item_id[:3]
        if prefix in (ids.PREFIXES["MessagingSession"], ids.PREFIXES["VoiceCall"]):
            rows = self.store.query(
                "SELECT subject FROM emu_work_subject WHERE item_id = ?", (item_id,)
            )
            return rows[0][0] if rows else None
        if prefix == ids.PREFIXES["Case"]:
            row = self.store.get("Case", item_id)
            return row["Subject"] if row else None
        if prefix == ids.PREFIXES["LiveChatTranscript"]:
            row = self.store.get("LiveChatTranscript", item_id)
            return row["Body"] if row else None
        if prefix != ids.PREFIXES["Lead"]:
            return None
        row = self.store.get("Lead", item_id)
        return row["Description"] if row else None

    def work_item_known(self, item_id: str) -> bool:
        """Whether Omni has ever routed this Case/Chat/Lead id."""
        return bool(
            self.store.query('SELECT 1 FROM "AgentWork" WHERE "WorkItemId" = ?', (item_id,))
            or self.store.query(
                'SELECT 1 FROM "PendingServiceRouting" WHERE "WorkItemId" = ?', (item_id,)
            )
        )

    def resolve_work(self, ref: str, user_id: str | None = None) -> dict[str, Any]:
        """An AgentWork by its id, or the current AgentWork of a work item (Case/Chat/Lead) id."""
        rid = ids.normalize(ref) if ids.is_valid_id(ref) else ref
        work = self.store.get("AgentWork", rid)
        if work is None:
            if not self.work_item_known(rid):
                raise OmniError(404, "NOT_FOUND", f"no work {ref!r}")
            if self.describe_item(rid)["status"] == "Queued":
                raise OmniError(409, "NOT_ASSIGNED", f"work item {ref} is queued, not assigned")
            works = self.store.find(
                "AgentWork", '"WorkItemId" = ?', (rid,), order='"CreatedDate" DESC, "Id" DESC'
            )
            work = works[0]
        if user_id is not None and work["UserId"] != user_id:
            raise OmniError(404, "NOT_FOUND", f"no work {ref!r} for this user")
        return work

    def _require(self, work: dict[str, Any], allowed: str, action: str) -> None:
        if work["Status"] != allowed:
            raise OmniError(
                409,
                "ILLEGAL_TRANSITION",
                f"cannot {action} work {work['Id']} in status {work['Status']} "
                f"(only {allowed} work can be {action}ed)",
            )

    def accept(
        self, ref: str, user_id: str | None = None
    ) -> tuple[dict[str, Any], list[OmniEvent]]:
        with self.store.tx():
            work = self.resolve_work(ref, user_id)
            self._require(work, "Assigned", "accept")
            self.store.update(
                "AgentWork",
                work["Id"],
                {"Status": "Opened", "AcceptDateTime": self.store.now_text()},
            )
            self.store.execute(
                'DELETE FROM "PendingServiceRouting" WHERE "WorkItemId" = ?', (work["WorkItemId"],)
            )
            self._set_item_owner(work["WorkItemId"], work["UserId"])
            params = {"workItemId": work["WorkItemId"], "workId": work["Id"]}
            events = [OmniEvent(work["UserId"], EV + "WorkAccepted", params)]
            return self.describe_work(self.store.get("AgentWork", work["Id"]) or work), events

    def decline(
        self, ref: str, reason: str | None = None, user_id: str | None = None
    ) -> tuple[dict[str, Any], list[OmniEvent]]:
        with self.store.tx():
            work = self.resolve_work(ref, user_id)
            self._require(work, "Assigned", "decline")
            uid = work["UserId"]
            before = self.used(uid)
            now = self.store.now_text()
            self.store.update(
                "AgentWork",
                work["Id"],
                {"Status": "Declined", "DeclineDateTime": now, "DeclineReason": reason},
            )
            self.store.execute(
                "INSERT OR IGNORE INTO emu_decline (work_item_id, user_id) VALUES (?, ?)",
                (work["WorkItemId"], uid),
            )
            self._requeue(work, now)
            events = [
                # Documented response: workItemId and workId (the reason is on the AgentWork).
                OmniEvent(
                    uid,
                    EV + "WorkDeclined",
                    {"workItemId": work["WorkItemId"], "workId": work["Id"]},
                ),
                self._workload_event(uid, before),
            ]
            events += self._apply_decline_status(uid)
            events += self._route()
            return self.describe_work(self.store.get("AgentWork", work["Id"]) or work), events

    @property
    def decline_status(self) -> PresenceStatus | None:
        """The status an agent is put in after declining work (presence configuration's
        "status on decline"); None = the status does not change."""
        dev = self.store.setting("decline_status")
        return self._status_by_dev.get(dev) if dev else None

    def set_decline_status(self, developer_name: str | None) -> None:
        if developer_name is None:
            self.store.execute("DELETE FROM emu_setting WHERE key = 'decline_status'")
        else:
            self.store.set_setting(
                "decline_status", self.status_by_dev(developer_name).developer_name
            )

    def _apply_decline_status(self, user_id: str) -> list[OmniEvent]:
        return self._apply_status(user_id, self.decline_status, REASON_DECLINE)

    def close(self, ref: str, user_id: str | None = None) -> tuple[dict[str, Any], list[OmniEvent]]:
        with self.store.tx():
            work = self.resolve_work(ref, user_id)
            self._require(work, "Opened", "close")
            uid = work["UserId"]
            before = self.used(uid)
            now = self.store.now()
            accepted = parse_sf_datetime(work["AcceptDateTime"])
            assigned = parse_sf_datetime(work["AssignedDateTime"])
            self.store.update(
                "AgentWork",
                work["Id"],
                {
                    "Status": "Closed",
                    "CloseDateTime": sf_datetime(now),
                    "ActiveTime": int((now - accepted).total_seconds()),
                    "HandleTime": int((now - assigned).total_seconds()),
                },
            )
            self._close_item(work["WorkItemId"], now)
            events = [
                OmniEvent(
                    uid, EV + "WorkClosed", {"workItemId": work["WorkItemId"], "workId": work["Id"]}
                ),
                self._workload_event(uid, before),
            ]
            events += self._route()
            return self.describe_work(self.store.get("AgentWork", work["Id"]) or work), events

    # -- push time-out, cancel, transfer ------------------------------------------------------

    def push_timeout_seconds(self, channel_id: str) -> int:
        """The routing configuration's push time-out of a channel (0: none)."""
        channel = self.channels.get(channel_id)
        if channel is None or not channel.routing_config_id:
            return 0
        row = self.store.get("QueueRoutingConfig", channel.routing_config_id)
        return int(row["PushTimeout"] or 0) if row else 0

    def set_push_timeout_seconds(self, seconds: int) -> None:
        """Set every routing configuration's push time-out (0: off)."""
        for row in self.store.find("QueueRoutingConfig"):
            self.store.update("QueueRoutingConfig", row["Id"], {"PushTimeout": seconds})

    @property
    def push_timeout_status(self) -> PresenceStatus | None:
        """The presence configuration's status on push time-out (None: unchanged)."""
        dev = self.store.setting("push_timeout_status")
        return self._status_by_dev.get(dev) if dev else None

    def set_push_timeout_status(self, developer_name: str | None) -> None:
        if developer_name is None:
            self.store.execute("DELETE FROM emu_setting WHERE key = 'push_timeout_status'")
        else:
            self.store.set_setting(
                "push_timeout_status", self.status_by_dev(developer_name).developer_name
            )

    @property
    def push_timeout_declined_event(self) -> bool:
        """Whether a push time-out also raises lightning:omniChannelWorkDeclined (Salesforce
        does not say; off by default)."""
        return self.store.setting("push_timeout_declined_event") == "1"

    def set_push_timeout_declined_event(self, on: bool) -> None:
        self.store.set_setting("push_timeout_declined_event", "1" if on else "0")

    def due_push_timeouts(self) -> list[str]:
        """Assigned AgentWork whose routing configuration's push time-out ran out."""
        now = self.store.now()
        due = []
        for work in self.store.find("AgentWork", "\"Status\" = 'Assigned'"):
            seconds = self.push_timeout_seconds(work["ServiceChannelId"])
            assigned = work["AssignedDateTime"]
            waited = (now - parse_sf_datetime(assigned)).total_seconds() if assigned else 0
            if seconds > 0 and waited >= seconds:
                due.append(work["Id"])
        return due

    def push_timeout(
        self, ref: str, user_id: str | None = None
    ) -> tuple[dict[str, Any], list[OmniEvent]]:
        """The agent let a pushed item time out: the AgentWork is DeclinedOnPushTimeout, the
        item goes back to the queue (not to this agent again), and the agent moves to the
        status on push time-out, if one is configured, with reason OmniPushTimeout."""
        with self.store.tx():
            work = self.resolve_work(ref, user_id)
            self._require(work, "Assigned", "time out")
            uid = work["UserId"]
            before = self.used(uid)
            now = self.store.now_text()
            self.store.update(
                "AgentWork",
                work["Id"],
                {
                    "Status": "DeclinedOnPushTimeout",
                    "DeclineDateTime": now,
                    "AgentCapacityWhenDeclined": before,
                },
            )
            self.store.execute(
                "INSERT OR IGNORE INTO emu_decline (work_item_id, user_id) VALUES (?, ?)",
                (work["WorkItemId"], uid),
            )
            self._requeue(work, now)
            events: list[OmniEvent] = []
            if self.push_timeout_declined_event:
                params = {"workItemId": work["WorkItemId"], "workId": work["Id"]}
                events.append(OmniEvent(uid, EV + "WorkDeclined", params))
            events.append(self._workload_event(uid, before))
            events += self._apply_status(uid, self.push_timeout_status, REASON_PUSH_TIMEOUT)
            events += self._route()
            return self.describe_work(self.store.get("AgentWork", work["Id"]) or work), events

    def expire_push_timeouts(self) -> list[OmniEvent]:
        events: list[OmniEvent] = []
        for work_id in self.due_push_timeouts():
            try:
                events += self.push_timeout(work_id)[1]
            except OmniError:  # accepted or declined in the meantime
                continue
        return events

    def cancel(self, ref: str) -> tuple[dict[str, Any], list[OmniEvent]]:
        """The item no longer needs routing (e.g. the customer left): a queued item leaves the
        queue; an Assigned or Opened AgentWork becomes Canceled and frees its capacity."""
        rid = ids.normalize(ref) if ids.is_valid_id(ref) else ref
        with self.store.tx():
            work = self.store.get("AgentWork", rid)
            item_id = work["WorkItemId"] if work else rid
            if work is None and not self.work_item_known(rid):
                raise OmniError(404, "NOT_FOUND", f"no work {ref!r}")
            if work is None:
                works = self.store.find(
                    "AgentWork", '"WorkItemId" = ?', (rid,), order='"CreatedDate" DESC, "Id" DESC'
                )
                work = works[0] if works and works[0]["Status"] in OPEN_STATUSES else None
            events: list[OmniEvent] = []
            if work is not None:
                if work["Status"] not in OPEN_STATUSES:
                    raise OmniError(
                        409,
                        "ILLEGAL_TRANSITION",
                        f"cannot cancel work {work['Id']} in status {work['Status']}",
                    )
                uid = work["UserId"]
                before = self.used(uid)
                now = self.store.now()
                self.store.update(
                    "AgentWork",
                    work["Id"],
                    {"Status": "Canceled", "CancelDateTime": sf_datetime(now)},
                )
                # Salesforce documents no console event for a canceled work item; the
                # workload change is the one the agent's console sees.
                events.append(self._workload_event(uid, before))
            self.store.execute(
                'DELETE FROM "PendingServiceRouting" WHERE "WorkItemId" = ?', (item_id,)
            )
            self._close_item(item_id, self.store.now())
            events += self._route()
            if work is not None:
                return self.describe_work(self.store.get("AgentWork", work["Id"]) or work), events
            return self.describe_item(item_id) | {"status": "Canceled"}, events

    def transfer(
        self, ref: str, to_user: str | None = None
    ) -> tuple[dict[str, Any], list[OmniEvent]]:
        """An agent transfers an item to another agent (assigned to them at once) or back to
        the queue: the AgentWork becomes Transferred and a new one starts."""
        with self.store.tx():
            work = self.resolve_work(ref)
            if work["Status"] not in OPEN_STATUSES:
                raise OmniError(
                    409,
                    "ILLEGAL_TRANSITION",
                    f"cannot transfer work {work['Id']} in status {work['Status']}",
                )
            target = self.user(to_user)["Id"] if to_user else None
            if target is not None and self.current_status(target) is None:
                raise OmniError(409, "NOT_LOGGED_IN", f"user {target} is not online in Omni")
            uid = work["UserId"]
            before = self.used(uid)
            now = self.store.now_text()
            self.store.update("AgentWork", work["Id"], {"Status": "Transferred"})
            events = [self._workload_event(uid, before)]
            psr = self.store.find(
                "PendingServiceRouting", '"WorkItemId" = ?', (work["WorkItemId"],)
            )
            if not psr:
                channel = self.channels[work["ServiceChannelId"]]
                self.store.insert(
                    "PendingServiceRouting",
                    {
                        "WorkItemId": work["WorkItemId"],
                        "ServiceChannelId": channel.id,
                        "QueueRoutingConfigId": channel.routing_config_id or None,
                        "CapacityWeight": work["CapacityWeight"],
                        "IsPushed": False,
                        "RoutingType": "QueueBased",
                        "RoutingPriority": 1,
                    },
                )
                psr = self.store.find(
                    "PendingServiceRouting", '"WorkItemId" = ?', (work["WorkItemId"],)
                )
            else:
                self._requeue(work, now)
            if target is not None:
                candidate = _Candidate(
                    target,
                    frozenset(),
                    self.capacity(target),
                    self.used(target),
                    "",
                )
                events += self._assign(psr[0], candidate)
            events += self._route()
            return self.describe_work(self.store.get("AgentWork", work["Id"]) or work), events

    def _apply_status(
        self, user_id: str, status: PresenceStatus | None, reason: str
    ) -> list[OmniEvent]:
        current = self.current_presence(user_id)
        if status is None or current is None or current["ServicePresenceStatusId"] == status.id:
            return []
        now = self.store.now()
        self._close_presence(current, now)
        self._open_presence(user_id, status, now)
        return [self._status_event(user_id, status, reason)]

    # -- maintenance ----------------------------------------------------------------------------

    @property
    def maintenance(self) -> bool:
        return self.store.setting("omni_maintenance") == "1"

    def start_maintenance(self) -> list[OmniEvent]:
        """Omni-Channel goes down: every online agent is logged out (MaintenanceLogout), and
        nobody can log in until it ends."""
        events: list[OmniEvent] = []
        with self.store.tx():
            self.store.set_setting("omni_maintenance", "1")
            online = self.store.query(
                'SELECT "UserId" FROM "UserServicePresence" WHERE "IsCurrentState" = 1'
            )
            for (uid,) in online:
                events += self.logout(uid, LOGOUT_MAINTENANCE)
        return events

    def end_maintenance(self) -> None:
        self.store.execute("DELETE FROM emu_setting WHERE key = 'omni_maintenance'")

    def _requeue(self, work: dict[str, Any], now: str) -> None:
        self.store.execute(
            'UPDATE "PendingServiceRouting" SET "IsPushed" = 0, "LastModifiedDate" = ?, '
            '"SystemModstamp" = ? WHERE "WorkItemId" = ?',
            (now, now, work["WorkItemId"]),
        )

    def _set_item_owner(self, item_id: str, user_id: str) -> None:
        sobject = _item_sobject(item_id)
        changes: dict[str, Any] = {"OwnerId": user_id}
        if sobject == "Case":
            changes["Status"] = "Working"
        elif sobject == "LiveChatTranscript":
            changes["Status"] = "InProgress"
        elif sobject == "MessagingSession":
            changes.update(Status="Active", AcceptTime=self.store.now_text())
        elif sobject == "VoiceCall":
            changes.update(CallDisposition="in-progress", CallAcceptDateTime=self.store.now_text())
        self.store.update(sobject, item_id, changes)

    def _close_item(self, item_id: str, now: datetime) -> None:
        sobject = _item_sobject(item_id)
        if sobject == "Case":
            self.store.update("Case", item_id, {"Status": "Closed", "IsClosed": True})
        elif sobject == "LiveChatTranscript":
            self.store.update(
                "LiveChatTranscript", item_id, {"Status": "Completed", "EndTime": sf_datetime(now)}
            )
        elif sobject == "MessagingSession":
            self.store.update(
                "MessagingSession", item_id, {"Status": "Ended", "EndTime": sf_datetime(now)}
            )
        elif sobject == "VoiceCall":
            self.store.update(
                "VoiceCall",
                item_id,
                {"CallDisposition": "completed", "CallEndDateTime": sf_datetime(now)},
            )

    # -- routing ----------------------------------------------------------------------------

    def _route(self) -> list[OmniEvent]:
        """Offer queued work to eligible agents; returns the events of the assignments."""
        if not self.store.query(
            'SELECT 1 FROM "PendingServiceRouting" WHERE "IsPushed" = 0 LIMIT 1'
        ):
            return []
        candidates = self._candidates()
        if not candidates:
            return []
        pending = self.store.find(
            "PendingServiceRouting",
            '"IsPushed" = 0',
            order='"RoutingPriority", "CreatedDate", "Id"',
        )
        declines: dict[str, set[str]] = {}
        for item_id, uid in self.store.query("SELECT work_item_id, user_id FROM emu_decline"):
            declines.setdefault(item_id, set()).add(uid)
        events: list[OmniEvent] = []
        for psr in pending:
            weight = float(psr["CapacityWeight"])
            excluded = declines.get(psr["WorkItemId"], set())
            eligible = [
                c
                for c in candidates
                if psr["ServiceChannelId"] in c.channels
                and c.capacity - c.used >= weight
                and c.user_id not in excluded
            ]
            if not eligible:
                continue
            chosen = min(eligible, key=lambda c: (c.used, c.last_assigned, c.user_id))
            events += self._assign(psr, chosen)
        return events

    def _candidates(self) -> list[_Candidate]:
        """Agents online in a status with channels, with capacity, load and last assignment."""
        rows = self.store.query(
            """
            SELECT p."UserId", p."ServicePresenceStatusId",
              (SELECT c."Capacity" FROM "PresenceUserConfigUser" u
                 JOIN "PresenceUserConfig" c ON c."Id" = u."PresenceUserConfigId"
                WHERE u."UserId" = p."UserId" LIMIT 1),
              (SELECT COALESCE(SUM(w."CapacityWeight"), 0) FROM "AgentWork" w
                WHERE w."UserId" = p."UserId" AND w."Status" IN ('Assigned', 'Opened')),
              (SELECT MAX(w."AssignedDateTime") FROM "AgentWork" w WHERE w."UserId" = p."UserId")
            FROM "UserServicePresence" p WHERE p."IsCurrentState" = 1
            """
        )
        out = []
        for uid, status_id, capacity, used, last in rows:
            status = self.statuses.get(status_id)
            if status is None or not status.online:
                continue
            out.append(
                _Candidate(
                    uid,
                    status.channel_ids,
                    int(capacity) if capacity is not None else DEFAULT_CAPACITY,
                    float(used),
                    last or "",
                )
            )
        return out

    def _assign(self, psr: dict[str, Any], agent: _Candidate) -> list[OmniEvent]:
        now = self.store.now_text()
        before = agent.used
        work_id = self.store.insert(
            "AgentWork",
            {
                "Name": f"AW-{self.store.next_serial('AgentWorkName'):08d}",
                "OwnerId": agent.user_id,
                "UserId": agent.user_id,
                "WorkItemId": psr["WorkItemId"],
                "ServiceChannelId": psr["ServiceChannelId"],
                "PendingServiceRoutingId": psr["Id"],
                "Status": "Assigned",
                "CapacityWeight": psr["CapacityWeight"],
                "RequestDateTime": psr["CreatedDate"],
                "AssignedDateTime": now,
                "RoutingType": psr["RoutingType"],
            },
        )
        self.store.update("PendingServiceRouting", psr["Id"], {"IsPushed": True})
        agent.used += float(psr["CapacityWeight"])
        agent.last_assigned = now
        self._load_changed(agent.user_id)
        return [
            OmniEvent(
                agent.user_id,
                EV + "WorkAssigned",
                {"workItemId": psr["WorkItemId"], "workId": work_id},
            ),
            _workload(
                agent.user_id,
                agent.capacity,
                self.interruptible_capacity(agent.user_id),
                before,
                agent.used,
            ),
        ]


WORK_ITEM_SOBJECTS = ("Case", "LiveChatTranscript", "Lead", "MessagingSession", "VoiceCall")


def _item_sobject(item_id: str) -> str:
    for name in WORK_ITEM_SOBJECTS:
        if item_id.startswith(ids.PREFIXES[name]):
            return name
    raise OmniError(404, "NOT_FOUND", f"{item_id!r} is not a work item")


def _workload(
    user_id: str, capacity: int, interruptible: int | None, before: float, after: float
) -> OmniEvent:
    """lightning:omniChannelWorkloadChanged, with the documented interruptible fields (the
    emulator routes no interruptible work: those workloads are 0)."""
    return OmniEvent(
        user_id,
        EV + "WorkloadChanged",
        {
            "configuredCapacity": capacity,
            "previousWorkload": _num(before),
            "newWorkload": _num(after),
            "configuredInterruptibleCapacity": interruptible or 0,
            "previousInterruptibleWorkload": 0,
            "newInterruptibleWorkload": 0,
        },
    )
