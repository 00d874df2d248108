"""Who may do what in the emulated org: permission sets, their assignments, object permissions,
presence-status grants (SetupEntityAccess) and trusted URLs, and how the REST API applies them.

Salesforce keeps a user's access in `PermissionSet` rows (one per permission set, plus one owned
by each profile) assigned through `PermissionSetAssignment`; object access in `ObjectPermissions`
and access to setup entities in `SetupEntityAccess`, both children of a permission set. A user
has a permission when any assigned permission set grants it.

What the REST API enforces here (our reading of the documentation, see the README):
- no **API Enabled** -> every `/services/data/vNN.0/...` request is refused (403
  `API_DISABLED_FOR_ORG`);
- no **View Setup and Configuration** -> `PermissionSet`, `PermissionSetAssignment`,
  `ObjectPermissions`, `SetupEntityAccess` and `CspTrustedSite` do not exist for the user
  (`INVALID_TYPE`), and neither does `ServicePresenceStatus.DeveloperName` (`INVALID_FIELD`):
  the object reference restricts that field to View DeveloperName or View Setup;
- no **Read** object permission on `AgentWork` or `UserServicePresence` -> the object does
  not exist for the user (`INVALID_TYPE`), as Salesforce answers for objects a user cannot see.
Other objects are readable by every API user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from presencesync_emulator.ids import make_id
from presencesync_emulator.schema import soql_schema
from presencesync_emulator.store import Store

# The package's permission sets (salesforce/package/permissionsets/), as an admin would deploy
# them; a test keeps the two in step.
INTEGRATION_PERMISSION_SET = "PresenceSync_Integration"
AGENT_PERMISSION_SET = "PresenceSync_Agent"
STANDARD_PROFILE = "Standard User"
INTEGRATION_PROFILE = "Minimum Access - API Only Integrations"

# Objects whose records need the Read object permission.
READ_CONTROLLED = ("AgentWork", "UserServicePresence")
# Objects only users with View Setup and Configuration can query.
SETUP_OBJECTS = (
    "PermissionSet",
    "PermissionSetAssignment",
    "ObjectPermissions",
    "SetupEntityAccess",
    "CspTrustedSite",
)
# Fields only users with View Setup and Configuration (or View DeveloperName) can see.
SETUP_FIELDS = (("ServicePresenceStatus", "DeveloperName"),)

PRESENCE_STATUS_ENTITY = "ServicePresenceStatus"

_INDEXES = """
CREATE INDEX IF NOT EXISTS ix_psa_assignee ON "PermissionSetAssignment" ("AssigneeId");
CREATE INDEX IF NOT EXISTS ix_op_parent ON "ObjectPermissions" ("ParentId");
CREATE INDEX IF NOT EXISTS ix_sea_parent ON "SetupEntityAccess" ("ParentId");
"""


@dataclass(frozen=True)
class Access:
    """A user's effective permissions (the union of every assigned permission set)."""

    api_enabled: bool
    view_setup: bool
    readable: frozenset[str]  # READ_CONTROLLED objects the user may read

    def can_read(self, sobject: str) -> bool:
        if sobject in SETUP_OBJECTS:
            return self.view_setup
        if sobject in READ_CONTROLLED:
            return sobject in self.readable
        return True

    def can_see_field(self, sobject: str, field: str) -> bool:
        return self.view_setup or (sobject, field) not in SETUP_FIELDS


def access_of(store: Store, user_id: str) -> Access:
    rows = store.query(
        'SELECT MAX(ps."PermissionsApiEnabled"), MAX(ps."PermissionsViewSetup") '
        'FROM "PermissionSetAssignment" a JOIN "PermissionSet" ps ON ps."Id" = a."PermissionSetId" '
        'WHERE a."AssigneeId" = ?',
        (user_id,),
    )
    api, view_setup = (rows[0][0], rows[0][1]) if rows else (None, None)
    readable = store.query(
        'SELECT DISTINCT op."SobjectType" FROM "PermissionSetAssignment" a '
        'JOIN "ObjectPermissions" op ON op."ParentId" = a."PermissionSetId" '
        'WHERE a."AssigneeId" = ? AND (op."PermissionsRead" = 1 '
        'OR op."PermissionsViewAllRecords" = 1 OR op."PermissionsModifyAllRecords" = 1)',
        (user_id,),
    )
    return Access(bool(api), bool(view_setup), frozenset(r[0] for r in readable))


