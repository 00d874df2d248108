"""The emulated org's objects: fields, types, references (used by the store, describe and SOQL).

Field names and types follow the Salesforce Object Reference for these objects (a subset of
their fields). Types are the REST describe types: id, string, boolean, int, double, datetime,
date, reference, picklist, textarea.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from presencesync_emulator.ids import PREFIXES


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    label: str
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    nillable: bool = True


@dataclass(frozen=True)
class ObjectDef:
    name: str
    label: str
    label_plural: str
    fields: tuple[FieldDef, ...]
    # Omni objects are maintained by Omni-Channel itself: the REST API only reads them.
    read_only: bool = True
    deletable: bool = False  # a read-only object that the API may still delete
    field_map: Mapping[str, FieldDef] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "field_map", {f.name: f for f in self.fields})

    @property
    def key_prefix(self) -> str:
        return PREFIXES[self.name]


def _f(name: str, type_: str, label: str | None = None, nillable: bool = True) -> FieldDef:
    return FieldDef(name, type_, label or name, nillable=nillable)


def _ref(name: str, target: str | tuple[str, ...], rel: str, label: str | None = None) -> FieldDef:
    targets = (target,) if isinstance(target, str) else target
    return FieldDef(name, "reference", label or name, targets, rel)


def _audit(label: str) -> tuple[FieldDef, ...]:
    return (
        FieldDef("Id", "id", f"{label} ID", nillable=False),
        _f("IsDeleted", "boolean", "Deleted", nillable=False),
        _f("CreatedDate", "datetime", "Created Date", nillable=False),
        _ref("CreatedById", "User", "CreatedBy", "Created By ID"),
        _f("LastModifiedDate", "datetime", "Last Modified Date", nillable=False),
        _ref("LastModifiedById", "User", "LastModifiedBy", "Last Modified By ID"),
        _f("SystemModstamp", "datetime", "System Modstamp", nillable=False),
    )


# What Omni-Channel routes (AgentWork.WorkItemId is polymorphic over these).
_WORK_ITEM_TYPES = ("Case", "LiveChatTranscript", "Lead", "MessagingSession", "VoiceCall")
# What SetupEntityAccess.SetupEntityId can point at here (Salesforce: Apex classes, pages,
# connected apps, ...; presence statuses are granted the same way in Setup).
_SETUP_ENTITY_TYPES = ("ServicePresenceStatus",)

OBJECTS: dict[str, ObjectDef] = {
    o.name: o
    for o in (
        ObjectDef(
            "User",
            "User",
            "Users",
            (
                *_audit("User"),
                _f("Username", "string", nillable=False),
                _f("Name", "string", "Full Name"),
                _f("FirstName", "string", "First Name"),
                _f("LastName", "string", "Last Name", nillable=False),
                _f("Email", "string"),
                _f("Alias", "string"),
                _f("IsActive", "boolean", "Active", nillable=False),
                _f("UserType", "picklist", "User Type"),
            ),
        ),
        ObjectDef(
            "ServiceChannel",
            "Service Channel",
            "Service Channels",
            (
                *_audit("Service Channel"),
                _f("DeveloperName", "string", "Developer Name", nillable=False),
                _f("MasterLabel", "string", "Label", nillable=False),
                _f("RelatedEntity", "picklist", "Salesforce Object", nillable=False),
            ),
        ),
        ObjectDef(
            "ServicePresenceStatus",
            "Presence Status",
            "Presence Statuses",
            (
                *_audit("Service Presence Status"),
                _f("DeveloperName", "string", "Developer Name", nillable=False),
                _f("MasterLabel", "string", "Status Name", nillable=False),
                _f("Language", "picklist", "Master Language"),
            ),
        ),
        ObjectDef(
            "ServiceChannelStatus",
            "Service Channel Status",
            "Service Channel Statuses",
            (
                *_audit("Service Channel Status"),
                _ref("ServiceChannelId", "ServiceChannel", "ServiceChannel", "Service Channel ID"),
                _ref(
                    "ServicePresenceStatusId",
                    "ServicePresenceStatus",
                    "ServicePresenceStatus",
                    "Service Presence Status ID",
                ),
            ),
        ),
        ObjectDef(
            "QueueRoutingConfig",
            "Routing Configuration",
            "Routing Configurations",
            (
                *_audit("Routing Configuration"),
                _f("DeveloperName", "string", "Developer Name", nillable=False),
                _f("MasterLabel", "string", "Label", nillable=False),
                _f("RoutingModel", "picklist", "Routing Model"),
                _f("RoutingPriority", "int", "Routing Priority"),
                _f("CapacityWeight", "double", "Units of Capacity"),
                _f("PushTimeout", "int", "Push Time-Out (seconds)"),
            ),
        ),
        ObjectDef(
            "PresenceUserConfig",
            "Presence Configuration",
            "Presence Configurations",
            (
                *_audit("Presence Configuration"),
                _f("DeveloperName", "string", "Developer Name", nillable=False),
                _f("MasterLabel", "string", "Label", nillable=False),
                _f("Capacity", "int", "Capacity", nillable=False),
                _f("IsAllowDeclineRequest", "boolean", "Allow Agents to Decline Requests"),
                _f("IsAutoAcceptEnabled", "boolean", "Auto-Accept Work Requests"),
                _f("InterruptibleCapacity", "int", "Interruptible Capacity"),
            ),
        ),
        ObjectDef(
            "PresenceUserConfigUser",
            "Presence Configuration User",
            "Presence Configuration Users",
            (
                *_audit("Presence Configuration User"),
                _ref("PresenceUserConfigId", "PresenceUserConfig", "PresenceUserConfig"),
                _ref("UserId", "User", "User", "User ID"),
            ),
        ),
        ObjectDef(
            "UserServicePresence",
            "User Presence",
            "User Presences",
            (
                *_audit("User Presence"),
                _f("Name", "string", "User Presence Name"),
                _ref("OwnerId", "User", "Owner", "Owner ID"),
                _ref("UserId", "User", "User", "User ID"),
                _ref(
                    "ServicePresenceStatusId",
                    "ServicePresenceStatus",
                    "ServicePresenceStatus",
                    "Presence Status ID",
                ),
                _f("IsCurrentState", "boolean", "Is Current Status", nillable=False),
                _f("IsAway", "boolean", "Is Away", nillable=False),
                _f("StatusStartDate", "datetime", "Status Start Date"),
                _f("StatusEndDate", "datetime", "Status End Date"),
                _f("StatusDuration", "int", "Status Duration (seconds)"),
                _f("ConfiguredCapacity", "int", "Configured Capacity"),
                # Updated when the agent's capacity changes (assigned, declined, closed work).
                _f("IdleDuration", "int", "Idle Duration"),
                _f("AtCapacityDuration", "int", "At Capacity Duration"),
                _f("AverageCapacity", "double", "Average Capacity"),
                _f("ConfiguredInterruptCapacity", "int", "Configured Interruptible Capacity"),
            ),
            read_only=True,
            deletable=True,  # supported calls: delete(), query(), retrieve(), ... (no create)
        ),
        ObjectDef(
            "AgentWork",
            "Agent Work",
            "Agent Work",
            (
                *_audit("Agent Work"),
                _f("Name", "string", "Agent Work Name"),
                _ref("OwnerId", "User", "Owner", "Owner ID"),
                _ref("UserId", "User", "User", "User ID"),
                _ref("WorkItemId", _WORK_ITEM_TYPES, "WorkItem", "Work Item ID"),
                _ref("ServiceChannelId", "ServiceChannel", "ServiceChannel", "Service Channel ID"),
                _ref(
                    "PendingServiceRoutingId",
                    "PendingServiceRouting",
                    "PendingServiceRouting",
                    "Pending Service Routing ID",
                ),
                _f("Status", "picklist", "Status"),
                _f("CapacityWeight", "double", "Capacity Weight"),
                _f("RequestDateTime", "datetime", "Request Date"),
                _f("AssignedDateTime", "datetime", "Assigned DateTime"),
                _f("AcceptDateTime", "datetime", "Accept DateTime"),
                _f("DeclineDateTime", "datetime", "Decline DateTime"),
                _f("DeclineReason", "string", "Decline Reason"),
                _f("AgentCapacityWhenDeclined", "double", "Agent Capacity when Declined"),
                _f("CancelDateTime", "datetime", "Cancel Date"),
                _f("CloseDateTime", "datetime", "Close DateTime"),
                _f("ActiveTime", "int", "Active Time"),
                _f("HandleTime", "int", "Handle Time"),
                _f("RoutingType", "picklist", "Routing Type"),
            ),
        ),
        ObjectDef(
            "PendingServiceRouting",
            "Pending Service Routing",
            "Pending Service Routing",
            (
                *_audit("Pending Service Routing"),
                _ref("WorkItemId", _WORK_ITEM_TYPES, "WorkItem", "Work Item ID"),
                _ref("ServiceChannelId", "ServiceChannel", "ServiceChannel", "Service Channel ID"),
                _ref("QueueRoutingConfigId", "QueueRoutingConfig", "QueueRoutingConfig", "Routing"),
                _f("CapacityWeight", "double", "Capacity Weight"),
                _f("IsPushed", "boolean", "Pushed", nillable=False),
                _f("RoutingType", "picklist", "Routing Type"),
                _f("RoutingPriority", "int", "Routing Priority"),
            ),
        ),
        ObjectDef(
            "Case",
            "Case",
            "Cases",
            (
                *_audit("Case"),
                _f("CaseNumber", "string", "Case Number"),
                _f("Subject", "string"),
                _f("Status", "picklist"),
                _f("Origin", "picklist", "Case Origin"),
                _f("Priority", "picklist"),
                _ref("OwnerId", "User", "Owner", "Owner ID"),
                _f("IsClosed", "boolean", "Closed", nillable=False),
            ),
            read_only=False,
        ),
        ObjectDef(
            "LiveChatTranscript",
            "Chat Transcript",
            "Chat Transcripts",
            (
                *_audit("Live Chat Transcript"),
                _f("Name", "string", "Chat Transcript Name"),
                _f("Body", "textarea", "Body"),
                _f("Status", "picklist"),
                _ref("OwnerId", "User", "Owner", "Owner ID"),
                _f("StartTime", "datetime", "Chat Start Time"),
                _f("EndTime", "datetime", "Chat End Time"),
            ),
            read_only=False,
        ),
        ObjectDef(
            "Lead",
            "Lead",
            "Leads",
            (
                *_audit("Lead"),
                _f("FirstName", "string", "First Name"),
                _f("LastName", "string", "Last Name", nillable=False),
                _f("Name", "string", "Full Name"),
                _f("Company", "string", nillable=False),
                _f("Description", "textarea"),
                _f("Status", "picklist", "Lead Status"),
                _ref("OwnerId", "User", "Owner", "Owner ID"),
            ),
            read_only=False,
        ),
        # -- access control (see permissions.py for how the emulator applies it) ------------
        ObjectDef(
            "PermissionSet",
            "Permission Set",
            "Permission Sets",
            (
                *_audit("Permission Set"),
                _f("Name", "string", nillable=False),
                _f("Label", "string", nillable=False),
                _f("Description", "textarea"),
                _f("IsOwnedByProfile", "boolean", "Is Owned By Profile", nillable=False),
                _f("IsCustom", "boolean", "Custom", nillable=False),
                _f("PermissionsApiEnabled", "boolean", "API Enabled", nillable=False),
                _f("PermissionsApiUserOnly", "boolean", "API Only User", nillable=False),
                _f(
                    "PermissionsViewSetup",
                    "boolean",
                    "View Setup and Configuration",
                    nillable=False,
                ),
            ),
        ),
        ObjectDef(
            "PermissionSetAssignment",
            "Permission Set Assignment",
            "Permission Set Assignments",
            (
                *_audit("Permission Set Assignment"),
                _ref("AssigneeId", "User", "Assignee", "Assignee ID"),
                _ref("PermissionSetId", "PermissionSet", "PermissionSet", "Permission Set ID"),
            ),
        ),
        ObjectDef(
            "ObjectPermissions",
            "Object Permissions",
            "Object Permissions",
            (
                *_audit("Object Permissions"),
                _ref("ParentId", "PermissionSet", "Parent", "Parent ID"),
                _f("SobjectType", "picklist", "Sobject Type Name", nillable=False),
                _f("PermissionsRead", "boolean", "Read", nillable=False),
                _f("PermissionsCreate", "boolean", "Create", nillable=False),
                _f("PermissionsEdit", "boolean", "Edit", nillable=False),
                _f("PermissionsDelete", "boolean", "Delete", nillable=False),
                _f("PermissionsViewAllRecords", "boolean", "View All", nillable=False),
                _f("PermissionsModifyAllRecords", "boolean", "Modify All", nillable=False),
            ),
        ),
        ObjectDef(
            "SetupEntityAccess",
            "Setup Entity Access",
            "Setup Entity Access",
            (
                *_audit("Setup Entity Access"),
                _ref("ParentId", "PermissionSet", "Parent", "Parent ID"),
                # A reference without a relationship name: SOQL filters on it, never walks it.
                FieldDef(
                    "SetupEntityId", "reference", "Setup Entity ID", _SETUP_ENTITY_TYPES, None
                ),
                _f("SetupEntityType", "picklist", "Setup Entity Type"),
            ),
        ),
        ObjectDef(
            "CspTrustedSite",
            "Trusted URL",
            "Trusted URLs",
            (
                *_audit("Trusted URL"),
                _f("DeveloperName", "string", "API Name", nillable=False),
                _f("MasterLabel", "string", "Label", nillable=False),
                _f("EndpointUrl", "string", "URL", nillable=False),
                _f("Description", "textarea"),
                _f("IsActive", "boolean", "Active", nillable=False),
                _f("Context", "picklist", "CSP Context", nillable=False),
                _f("IsApplicableToConnectSrc", "boolean", "connect-src (scripts)", nillable=False),
                _f("IsApplicableToFontSrc", "boolean", "font-src (fonts)", nillable=False),
                _f("IsApplicableToFrameSrc", "boolean", "frame-src (iframe content)", False),
                _f("IsApplicableToImgSrc", "boolean", "img-src (images)", nillable=False),
                _f("IsApplicableToMediaSrc", "boolean", "media-src (audio and video)", False),
                _f("IsApplicableToStyleSrc", "boolean", "style-src (stylesheets)", nillable=False),
            ),
        ),
        ObjectDef(
            "MessagingSession",
            "Messaging Session",
            "Messaging Sessions",
            (
                *_audit("Messaging Session"),
                _f("Name", "string", "Messaging Session Name"),
                _f("Status", "picklist"),
                _f("ChannelType", "picklist", "Channel Type"),
                _f("Origin", "picklist"),
                _ref("OwnerId", "User", "Owner", "Owner ID"),
                _f("StartTime", "datetime", "Start Time"),
                _f("AcceptTime", "datetime", "Accept Time"),
                _f("EndTime", "datetime", "End Time"),
            ),
            read_only=False,
        ),
        ObjectDef(
            "VoiceCall",
            "Voice Call",
            "Voice Calls",
            (
                *_audit("Voice Call"),
                _f("CallType", "picklist", "Call Type"),
                _f("CallDisposition", "string", "Call Disposition"),
                _f("FromPhoneNumber", "string", "From"),
                _f("ToPhoneNumber", "string", "To"),
                _ref("OwnerId", "User", "Owner", "Owner ID"),
                _f("CallStartDateTime", "datetime", "Call Started"),
                _f("CallAcceptDateTime", "datetime", "Call Accepted"),
                _f("CallEndDateTime", "datetime", "Call Ended"),
            ),
            read_only=False,
        ),
    )
}


def object_by_prefix(record_id: str) -> ObjectDef | None:
    for obj in OBJECTS.values():
        if record_id.startswith(obj.key_prefix):
            return obj
    return None


@cache
def soql_schema() -> Mapping[str, Any]:
    """The schema in the form the SOQL engine takes (built once, on first query)."""
    from presencesync_emulator import soql

    out: dict[str, Any] = {}
    for obj in OBJECTS.values():
        rels = {
            f.relationship_name: soql.Relationship(
                name=f.relationship_name,
                lookup_field=f.name,
                target=f.reference_to[0] if len(f.reference_to) == 1 else _NAME_OBJECT,
                targets=f.reference_to if len(f.reference_to) > 1 else (),
            )
            for f in obj.fields
            if f.relationship_name
        }
        out[obj.name] = soql.SObjectSchema(
            name=obj.name,
            fields={f.name: f.type for f in obj.fields},
            relationships=rels,
            name_field=_NAME_FIELDS.get(obj.name, "Name" if "Name" in obj.field_map else None),
        )
    # Salesforce's `Name` object: what a polymorphic lookup's fields are (not queryable here).
    out[_NAME_OBJECT] = soql.SObjectSchema(
        name="Name", fields={"Id": "id", "Name": "string", "Type": "string"}
    )
    return out


_NAME_OBJECT = "(Name)"
# The field that serves as a record's name where it is not called Name.
_NAME_FIELDS = {"Case": "CaseNumber", "VoiceCall": None}
