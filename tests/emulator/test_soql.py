"""Example tests of the emulator's SOQL subset: the queries presencesync runs, each construct,
and each error code with Salesforce's message layout."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from presencesync_emulator.soql import (
    And,
    BooleanLit,
    Comparison,
    DateFunc,
    DateLit,
    DateTimeLit,
    FieldPath,
    InList,
    Like,
    Not,
    NullLit,
    NumberLit,
    Or,
    OrderItem,
    Query,
    QueryResult,
    Relationship,
    SObjectSchema,
    SoqlError,
    StringLit,
    Wildcard,
    execute,
    parse,
    render,
)

# --------------------------------------------------------------------------------------------
# A small org: the Omni-Channel objects presencesync reads
# --------------------------------------------------------------------------------------------

U1, U2, U3 = "005000000000001AAA", "005000000000002AAA", "005000000000003AAA"
S_AVAILABLE, S_BUSY, S_CASES = "0N5000000000001AAA", "0N5000000000002AAA", "0N5000000000003AAA"
CH_CASE, CH_CHAT = "0N9000000000001AAA", "0N9000000000002AAA"

SCHEMA = {
    "User": SObjectSchema(
        "User",
        {
            "Id": "id",
            "Name": "string",
            "Username": "string",
            "IsActive": "boolean",
            "CreatedDate": "datetime",
            "HireDay__c": "date",
            "Score__c": "double",
            "Logins__c": "int",
        },
    ),
    "ServicePresenceStatus": SObjectSchema(
        "ServicePresenceStatus",
        {"Id": "id", "DeveloperName": "string", "MasterLabel": "string"},
    ),
    "ServiceChannel": SObjectSchema(
        "ServiceChannel",
        {
            "Id": "id",
            "DeveloperName": "string",
            "MasterLabel": "string",
            "RelatedEntity": "picklist",
        },
    ),
    "UserServicePresence": SObjectSchema(
        "UserServicePresence",
        {
            "Id": "id",
            "UserId": "reference",
            "ServicePresenceStatusId": "reference",
            "IsCurrentState": "boolean",
            "StatusStartDate": "datetime",
            "StatusEndDate": "datetime",
        },
        {
            "User": Relationship("User", "UserId", "User"),
            "ServicePresenceStatus": Relationship(
                "ServicePresenceStatus", "ServicePresenceStatusId", "ServicePresenceStatus"
            ),
        },
    ),
    "AgentWork": SObjectSchema(
        "AgentWork",
        {
            "Id": "id",
            "WorkItemId": "reference",
            "UserId": "reference",
            "Status": "picklist",
            "ServiceChannelId": "reference",
            "CreatedDate": "datetime",
            "CapacityWeight": "double",
        },
        {
            "User": Relationship("User", "UserId", "User"),
            "ServiceChannel": Relationship("ServiceChannel", "ServiceChannelId", "ServiceChannel"),
        },
    ),
}

ROWS: dict[str, list[dict]] = {
    "User": [
        {
            "Id": U1,
            "Name": "Ada Lovelace",
            "Username": "ada@example.com",
            "IsActive": True,
            "CreatedDate": "2024-01-10T08:00:00.000+0000",
            "HireDay__c": "2023-05-01",
            "Score__c": 9.5,
            "Logins__c": 12,
        },
        {
            "Id": U2,
            "Name": "grace hopper",
            "Username": "grace@example.com",
            "IsActive": True,
            "CreatedDate": "2024-01-31T10:00:00.000+0000",
            "HireDay__c": "2024-01-31",
            "Score__c": 7.25,
            "Logins__c": 3,
        },
        {
            "Id": U3,
            "Name": None,
            "Username": "linus@example.com",
            "IsActive": False,
            "CreatedDate": "2024-02-01T00:30:00.000+0000",
            "HireDay__c": None,
            "Score__c": None,
            "Logins__c": 0,
        },
    ],
    "ServicePresenceStatus": [
        {"Id": S_BUSY, "DeveloperName": "Busy", "MasterLabel": "Busy"},
        {"Id": S_AVAILABLE, "DeveloperName": "Available", "MasterLabel": "Available"},
        {"Id": S_CASES, "DeveloperName": "Available_Cases", "MasterLabel": "Available - Cases"},
    ],
    "ServiceChannel": [
        {"Id": CH_CASE, "DeveloperName": "Cases", "MasterLabel": "Cases", "RelatedEntity": "Case"},
        {"Id": CH_CHAT, "DeveloperName": "Chats", "MasterLabel": "Chats", "RelatedEntity": "Chat"},
    ],
    "UserServicePresence": [
        {
            "Id": "0Hn000000000001AAA",
            "UserId": U1,
            "ServicePresenceStatusId": S_BUSY,
            "IsCurrentState": False,
            "StatusStartDate": "2024-01-31T08:00:00.000+0000",
            "StatusEndDate": "2024-01-31T09:00:00.000+0000",
        },
        {
            "Id": "0Hn000000000002AAA",
            "UserId": U1,
            "ServicePresenceStatusId": S_AVAILABLE,
            "IsCurrentState": True,
            "StatusStartDate": "2024-01-31T09:00:00.000+0000",
            "StatusEndDate": None,
        },
        {
            "Id": "0Hn000000000003AAA",
            "UserId": U2,
            "ServicePresenceStatusId": S_CASES,
            "IsCurrentState": True,
            "StatusStartDate": "2024-01-31T09:30:00.000+0000",
            "StatusEndDate": None,
        },
        {  # a status deleted since: the relationship is null
            "Id": "0Hn000000000004AAA",
            "UserId": U3,
            "ServicePresenceStatusId": "0N5000000000099AAA",
            "IsCurrentState": True,
            "StatusStartDate": "2024-01-30T23:00:00.000+0000",
            "StatusEndDate": None,
        },
    ],
    "AgentWork": [
        {
            "Id": "0Bz000000000001AAA",
            "WorkItemId": "500000000000001AAA",
            "UserId": U1,
            "Status": "Closed",
            "ServiceChannelId": CH_CASE,
            "CreatedDate": "2024-01-31T07:00:00.000+0000",
            "CapacityWeight": 1.0,
        },
        {
            "Id": "0Bz000000000002AAA",
            "WorkItemId": "500000000000002AAA",
            "UserId": U1,
            "Status": "Opened",
            "ServiceChannelId": CH_CASE,
            "CreatedDate": "2024-01-31T09:10:00.000+0000",
            "CapacityWeight": 1.0,
        },
        {
            "Id": "0Bz000000000003AAA",
            "WorkItemId": "570000000000001AAA",
            "UserId": U2,
            "Status": "Assigned",
            "ServiceChannelId": CH_CHAT,
            "CreatedDate": "2024-01-31T09:40:00.000+0000",
            "CapacityWeight": 2.5,
        },
        {
            "Id": "0Bz000000000004AAA",
            "WorkItemId": "00Q000000000001AAA",
            "UserId": None,
            "Status": "Declined",
            "ServiceChannelId": None,
            "CreatedDate": "2024-01-31T09:50:00.000+0000",
            "CapacityWeight": None,
        },
    ],
}

NOW = datetime(2024, 1, 31, 12, 0, tzinfo=UTC)


def attrs(obj: str, record_id: str) -> dict[str, str]:
    return {"type": obj, "url": f"/services/data/v60.0/sobjects/{obj}/{record_id}"}


def run(text: str, now: datetime = NOW) -> QueryResult:
    return execute(parse(text), SCHEMA, ROWS.__getitem__, attrs, now=now)


def ids(text: str, now: datetime = NOW) -> list[str]:
    return [r["Id"] for r in run(text, now).records]


def error(text: str) -> SoqlError:
    with pytest.raises(SoqlError) as info:
        run(text)
    return info.value


# --------------------------------------------------------------------------------------------
# The queries presencesync runs
# --------------------------------------------------------------------------------------------


def test_presence_statuses_ordered_by_label():
    result = run(
        "SELECT Id, DeveloperName, MasterLabel FROM ServicePresenceStatus ORDER BY MasterLabel"
    )
    assert result.total_size == 3
    assert result.records == [
        {
            "attributes": attrs("ServicePresenceStatus", S_AVAILABLE),
            "Id": S_AVAILABLE,
            "DeveloperName": "Available",
            "MasterLabel": "Available",
        },
        {
            "attributes": attrs("ServicePresenceStatus", S_CASES),
            "Id": S_CASES,
            "DeveloperName": "Available_Cases",
            "MasterLabel": "Available - Cases",
        },
        {
            "attributes": attrs("ServicePresenceStatus", S_BUSY),
            "Id": S_BUSY,
            "DeveloperName": "Busy",
            "MasterLabel": "Busy",
        },
    ]


def test_current_presence_of_users_with_relationship_fields():
    result = run(
        "SELECT Id, UserId, User.Name, ServicePresenceStatusId, "
        "ServicePresenceStatus.DeveloperName, IsCurrentState, StatusStartDate "
        "FROM UserServicePresence WHERE IsCurrentState = true AND UserId IN ('005000000000001AAA')"
    )
    assert result == QueryResult(
        total_size=1,
        records=[
            {
                "attributes": attrs("UserServicePresence", "0Hn000000000002AAA"),
                "Id": "0Hn000000000002AAA",
                "UserId": U1,
                "User": {"attributes": attrs("User", U1), "Name": "Ada Lovelace"},
                "ServicePresenceStatusId": S_AVAILABLE,
                "ServicePresenceStatus": {
                    "attributes": attrs("ServicePresenceStatus", S_AVAILABLE),
                    "DeveloperName": "Available",
                },
                "IsCurrentState": True,
                "StatusStartDate": "2024-01-31T09:00:00.000+0000",
            }
        ],
    )


def test_open_agent_work_newest_first():
    result = run(
        "SELECT Id, WorkItemId, UserId, Status, ServiceChannel.DeveloperName FROM AgentWork "
        "WHERE Status IN ('Assigned','Opened') ORDER BY CreatedDate DESC LIMIT 10"
    )
    assert result.total_size == 2
    assert result.records == [
        {
            "attributes": attrs("AgentWork", "0Bz000000000003AAA"),
            "Id": "0Bz000000000003AAA",
            "WorkItemId": "570000000000001AAA",
            "UserId": U2,
            "Status": "Assigned",
            "ServiceChannel": {
                "attributes": attrs("ServiceChannel", CH_CHAT),
                "DeveloperName": "Chats",
            },
        },
        {
            "attributes": attrs("AgentWork", "0Bz000000000002AAA"),
            "Id": "0Bz000000000002AAA",
            "WorkItemId": "500000000000002AAA",
            "UserId": U1,
            "Status": "Opened",
            "ServiceChannel": {
                "attributes": attrs("ServiceChannel", CH_CASE),
                "DeveloperName": "Cases",
            },
        },
    ]


# --------------------------------------------------------------------------------------------
# SELECT, relationships, names
# --------------------------------------------------------------------------------------------


def test_names_and_keywords_are_case_insensitive_results_use_canonical_case():
    result = run(
        "select id, user.name, USER.username from userservicepresence "
        "where iscurrentstate = TRUE and USERID = '005000000000002AAA'"
    )
    assert result.records == [
        {
            "attributes": attrs("UserServicePresence", "0Hn000000000003AAA"),
            "Id": "0Hn000000000003AAA",
            "User": {
                "attributes": attrs("User", U2),
                "Name": "grace hopper",
                "Username": "grace@example.com",
            },
        }
    ]


def test_fields_of_one_relationship_merge_in_select_order():
    [record] = run(
        "SELECT User.Name, Id, User.IsActive FROM AgentWork WHERE Status = 'Assigned'"
    ).records
    assert list(record) == ["attributes", "User", "Id"]
    assert record["User"] == {
        "attributes": attrs("User", U2),
        "Name": "grace hopper",
        "IsActive": True,
    }


def test_null_or_dangling_lookup_gives_null_relationship():
    [work] = run("SELECT Id, User.Name FROM AgentWork WHERE Status = 'Declined'").records
    assert work["User"] is None
    [presence] = run(
        "SELECT Id, ServicePresenceStatus.DeveloperName FROM UserServicePresence "
        "WHERE UserId = '005000000000003AAA'"
    ).records
    assert presence["ServicePresenceStatus"] is None


def test_field_prefixed_by_object_name():
    assert run(
        "SELECT UserServicePresence.Id, UserServicePresence.User.Name FROM UserServicePresence "
        "WHERE UserServicePresence.User.Name = 'grace hopper'"
    ).records == [
        {
            "attributes": attrs("UserServicePresence", "0Hn000000000003AAA"),
            "Id": "0Hn000000000003AAA",
            "User": {"attributes": attrs("User", U2), "Name": "grace hopper"},
        }
    ]


def test_count():
    assert run("SELECT COUNT() FROM AgentWork") == QueryResult(total_size=4, records=[])
    assert run("select count ( ) from AgentWork where Status != 'Closed'").total_size == 3
    assert run("SELECT COUNT() FROM AgentWork LIMIT 2").total_size == 2
    assert run("SELECT COUNT() FROM AgentWork WHERE Status = 'Nope'").total_size == 0


def test_limit_and_offset():
    order = "SELECT Id FROM AgentWork ORDER BY CreatedDate"
    all_ids = ids(order)
    assert ids(order + " LIMIT 2") == all_ids[:2]
    assert ids(order + " LIMIT 2 OFFSET 1") == all_ids[1:3]
    assert ids(order + " OFFSET 3") == all_ids[3:]
    assert run(order + " LIMIT 0").total_size == 0
    assert run(order + " LIMIT 10 OFFSET 10") == QueryResult(0, [])


# --------------------------------------------------------------------------------------------
# WHERE
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Logins__c = 3", [U2]),
        ("Logins__c != 3", [U1, U3]),
        ("Logins__c <> 3", [U1, U3]),
        ("Logins__c < 3", [U3]),
        ("Logins__c <= 3", [U2, U3]),
        ("Logins__c > 3", [U1]),
        ("Logins__c >= 3", [U1, U2]),
        ("Score__c > 7.25", [U1]),
        ("Score__c >= -1", [U1, U2]),
        ("Score__c = 9.50", [U1]),
        ("Name IN ('Ada Lovelace', 'Nobody')", [U1]),
        ("Name NOT IN ('Ada Lovelace')", [U2, U3]),
        ("NOT Name IN ('Ada Lovelace')", [U2, U3]),
        ("IsActive = true", [U1, U2]),
        ("IsActive = FALSE", [U3]),
        ("IsActive != true", [U3]),
        ("Name = 'ADA LOVELACE'", [U1]),
        ("Name < 'b'", [U1]),
        ("Name > 'Ada'", [U1, U2]),
        ("(Logins__c = 3 OR Logins__c = 0) AND IsActive = true", [U2]),
        ("Logins__c = 3 OR (Logins__c = 0 AND IsActive = true)", [U2]),
        ("NOT (Logins__c = 3 OR Logins__c = 0)", [U1]),
        ("NOT Logins__c = 3 AND NOT Logins__c = 0", [U1]),
        ("((Logins__c = 12))", [U1]),
        ("Id = '005000000000001AAA' OR Id = '005000000000002AAA' OR Id = 'x'", [U1, U2]),
    ],
)
def test_where_operators(where, expected):
    assert ids(f"SELECT Id FROM User WHERE {where}") == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Name = null", [U3]),
        ("Name != null", [U1, U2]),
        ("Name = ''", [U3]),  # an empty text value is null in Salesforce
        ("Name != 'Ada Lovelace'", [U2, U3]),  # null is a value: != matches it
        ("Name NOT IN ('Ada Lovelace')", [U2, U3]),
        ("Name IN ('Ada Lovelace', null)", [U1, U3]),
        ("Name < 'zzz'", [U1, U2]),  # ordering never matches null
        ("Score__c < 100", [U1, U2]),
        ("NOT Score__c < 100", [U3]),  # NOT is the exact complement
        ("Name LIKE '%'", [U1, U2]),
        ("NOT Name LIKE '%'", [U3]),
        ("HireDay__c = null", [U3]),
    ],
)
def test_null_semantics(where, expected):
    assert ids(f"SELECT Id FROM User WHERE {where}") == expected


def test_boolean_null_means_false():
    assert ids("SELECT Id FROM User WHERE IsActive = null") == [U3]
    assert ids("SELECT Id FROM User WHERE IsActive != null") == [U1, U2]


def test_relationship_fields_in_where():
    assert ids("SELECT Id FROM UserServicePresence WHERE User.Name = 'Ada Lovelace'") == [
        "0Hn000000000001AAA",
        "0Hn000000000002AAA",
    ]
    # a field of a missing parent is null
    assert ids("SELECT Id FROM AgentWork WHERE ServiceChannel.DeveloperName = null") == [
        "0Bz000000000004AAA"
    ]
    assert ids(
        "SELECT Id FROM AgentWork "
        "WHERE User.IsActive = true AND ServiceChannel.RelatedEntity = 'chat'"
    ) == ["0Bz000000000003AAA"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("'ada%'", [U1]),
        ("'%HOPPER'", [U2]),
        ("'%a%'", [U1, U2]),
        ("'_race hopper'", [U2]),
        ("'grace_hopper'", [U2]),
        ("'grace hopper_'", []),
        ("'Ada Lovelace'", [U1]),
        ("''", []),
        ("'%'", [U1, U2]),
    ],
)
def test_like(pattern, expected):
    assert ids(f"SELECT Id FROM User WHERE Name LIKE {pattern}") == expected


def test_like_escaped_wildcards_are_literal():
    rows = {
        "User": [
            {"Id": "005000000000001AAA", "Name": "100% sure"},
            {"Id": "005000000000002AAA", "Name": "1000 sure"},
            {"Id": "005000000000003AAA", "Name": "snake_case"},
            {"Id": "005000000000004AAA", "Name": "snakeXcase"},
            {"Id": "005000000000005AAA", "Name": "back\\slash"},
        ]
    }

    def like(pattern: str) -> list[str]:
        q = parse(f"SELECT Id FROM User WHERE Name LIKE '{pattern}'")
        return [r["Id"][14] for r in execute(q, SCHEMA, rows.__getitem__, attrs).records]

    assert like("100\\%%") == ["1"]
    assert like("100%") == ["1", "2"]
    assert like("snake\\_case") == ["3"]
    assert like("snake_case") == ["3", "4"]
    assert like("back\\\\slash") == ["5"]


@pytest.mark.timeout(10)
def test_like_does_not_backtrack_catastrophically():
    # a regex of ".*" runs needs minutes for this; the wildcard matcher needs milliseconds
    rows = {"User": [{"Id": U1, "Name": "a" * 5000}]}
    for pattern, hits in [("%a%a%a%b", 0), ("%a" * 100 + "%", 1), ("%" * 5000 + "b", 0)]:
        q = parse(f"SELECT Id FROM User WHERE Name LIKE '{pattern}'")
        assert execute(q, SCHEMA, rows.__getitem__, attrs).total_size == hits


def test_string_escapes():
    q = parse(r"SELECT Id FROM User WHERE Name = 'it\'s \"q\" \\ \n\t\r\b\f \N\T\R\B\F'")
    assert q.where == Comparison(
        FieldPath(("Name",)), "=", StringLit('it\'s "q" \\ \n\t\r\b\f \n\t\r\b\f')
    )
    # outside LIKE, \% and \_ keep their backslash
    assert parse(r"SELECT Id FROM User WHERE Name = '\%\_'").where == Comparison(
        FieldPath(("Name",)), "=", StringLit("\\%\\_")
    )


def test_ids_match_on_their_15_character_form():
    assert ids("SELECT Id FROM User WHERE Id = '005000000000002'") == [U2]
    assert ids("SELECT Id FROM UserServicePresence WHERE UserId IN ('005000000000002')") == [
        "0Hn000000000003AAA"
    ]
    assert ids("SELECT Id FROM AgentWork WHERE Id = '0Bz000000000003aaa'") == ["0Bz000000000003AAA"]
    # the 15-character form is case-sensitive
    assert ids("SELECT Id FROM AgentWork WHERE Id = '0BZ000000000003'") == []


def test_datetime_literals_compare_as_instants():
    q = "SELECT Id FROM User WHERE CreatedDate {}"
    assert ids(q.format("= 2024-01-31T10:00:00Z")) == [U2]
    assert ids(q.format("= 2024-01-31T10:00:00.000Z")) == [U2]
    assert ids(q.format("= 2024-01-31T11:00:00+01:00")) == [U2]
    assert ids(q.format("= 2024-01-31T05:00:00-0500")) == [U2]
    assert ids(q.format("> 2024-01-31T10:00:00Z")) == [U3]
    assert ids(q.format(">= 2024-01-31T10:00:00Z")) == [U2, U3]
    assert ids(q.format("< 2024-01-31T10:00:00Z")) == [U1]
    assert ids(q.format("< 2024-02-01T01:00:00+01:00")) == [U1, U2]


def test_date_literals_on_date_fields():
    q = "SELECT Id FROM User WHERE HireDay__c {}"
    assert ids(q.format("= 2024-01-31")) == [U2]
    assert ids(q.format("< 2024-01-31")) == [U1]
    assert ids(q.format(">= 2023-05-01")) == [U1, U2]
    assert ids(q.format("IN (2023-05-01, 2024-01-31)")) == [U1, U2]


def test_relative_date_literals_use_injected_now():
    q = "SELECT Id FROM User WHERE CreatedDate {}"
    # NOW is 2024-01-31T12:00Z: U2 was created today, U1 on Jan 10, U3 tomorrow
    assert ids(q.format("= TODAY")) == [U2]
    assert ids(q.format("= YESTERDAY")) == []
    assert ids(q.format("= TOMORROW")) == [U3]
    assert ids(q.format("< TODAY")) == [U1]
    assert ids(q.format("<= TODAY")) == [U1, U2]
    assert ids(q.format("> TODAY")) == [U3]
    assert ids(q.format(">= TODAY")) == [U2, U3]
    assert ids(q.format("!= TODAY")) == [U1, U3]
    assert ids(q.format("= LAST_N_DAYS:20")) == [U2]
    assert ids(q.format("= LAST_N_DAYS:21")) == [U1, U2]  # today and the 21 days before
    assert ids(q.format("= last_n_days:0")) == [U2]
    assert ids(q.format("= NEXT_N_DAYS:1")) == [U3]
    assert ids(q.format("= TODAY"), now=NOW + timedelta(days=1)) == [U3]
    assert ids(q.format("= YESTERDAY"), now=NOW + timedelta(days=1)) == [U2]
    # naive now is UTC
    assert ids(q.format("= TODAY"), now=datetime(2024, 1, 10, 23, 0)) == [U1]
    # the day is now's own day: at 20:00 on Jan 31 in UTC-5, U3 (00:30Z Feb 1) is today
    eastern = datetime(2024, 1, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert ids(q.format("= TODAY"), now=eastern) == [U2, U3]
    # date fields
    assert ids("SELECT Id FROM User WHERE HireDay__c = TODAY") == [U2]
    assert ids("SELECT Id FROM User WHERE HireDay__c < LAST_N_DAYS:30") == [U1]


# --------------------------------------------------------------------------------------------
# ORDER BY
# --------------------------------------------------------------------------------------------


def test_order_by_directions_and_nulls():
    assert ids("SELECT Id FROM User ORDER BY Name") == [U3, U1, U2]  # nulls first, ignore case
    assert ids("SELECT Id FROM User ORDER BY Name ASC NULLS LAST") == [U1, U2, U3]
    assert ids("SELECT Id FROM User ORDER BY Name DESC") == [U3, U2, U1]
    assert ids("SELECT Id FROM User ORDER BY Name DESC NULLS LAST") == [U2, U1, U3]
    assert ids("SELECT Id FROM User ORDER BY Score__c DESC NULLS FIRST") == [U3, U1, U2]
    assert ids("SELECT Id FROM User ORDER BY IsActive, Logins__c DESC") == [U3, U1, U2]
    assert ids("SELECT Id FROM User ORDER BY HireDay__c NULLS LAST") == [U1, U2, U3]


def test_order_by_relationship_field_and_several_keys():
    assert ids(
        "SELECT Id FROM UserServicePresence "
        "ORDER BY User.Name DESC NULLS LAST, StatusStartDate DESC"
    ) == ["0Hn000000000003AAA", "0Hn000000000002AAA", "0Hn000000000001AAA", "0Hn000000000004AAA"]


# --------------------------------------------------------------------------------------------
# The AST and render
# --------------------------------------------------------------------------------------------


def test_parse_builds_the_ast():
    q = parse(
        "SELECT Id, User.Name FROM UserServicePresence WHERE (IsCurrentState = true "
        "OR StatusEndDate > 2024-01-31T10:00:00Z) AND NOT UserId NOT IN ('a', null) "
        "AND User.Name LIKE 'a\\_%' AND StatusStartDate >= LAST_N_DAYS:7 "
        "ORDER BY User.Name DESC NULLS LAST, Id LIMIT 5 OFFSET 10"
    )
    assert q == Query(
        sobject="UserServicePresence",
        fields=(FieldPath(("Id",)), FieldPath(("User", "Name"))),
        where=And(
            (
                Or(
                    (
                        Comparison(FieldPath(("IsCurrentState",)), "=", BooleanLit(True)),
                        Comparison(
                            FieldPath(("StatusEndDate",)),
                            ">",
                            DateTimeLit(datetime(2024, 1, 31, 10, tzinfo=UTC)),
                        ),
                    )
                ),
                Not(InList(FieldPath(("UserId",)), (StringLit("a"), NullLit()), negated=True)),
                Like(FieldPath(("User", "Name")), ("a_", Wildcard.ANY)),
                Comparison(FieldPath(("StatusStartDate",)), ">=", DateFunc("LAST_N_DAYS", 7)),
            )
        ),
        order_by=(
            OrderItem(FieldPath(("User", "Name")), descending=True, nulls_first=False),
            OrderItem(FieldPath(("Id",))),
        ),
        limit=5,
        offset=10,
    )
    assert q.text is not None and q.sobject_pos == 26  # 0-based offset in q.text


def test_literals():
    def value(text: str):
        return parse(f"SELECT Id FROM X WHERE F = {text}").where.value

    assert value("42") == NumberLit(Decimal(42))
    assert value("-1.50") == NumberLit(Decimal("-1.50"))
    assert value("+.5") == NumberLit(Decimal("0.5"))
    assert value("True") == BooleanLit(True)
    assert value("NULL") == NullLit()
    assert value("2024-02-29") == DateLit(date(2024, 2, 29))
    assert value("2024-01-31T10:00:00.123+05:30") == DateTimeLit(
        datetime(2024, 1, 31, 10, 0, 0, 123000, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    )
    assert value("today") == DateFunc("TODAY")
    assert value("Yesterday") == DateFunc("YESTERDAY")
    assert value("LAST_N_DAYS : 30") == DateFunc("LAST_N_DAYS", 30)


def test_render_is_canonical():
    q = parse(
        "select id,user.name from usp where not (a<>'x' or b in (1,2.50)) and c like '50\\%_' "
        "and d = 2024-01-31T10:00:00-02:30 order by a asc, b desc nulls first limit 1 offset 2"
    )
    assert render(q) == (
        "SELECT id, user.name FROM usp WHERE NOT (a != 'x' OR b IN (1, 2.50)) "
        "AND c LIKE '50\\%_' AND d = 2024-01-31T10:00:00-02:30 "
        "ORDER BY a, b DESC NULLS FIRST LIMIT 1 OFFSET 2"
    )
    assert parse(render(q)) == q
    assert render(parse("SELECT COUNT() FROM X")) == "SELECT COUNT() FROM X"
    assert (
        render(
            Query(
                "X",
                (FieldPath(("Name",)),),
                where=Comparison(FieldPath(("Name",)), "=", StringLit("it's\n\\")),
            )
        )
        == "SELECT Name FROM X WHERE Name = 'it\\'s\\n\\\\'"
    )


def test_nested_conditions_render_with_parentheses():
    q = parse("SELECT Id FROM X WHERE (a = 1 AND b = 2) AND (c = 3 OR NOT (d = 4 AND e = 5))")
    assert (
        render(q) == "SELECT Id FROM X WHERE (a = 1 AND b = 2) AND (c = 3 OR NOT (d = 4 AND e = 5))"
    )
    assert parse(render(q)) == q


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_malformed_query_message_layout():
    e = error("SELECT Id FORM User")
    assert e.error_code == "MALFORMED_QUERY"
    assert e.message == (
        "\nSELECT Id FORM User\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FORM'"
    )
    assert e.detail == "unexpected token: 'FORM'"
    assert (e.row, e.column) == (1, 11)
    assert isinstance(e, Exception)
    assert str(e).startswith("MALFORMED_QUERY: ")


def test_error_position_on_later_lines():
    e = error("SELECT Id\nFROM User\nWHERE Name = = 'x'")
    assert (e.row, e.column) == (3, 14)
    assert (
        e.message
        == "\nWHERE Name = = 'x'\n             ^\nERROR at Row:3:Column:14\nunexpected token: '='"
    )


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("", "unexpected token: '<EOF>'"),
        ("SELECT", "unexpected token: '<EOF>'"),
        ("SELECT FROM User", "unexpected token: 'FROM'"),
        ("SELECT Id, FROM User", "unexpected token: 'FROM'"),
        ("SELECT Id FROM", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM User WHERE", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM User WHERE Name", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM User WHERE Name = ", "unexpected token: '<EOF>'"),
        ('SELECT Id FROM User WHERE Name = "x"', "unexpected token: '\"'"),
        ("SELECT Id FROM User WHERE Name = Ada", "unexpected token: 'Ada'"),
        ("SELECT Id FROM User WHERE Name == 'x'", "unexpected token: '='"),
        ("SELECT Id FROM User WHERE Name = 'x' AND", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM User WHERE a = 1 AND b = 2 OR c = 3", "unexpected token: 'OR'"),
        ("SELECT Id FROM User WHERE a = 1 OR b = 2 AND c = 3", "unexpected token: 'AND'"),
        ("SELECT Id FROM User WHERE NOT NOT a = 1", "unexpected token: 'NOT'"),
        ("SELECT Id FROM User WHERE (a = 1", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM User WHERE a = 1)", "unexpected token: ')'"),
        ("SELECT Id FROM User WHERE a IN ()", "unexpected token: ')'"),
        ("SELECT Id FROM User WHERE a IN 'x'", "unexpected token: ''x''"),
        ("SELECT Id FROM User WHERE a NOT LIKE 'x'", "unexpected token: 'LIKE'"),
        ("SELECT Id FROM User WHERE a LIKE 5", "unexpected token: '5'"),
        ("SELECT Id FROM User WHERE a = LAST_N_DAYS", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM User WHERE a = LAST_N_DAYS:-1", "unexpected token: '-1'"),
        ("SELECT Id FROM User WHERE a = LAST_WEEK", "unexpected token: 'LAST_WEEK'"),
        ("SELECT Id FROM User WHERE a = 'abc", "unexpected token: '<EOF>' (unterminated string)"),
        ("SELECT Id FROM User WHERE a = 2024-02-30", "invalid date: '2024-02-30'"),
        (
            "SELECT Id FROM User WHERE a = 2024-01-31T25:00:00Z",
            "invalid datetime: '2024-01-31T25:00:00Z'",
        ),
        ("SELECT Id FROM User WHERE a = 2024-01-31T10:00:00", "unexpected token: 'T10'"),
        (
            "SELECT Id FROM User WHERE a = 'x\\q'",
            "Invalid string literal 'x\\q'. Illegal character sequence '\\q' in string literal.",
        ),
        ("SELECT Id FROM User ORDER Name", "unexpected token: 'Name'"),
        ("SELECT Id FROM User ORDER BY Name NULLS", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM User LIMIT", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM User LIMIT -1", "unexpected token: '-1'"),
        ("SELECT Id FROM User LIMIT 1.5", "unexpected token: '1.5'"),
        ("SELECT Id FROM User LIMIT 2147483648", "LIMIT must not be greater than 2147483647"),
        ("SELECT Id FROM User OFFSET 1 LIMIT 1", "unexpected token: 'LIMIT'"),
        ("SELECT Id FROM User;", "unexpected token: ';'"),
        ("SELECT Id FROM User GROUP BY Id", "unexpected token: 'GROUP'"),
        ("SELECT Id, COUNT() FROM User", "unexpected token: '('"),
        ("SELECT COUNT(), Id FROM User", "unexpected token: ','"),
        ("SELECT COUNT(Id) FROM User", "unexpected token: 'Id'"),
        ("SELECT User. FROM X", "unexpected token: 'FROM'"),
        (
            "SELECT Id FROM User WHERE " + "(" * 40 + "a = 1" + ")" * 40,
            "too many nested parentheses",
        ),
    ],
)
def test_malformed_query(text, detail):
    with pytest.raises(SoqlError) as info:
        parse(text)
    assert info.value.error_code == "MALFORMED_QUERY"
    assert info.value.detail == detail


def test_duplicate_field_is_malformed():
    e = error("SELECT Id, User.Name, id FROM UserServicePresence")
    assert (e.error_code, e.detail) == ("MALFORMED_QUERY", "duplicate field selected: Id")
    e = error("SELECT User.Name, UserServicePresence.user.name FROM UserServicePresence")
    assert (e.error_code, e.detail) == ("MALFORMED_QUERY", "duplicate field selected: User.Name")


def test_unknown_object_is_invalid_type():
    e = error("SELECT Id FROM Foo")
    assert e.error_code == "INVALID_TYPE"
    assert e.message == (
        "\nSELECT Id FROM Foo\n               ^\nERROR at Row:1:Column:16\n"
        "sObject type 'Foo' is not supported. If you are attempting to use a custom object, be "
        "sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names."
    )


@pytest.mark.parametrize(
    ("text", "column", "detail_start"),
    [
        ("SELECT Id, Foo FROM User", 12, "No such column 'Foo' on entity 'User'. If you are"),
        ("SELECT Id FROM User WHERE Foo = 1", 27, "No such column 'Foo' on entity 'User'."),
        ("SELECT Id FROM User ORDER BY Foo", 30, "No such column 'Foo' on entity 'User'."),
        ("SELECT User.Foo FROM AgentWork", 8, "No such column 'Foo' on entity 'User'."),
        ("SELECT User FROM AgentWork", 8, "No such column 'User' on entity 'AgentWork'."),
        (
            "SELECT Foo.Name FROM AgentWork",
            8,
            "Didn't understand relationship 'Foo' in field path.",
        ),
        (
            "SELECT Id FROM AgentWork WHERE Owner.Name = 'x'",
            32,
            "Didn't understand relationship 'Owner'",
        ),
        ("SELECT User.Name.Foo FROM AgentWork", 8, "Didn't understand relationship 'Name'"),
    ],
)
def test_unknown_field_is_invalid_field(text, column, detail_start):
    e = error(text)
    assert e.error_code == "INVALID_FIELD"
    assert e.column == column
    assert e.detail.startswith(detail_start)


@pytest.mark.parametrize(
    ("where", "detail"),
    [
        (
            "IsActive = 'true'",
            "value of filter criterion for field 'IsActive' must be of type boolean and should "
            "not be enclosed in quotes",
        ),
        (
            "CreatedDate > '2024-01-01'",
            "value of filter criterion for field 'CreatedDate' must be of type dateTime and "
            "should not be enclosed in quotes",
        ),
        (
            "CreatedDate > 2024-01-01",
            "value of filter criterion for field 'CreatedDate' must be of type dateTime and "
            "should not be enclosed in quotes",
        ),
        (
            "HireDay__c > 2024-01-01T00:00:00Z",
            "value of filter criterion for field 'HireDay__c' must be of type date and should "
            "not be enclosed in quotes",
        ),
        (
            "Name = 5",
            "value of filter criterion for field 'Name' must be of type string and should be "
            "enclosed in quotes",
        ),
        (
            "Name IN ('a', true)",
            "value of filter criterion for field 'Name' must be of type string and should be "
            "enclosed in quotes",
        ),
        (
            "Id = TODAY",
            "value of filter criterion for field 'Id' must be of type id and should be "
            "enclosed in quotes",
        ),
        (
            "Logins__c = '3'",
            "value of filter criterion for field 'Logins__c' must be of type integer and should "
            "not be enclosed in quotes",
        ),
        (
            "Score__c = '3'",
            "value of filter criterion for field 'Score__c' must be of type double and should "
            "not be enclosed in quotes",
        ),
        ("IsActive < true", "invalid operator on boolean field"),
        ("IsActive LIKE 'x'", "invalid operator on boolean field"),
        ("Logins__c LIKE '1%'", "invalid operator on int field"),
        ("Id LIKE '005%'", "invalid operator on id field"),
    ],
)
def test_ill_typed_filters_are_invalid_field(where, detail):
    e = error(f"SELECT Id FROM User WHERE {where}")
    assert (e.error_code, e.detail) == ("INVALID_FIELD", detail)


def test_programmatic_query_errors_have_no_caret():
    with pytest.raises(SoqlError) as info:
        execute(Query("Foo", (FieldPath(("Id",)),)), SCHEMA, ROWS.__getitem__, attrs)
    assert info.value.message == info.value.detail
    assert info.value.message.startswith("sObject type 'Foo' is not supported.")
    assert info.value.row is None


def test_rows_are_read_once_per_object():
    calls: list[str] = []

    def rows(obj: str):
        calls.append(obj)
        return ROWS[obj]

    execute(
        parse("SELECT Id, User.Name, User.Username FROM AgentWork WHERE User.IsActive = true"),
        SCHEMA,
        rows,
        attrs,
    )
    assert sorted(calls) == ["AgentWork", "User"]