def schema_for(access: Access) -> Mapping[str, Any]:
    """The SOQL schema as this user sees it: objects and fields they may not read are absent,
    so the SOQL engine answers INVALID_TYPE / INVALID_FIELD with Salesforce's own wording."""
    return _schema_for(access.view_setup, access.readable)


@lru_cache(maxsize=64)
def _schema_for(view_setup: bool, readable: frozenset[str]) -> Mapping[str, Any]:
    from dataclasses import replace

    access = Access(True, view_setup, readable)
    out: dict[str, Any] = {}
    for name, obj in soql_schema().items():
        if not access.can_read(name):
            continue
        hidden = [f for f in obj.fields if not access.can_see_field(name, f)]
        if hidden:
            obj = replace(obj, fields={k: v for k, v in obj.fields.items() if k not in hidden})
        out[name] = obj
    return out


# -- records -------------------------------------------------------------------------------


def permission_set(store: Store, name_or_label: str) -> dict[str, Any] | None:
    rows = store.find("PermissionSet", '"Name" = ? OR "Label" = ?', (name_or_label, name_or_label))
    return rows[0] if rows else None


def create_permission_set(
    store: Store,
    name: str,
    label: str,
    *,
    owned_by_profile: bool = False,
    api_enabled: bool = False,
    api_only: bool = False,
    view_setup: bool = False,
    read: Iterable[str] = (),
    description: str | None = None,
) -> str:
    with store.tx():
        ps_id = store.insert(
            "PermissionSet",
            {
                "Name": name,
                "Label": label,
                "Description": description,
                "IsOwnedByProfile": owned_by_profile,
                "IsCustom": not owned_by_profile,
                "PermissionsApiEnabled": api_enabled,
                "PermissionsApiUserOnly": api_only,
                "PermissionsViewSetup": view_setup,
            },
        )
        for sobject in read:
            set_object_read(store, ps_id, sobject, True)
    return ps_id


def set_object_read(store: Store, ps_id: str, sobject: str, read: bool) -> None:
    with store.tx():
        rows = store.find(
            "ObjectPermissions", '"ParentId" = ? AND "SobjectType" = ?', (ps_id, sobject)
        )
        if rows:
            store.update("ObjectPermissions", rows[0]["Id"], {"PermissionsRead": read})
            return
        store.insert(
            "ObjectPermissions",
            {
                "ParentId": ps_id,
                "SobjectType": sobject,
                "PermissionsRead": read,
                "PermissionsCreate": False,
                "PermissionsEdit": False,
                "PermissionsDelete": False,
                "PermissionsViewAllRecords": False,
                "PermissionsModifyAllRecords": False,
            },
        )


def assign(store: Store, ps_id: str, user_id: str) -> None:
    with store.tx():
        if not store.find(
            "PermissionSetAssignment",
            '"PermissionSetId" = ? AND "AssigneeId" = ?',
            (ps_id, user_id),
        ):
            store.insert(
                "PermissionSetAssignment", {"PermissionSetId": ps_id, "AssigneeId": user_id}
            )


def unassign(store: Store, ps_id: str, user_id: str) -> None:
    store.execute(
        'DELETE FROM "PermissionSetAssignment" WHERE "PermissionSetId" = ? AND "AssigneeId" = ?',
        (ps_id, user_id),
    )


def grant_status(store: Store, ps_id: str, status_id: str) -> None:
    with store.tx():
        if not store.find(
            "SetupEntityAccess", '"ParentId" = ? AND "SetupEntityId" = ?', (ps_id, status_id)
        ):
            store.insert(
                "SetupEntityAccess",
                {
                    "ParentId": ps_id,
                    "SetupEntityId": status_id,
                    "SetupEntityType": PRESENCE_STATUS_ENTITY,
                },
            )


def revoke_status(store: Store, ps_id: str, status_id: str) -> None:
    store.execute(
        'DELETE FROM "SetupEntityAccess" WHERE "ParentId" = ? AND "SetupEntityId" = ?',
        (ps_id, status_id),
    )


def describe_permission_set(store: Store, ps: dict[str, Any]) -> dict[str, Any]:
    """The control API's view of a permission set."""
    objects = store.find("ObjectPermissions", '"ParentId" = ?', (ps["Id"],), order='"SobjectType"')
    statuses = store.query(
        'SELECT s."DeveloperName" FROM "SetupEntityAccess" e '
        'JOIN "ServicePresenceStatus" s ON s."Id" = e."SetupEntityId" '
        'WHERE e."ParentId" = ? ORDER BY s."DeveloperName"',
        (ps["Id"],),
    )
    assignees = store.query(
        'SELECT "AssigneeId" FROM "PermissionSetAssignment" WHERE "PermissionSetId" = ? '
        'ORDER BY "AssigneeId"',
        (ps["Id"],),
    )
    return {
        "id": ps["Id"],
        "name": ps["Name"],
        "label": ps["Label"],
        "owned_by_profile": ps["IsOwnedByProfile"],
        "api_enabled": ps["PermissionsApiEnabled"],
        "api_only": ps["PermissionsApiUserOnly"],
        "view_setup": ps["PermissionsViewSetup"],
        "object_read": [o["SobjectType"] for o in objects if o["PermissionsRead"]],
        "presence_statuses": [r[0] for r in statuses],
        "assignees": [r[0] for r in assignees],
    }


# -- seed ----------------------------------------------------------------------------------


def _profile_permission_set(store: Store, profile: str, **perms: Any) -> str:
    # A profile's permissions live in a permission set the profile owns; its Name is "X"
    # followed by the profile's id (our choice of format).
    profile_id = make_id("Profile", store.next_serial("Profile"))
    return create_permission_set(
        store, f"X{profile_id[:15]}", profile, owned_by_profile=True, **perms
    )


def seed_permissions(store: Store) -> bool:
    """Give a seeded org (new or older than this module) its permission model, once:
    profiles for agents and the integration user, the package's two permission sets, every
    seeded presence status granted to the agents. Returns False when already done."""
    with store.lock:
        store.conn.executescript(_INDEXES)
    if store.setting("permissions_seeded"):
        return False
    clients = store.query("SELECT username FROM emu_oauth_client ORDER BY rowid")
    integration_usernames = {r[0] for r in clients}
    with store.tx():
        standard = _profile_permission_set(
            store, STANDARD_PROFILE, api_enabled=True, read=("AgentWork", "UserServicePresence")
        )
        api_only = _profile_permission_set(
            store, INTEGRATION_PROFILE, api_enabled=True, api_only=True
        )
        integration = create_permission_set(
            store,
            INTEGRATION_PERMISSION_SET,
            "presencesync Integration",
            api_enabled=True,
            view_setup=True,
            read=READ_CONTROLLED,
            description="presencesync's integration user: reads Omni-Channel configuration, "
            "presence and work, and checks agents' access (presencesync doctor).",
        )
        agent = create_permission_set(
            store,
            AGENT_PERMISSION_SET,
            "presencesync Agent",
            description="Agents synced by presencesync: the presence statuses the mapping uses.",
        )
        for status in store.find("ServicePresenceStatus"):
            grant_status(store, agent, status["Id"])
        for user in store.find("User"):
            if user["Username"] in integration_usernames:
                assign(store, api_only, user["Id"])
                assign(store, integration, user["Id"])
            else:
                assign(store, standard, user["Id"])
                assign(store, agent, user["Id"])
        store.set_setting("standard_profile_permission_set_id", standard)
        store.set_setting("agent_permission_set_id", agent)
        store.set_setting("permissions_seeded", "1")
    return True


def give_agent_defaults(store: Store, user_id: str) -> None:
    """A user added later (control API) gets what the seeded agents have: the Standard User
    profile and the agent permission set."""
    for key in ("standard_profile_permission_set_id", "agent_permission_set_id"):
        ps_id = store.setting(key)
        if ps_id:
            assign(store, ps_id, user_id)
