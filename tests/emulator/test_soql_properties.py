"""Property tests of the emulator's SOQL subset: render/parse round trip, fuzzing (nothing but
SoqlError ever escapes), and evaluation laws (OR is union, NOT is complement, ORDER BY sorts,
LIMIT/OFFSET slice, leaf comparisons agree with a reference oracle)."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presencesync_emulator.soql import (
    RESERVED,
    And,
    BooleanLit,
    Comparison,
    Condition,
    DateFunc,
    DateLit,
    DateTimeLit,
    FieldPath,
    InList,
    Like,
    Literal,
    Not,
    NullLit,
    NumberLit,
    Or,
    OrderItem,
    Query,
    Relationship,
    SObjectSchema,
    SoqlError,
    StringLit,
    Wildcard,
    execute,
    parse,
    render,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------------------------
# (1) random ASTs: render -> parse gives the same AST
# --------------------------------------------------------------------------------------------

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
names = (
    st.tuples(st.sampled_from(LETTERS), st.text(LETTERS + "0123456789_", max_size=8))
    .map("".join)
    .filter(lambda s: s.upper() not in RESERVED)
)
paths = st.lists(names, min_size=1, max_size=3).map(lambda parts: FieldPath(tuple(parts)))
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
literals: st.SearchStrategy[Literal] = st.one_of(
    st.text().map(StringLit),
    st.integers(-(10**20), 10**20).map(lambda i: NumberLit(Decimal(i))),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(NumberLit),
    st.booleans().map(BooleanLit),
    st.just(NullLit()),
    st.dates().map(DateLit),
    st.datetimes(timezones=offsets).map(DateTimeLit),
    st.sampled_from(["TODAY", "YESTERDAY", "TOMORROW"]).map(DateFunc),
    st.builds(DateFunc, st.sampled_from(["LAST_N_DAYS", "NEXT_N_DAYS"]), st.integers(0, 2**31 - 1)),
)


def canonical_like(items: list[str | Wildcard]) -> tuple[str | Wildcard, ...]:
    out: list[str | Wildcard] = []
    for item in items:
        if isinstance(item, str) and out and isinstance(out[-1], str):
            out[-1] += item
        else:
            out.append(item)
    return tuple(out)


like_patterns = st.lists(
    st.one_of(st.text(min_size=1), st.sampled_from(list(Wildcard))), max_size=5
).map(canonical_like)

field_exprs = st.one_of(
    st.builds(Comparison, paths, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), literals),
    st.builds(InList, paths, st.lists(literals, min_size=1, max_size=4).map(tuple), st.booleans()),
    st.builds(Like, paths, like_patterns),
)


def compound(children: st.SearchStrategy[Condition]) -> st.SearchStrategy[Condition]:
    many = st.lists(children, min_size=2, max_size=4).map(tuple)
    return st.one_of(children.map(Not), many.map(And), many.map(Or))


conditions = st.recursive(field_exprs, compound, max_leaves=10)
order_items = st.builds(OrderItem, paths, st.booleans(), st.sampled_from([None, True, False]))
limits = st.none() | st.integers(0, 2**31 - 1)


@st.composite
def queries(draw: st.DrawFn) -> Query:
    count = draw(st.booleans())
    return Query(
        sobject=draw(names),
        fields=() if count else tuple(draw(st.lists(paths, min_size=1, max_size=5))),
        count=count,
        where=draw(st.none() | conditions),
        order_by=tuple(draw(st.lists(order_items, max_size=3))),
        limit=draw(limits),
        offset=draw(limits),
    )


@SETTINGS
@given(queries())
def test_render_then_parse_round_trips(query):
    text = render(query)
    assert parse(text) == query
    assert render(parse(text)) == text


# --------------------------------------------------------------------------------------------
# (2) fuzzing: parse succeeds or raises MALFORMED_QUERY; execute raises only SoqlError
# --------------------------------------------------------------------------------------------

USER = SObjectSchema("User", {"Id": "id", "Name": "string", "IsActive": "boolean"})
WIDGET = SObjectSchema(
    "Widget",
    {
        "Id": "id",
        "Name": "string",
        "Color": "picklist",
        "Size": "int",
        "Weight": "double",
        "Active": "boolean",
        "Day": "date",
        "Stamp": "datetime",
        "OwnerId": "reference",
    },
    {"Owner": Relationship("Owner", "OwnerId", "User")},
)
SCHEMA = {"User": USER, "Widget": WIDGET}
OWNERS = [
    {"Id": "005000000000001AAA", "Name": "Ada", "IsActive": True},
    {"Id": "005000000000002AAA", "Name": "bob", "IsActive": False},
    {"Id": "005000000000003AAA", "Name": None, "IsActive": True},
]
NOW = datetime(2024, 1, 31, 12, 0, tzinfo=UTC)


def attrs(obj: str, record_id: str) -> dict[str, str]:
    return {"type": obj, "url": f"/services/data/v60.0/sobjects/{obj}/{record_id}"}


SEED_QUERIES = [
    "SELECT Id, DeveloperName, MasterLabel FROM ServicePresenceStatus ORDER BY MasterLabel",
    "SELECT Id, UserId, User.Name, ServicePresenceStatusId, ServicePresenceStatus.DeveloperName, "
    "IsCurrentState, StatusStartDate FROM UserServicePresence WHERE IsCurrentState = true AND "
    "UserId IN ('005000000000001AAA')",
    "SELECT Id, WorkItemId, UserId, Status, ServiceChannel.DeveloperName FROM AgentWork "
    "WHERE Status IN ('Assigned','Opened') ORDER BY CreatedDate DESC LIMIT 10",
    "SELECT Id, Name, Owner.Name FROM Widget WHERE (Size > 3 OR NOT Color LIKE 'r_d%') AND "
    "Stamp >= LAST_N_DAYS:7 ORDER BY Weight DESC NULLS LAST, Name LIMIT 5 OFFSET 1",
    "SELECT COUNT() FROM Widget WHERE Day < 2024-01-31 AND Stamp != 2024-01-31T10:00:00.000+01:00",
    "select id from widget where owner.name not in ('Ada', null) and active = false and "
    "weight <> -1.5 and name = 'it\\'s \\\\ \\n'",
]
VOCABULARY = [
    *("SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC"),
    *("DESC", "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "COUNT", "GROUP", "null", "true"),
    *("(", ")", ",", ".", ":", "=", "!=", "<>", "<", "<=", ">", ">=", "!", "-", "+", "'"),
    *("'x'", "'%'", "'\\", "\\", '"', "#", ";", "5", "-1", "1.5", ".5", "99999999999"),
    *("TODAY", "LAST_N_DAYS", "LAST_N_DAYS:3", "2024-01-31", "2024-02-30", "T10:00:00Z"),
    *("2024-01-31T10:00:00Z", "2024-01-31T10:00:00+99:00", "Widget", "Owner", "Name", "Id"),
    *("Size", "Stamp", "Day", "Active", "Foo", "Owner.Name", "\n", "\x00", "é", "𝔘"),
]
TOKEN_RE = re.compile(r"'(?:\\.|[^'\\])*'|[(),]|[^\s(),]+")


@st.composite
def mutated_queries(draw: st.DrawFn) -> str:
    tokens = TOKEN_RE.findall(draw(st.sampled_from(SEED_QUERIES)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "swap", "replace", "duplicate"]))
        i = draw(st.integers(0, max(0, len(tokens) - 1)))
        if op == "delete" and tokens:
            del tokens[i]
        elif op == "insert":
            tokens.insert(i, draw(st.sampled_from(VOCABULARY)))
        elif op == "swap" and tokens:
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == "replace" and tokens:
            tokens[i] = draw(st.sampled_from(VOCABULARY))
        elif op == "duplicate" and tokens:
            tokens.insert(i, tokens[i])
    return draw(st.sampled_from([" ", "", "\n", "  "])).join(tokens)


soql_alphabet = st.sampled_from(list("SELCTFROMWHEANDINKBYsqlxyz_.,()'\\%=<>!:-+0123456789 TZ\n\""))
# date, datetime and number shapes, valid or not (month 13, hour 25, offset +99:00, ...)
literal_shapes = st.one_of(
    st.from_regex(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,7})?(Z|[+-][0-9]{2}:?[0-9]{2})?)?",
        fullmatch=True,
    ),
    st.from_regex(
        r"[+-]?[0-9]{1,5}(-[0-9]{1,3}(-[0-9]{1,3}(T[0-9:.Z+-]{0,20})?)?)?", fullmatch=True
    ),
)
fuzz_texts = st.one_of(
    literal_shapes.map(lambda v: f"SELECT Id FROM Widget WHERE Stamp > {v} OR Day = {v}"),
    literal_shapes.map(lambda v: f"SELECT Id FROM Widget LIMIT {v}"),
    st.text(),
    st.text(soql_alphabet),
    mutated_queries(),
    st.tuples(st.sampled_from(SEED_QUERIES), st.text()).map("".join),
    st.integers(0, 2000).map(lambda n: "SELECT Id FROM Widget WHERE " + "(" * n + "Size = 1"),
)


def check_anything_goes(text: str) -> None:
    try:
        query = parse(text)
    except SoqlError as e:
        assert e.error_code == "MALFORMED_QUERY"
        assert isinstance(e.message, str) and e.message
        return
    assert parse(render(query)) == query
    try:
        result = execute(query, SCHEMA, ROWS_BY_OBJECT.__getitem__, attrs, now=NOW)
    except SoqlError as e:
        assert e.error_code in ("MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE")
        return
    if query.count:
        assert result.records == []
    else:
        assert result.total_size == len(result.records)


@SETTINGS
@given(fuzz_texts)
def test_fuzzed_text_only_ever_raises_soql_error(text):
    check_anything_goes(text)


def test_fuzz_seeds_are_valid():
    for text in SEED_QUERIES:
        parse(text)


def test_pathological_inputs():
    for text in [
        "SELECT Id FROM Widget WHERE " + "(" * 100_000,
        "SELECT Id FROM Widget WHERE " + "NOT " * 10_000 + "Size = 1",
        "SELECT Id FROM Widget WHERE Size = " + "9" * 100_000,
        "SELECT Id FROM Widget LIMIT " + "9" * 100_000,
        "SELECT Id FROM Widget WHERE Stamp = LAST_N_DAYS:2147483647",
        "SELECT Id FROM Widget WHERE Stamp = NEXT_N_DAYS:2147483647",
        "SELECT Id FROM Widget WHERE Stamp > 0001-01-01T00:00:00+14:00",
        "SELECT Id FROM Widget WHERE Stamp < 9999-12-31T23:59:59-14:00 ORDER BY Stamp",
        "SELECT Id FROM Widget WHERE Day = 0000-01-01",
        "SELECT Id FROM Widget WHERE Name = '" + "\\" * 10_001 + "'",
        "SELECT " + ", ".join(["Owner.Name"] * 1000) + " FROM Widget",
        "\x00",
        "SELECT Id FROM Widget WHERE Name = '\ud800'",
    ]:
        check_anything_goes(text)
    for now in (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)):
        for literal in ("TODAY", "YESTERDAY", "TOMORROW", "LAST_N_DAYS:5", "NEXT_N_DAYS:5"):
            for op in ("=", "<", ">", "<=", ">="):
                execute(
                    parse(
                        f"SELECT Id FROM Widget WHERE Stamp {op} {literal} OR Day {op} {literal}"
                    ),
                    SCHEMA,
                    ROWS_BY_OBJECT.__getitem__,
                    attrs,
                    now=now,
                )


# --------------------------------------------------------------------------------------------
# (3) evaluation laws over random rows and random well-typed conditions
# --------------------------------------------------------------------------------------------

NAMES = [None, "", "Ada", "ada", "Bob", "b_b", "100%", "Zed"]
COLORS = [None, "red", "Red", "green", "blue"]
SIZES = [None, -1, 0, 3, 7]
WEIGHTS = [None, -1.5, 0.0, 2.25, 10.0]
DAYS = [None, date(2024, 1, 29), date(2024, 1, 30), date(2024, 1, 31), date(2024, 2, 1)]
STAMPS = [
    None,
    datetime(2024, 1, 24, 23, 59, tzinfo=UTC),
    datetime(2024, 1, 30, 12, 0, tzinfo=UTC),
    datetime(2024, 1, 31, 0, 0, tzinfo=UTC),
    datetime(2024, 1, 31, 11, 0, tzinfo=UTC),
    datetime(2024, 2, 1, 0, 0, tzinfo=UTC),
]
OWNER_IDS = [None, "005000000000001AAA", "005000000000002AAA", "005000000000003", "005x"]


def sf_datetime(v: datetime | None) -> str | None:
    return None if v is None else v.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


ROW_POOLS = {
    "Name": NAMES,
    "Color": COLORS,
    "Size": SIZES,
    "Weight": WEIGHTS,
    "Active": [False, True],
    "Day": [None if d is None else d.isoformat() for d in DAYS],
    "Stamp": [sf_datetime(s) for s in STAMPS],
    "OwnerId": OWNER_IDS,
}
ROW_CHOICES = 1
for _pool in ROW_POOLS.values():
    ROW_CHOICES *= len(_pool)


def widget_row(i: int, choice: int) -> dict[str, Any]:
    """Row ``i`` with the field values picked by ``choice`` (one number: cheap to generate)."""
    row: dict[str, Any] = {"Id": f"a00{i:012d}AAA"}
    for name, pool in ROW_POOLS.items():
        choice, pick = divmod(choice, len(pool))
        row[name] = pool[pick]
    return row


widget_rows = st.lists(st.integers(0, ROW_CHOICES - 1), max_size=12).map(
    lambda choices: [widget_row(i, c) for i, c in enumerate(choices)]
)


# a fixed table for the fuzz test: every pooled value appears
ROWS_BY_OBJECT: dict[str, list[dict[str, Any]]] = {
    "User": OWNERS,
    "Widget": [widget_row(i, i * 7919 % ROW_CHOICES) for i in range(40)],
}

# field -> (kind, literal strategy)
text_lits = st.sampled_from([*NAMES[1:], "zz"]).map(StringLit) | st.just(NullLit())
date_funcs = st.sampled_from(["TODAY", "YESTERDAY", "TOMORROW"]).map(DateFunc) | st.builds(
    DateFunc, st.sampled_from(["LAST_N_DAYS", "NEXT_N_DAYS"]), st.integers(0, 8)
)
FIELDS = {
    "Name": ("text", text_lits),
    "Color": ("text", st.sampled_from([*COLORS[1:], "RED"]).map(StringLit)),
    "Owner.Name": ("text", text_lits),
    "Size": ("number", st.sampled_from([-1, 0, 2, 3, 7]).map(lambda v: NumberLit(Decimal(v)))),
    "Weight": (
        "number",
        st.sampled_from(["-1.5", "0", "2.25", "2.250", "11"]).map(lambda v: NumberLit(Decimal(v))),
    ),
    "Active": ("boolean", st.booleans().map(BooleanLit) | st.just(NullLit())),
    "Owner.IsActive": ("boolean", st.booleans().map(BooleanLit)),
    "Day": ("date", st.sampled_from(DAYS[1:]).map(DateLit) | date_funcs | st.just(NullLit())),
    "Stamp": (
        "datetime",
        st.sampled_from(STAMPS[1:]).map(DateTimeLit)
        | st.datetimes(
            min_value=datetime(2024, 1, 28), max_value=datetime(2024, 2, 3), timezones=offsets
        ).map(DateTimeLit)
        | date_funcs,
    ),
    "OwnerId": (
        "id",
        st.sampled_from([*OWNER_IDS[1:], "005000000000001", "005000000000001aaa"]).map(StringLit),
    ),
}


@st.composite
def leaf_conditions(draw: st.DrawFn) -> Condition:
    name = draw(st.sampled_from(sorted(FIELDS)))
    kind, lits = FIELDS[name]
    path = FieldPath(tuple(name.split(".")))
    ops = ["=", "!="] if kind == "boolean" else ["=", "!=", "<", "<=", ">", ">="]
    choice = draw(st.sampled_from(["cmp", "in", "like"] if kind == "text" else ["cmp", "in"]))
    if choice == "cmp":
        return Comparison(path, draw(st.sampled_from(ops)), draw(lits))
    if choice == "in":
        values = tuple(draw(st.lists(lits, min_size=1, max_size=3)))
        return InList(path, values, draw(st.booleans()))
    return Like(path, draw(like_patterns_small))


like_patterns_small = st.lists(
    st.sampled_from(["a", "b", "d", "%", "_", "0", "r", "ed"]).map(
        lambda s: Wildcard(s) if s in "%_" else s
    ),
    max_size=4,
).map(canonical_like)
well_typed = st.recursive(leaf_conditions(), compound, max_leaves=6)


def widget_query(where: Condition | None = None, **kw: Any) -> Query:
    return Query("Widget", (FieldPath(("Id",)),), where=where, **kw)


def run_ids(rows: list[dict[str, Any]], query: Query, now: datetime = NOW) -> list[str]:
    data = {"User": OWNERS, "Widget": rows}
    return [r["Id"] for r in execute(query, SCHEMA, data.__getitem__, attrs, now=now).records]


@SETTINGS
@given(widget_rows, well_typed, well_typed)
def test_or_is_union_and_is_intersection(rows, a, b):
    all_ids = run_ids(rows, widget_query())
    in_a = set(run_ids(rows, widget_query(a)))
    in_b = set(run_ids(rows, widget_query(b)))
    assert run_ids(rows, widget_query(Or((a, b)))) == [i for i in all_ids if i in in_a | in_b]
    assert run_ids(rows, widget_query(And((a, b)))) == [i for i in all_ids if i in in_a & in_b]


@SETTINGS
@given(widget_rows, well_typed)
def test_not_is_complement(rows, a):
    all_ids = run_ids(rows, widget_query())
    in_a = set(run_ids(rows, widget_query(a)))
    assert run_ids(rows, widget_query(Not(a))) == [i for i in all_ids if i not in in_a]


# A reference oracle for single comparisons, written from the documented semantics.


def oracle_value(kind: str, v: Any) -> Any:
    if kind == "text":
        return v.casefold() if v else None
    if kind == "id":
        return None if v is None else (v[:15] if len(v) == 18 else v)
    if kind == "number":
        return None if v is None else Decimal(str(v))
    if kind == "boolean":
        return bool(v)
    if kind == "date":
        return None if v is None else date.fromisoformat(v)
    return None if v is None else datetime.strptime(v, "%Y-%m-%dT%H:%M:%S.000%z")


def oracle_field(row: dict[str, Any], name: str) -> Any:
    if name.startswith("Owner."):
        ref = row["OwnerId"]
        owner = next(
            (o for o in OWNERS if ref is not None and o["Id"][:15] == ref[:15]),
            None,
        )
        return None if owner is None else owner[name.split(".")[1]]
    return row[name]


def oracle_literal(kind: str, lit: Literal, now: datetime) -> Any:
    if isinstance(lit, NullLit):
        return False if kind == "boolean" else None
    if isinstance(lit, DateFunc):
        today = now.date()
        n = lit.n or 0
        lo, hi = {
            "TODAY": (0, 1),
            "YESTERDAY": (-1, 0),
            "TOMORROW": (1, 2),
            "LAST_N_DAYS": (-n, 1),
            "NEXT_N_DAYS": (1, n + 1),
        }[lit.name]
        bounds = (today + timedelta(days=lo), today + timedelta(days=hi))
        if kind == "datetime":
            return tuple(datetime.combine(d, datetime.min.time(), tzinfo=UTC) for d in bounds)
        return bounds
    if kind == "text":
        return lit.value.casefold() or None
    if kind == "id":
        return lit.value[:15] if len(lit.value) == 18 else lit.value
    return lit.value


def oracle_compare(kind: str, v: Any, op: str, lit: Literal, now: datetime) -> bool:
    x = oracle_literal(kind, lit, now)
    if isinstance(lit, DateFunc):
        lo, hi = x
        inside = v is not None and lo <= v < hi
        return {
            "=": inside,
            "!=": not inside,
            "<": v is not None and v < lo,
            "<=": v is not None and v < hi,
            ">": v is not None and v >= hi,
            ">=": v is not None and v >= lo,
        }[op]
    if op == "=":
        return v == x
    if op == "!=":
        return v != x
    if v is None or x is None:
        return False
    return {"<": v < x, "<=": v <= x, ">": v > x, ">=": v >= x}[op]


def oracle_like(value: str | None, pattern: tuple[str | Wildcard, ...]) -> bool:
    """Wildcard matching by dynamic programming over (value, pattern) positions."""
    if value is None:
        return False
    items: list[str | Wildcard] = []
    for part in pattern:
        items.extend(part.casefold() if isinstance(part, str) else [part])
    # reachable[j]: the first i characters of value can match the first j pattern items
    reachable = [True] + [False] * len(items)
    for j, item in enumerate(items):
        reachable[j + 1] = reachable[j] and item is Wildcard.ANY
    for ch in value:
        row = [False] * (len(items) + 1)
        for j, item in enumerate(items):
            if item is Wildcard.ANY:
                row[j + 1] = row[j] or reachable[j + 1]
            elif item is Wildcard.ONE or item == ch:
                row[j + 1] = reachable[j]
        reachable = row
    return reachable[-1]


like_values = st.text("abAB_%", max_size=6)


@SETTINGS
@given(
    st.lists(like_values, max_size=8),
    st.lists(st.sampled_from(["a", "B", "_", "%", "ab", *Wildcard]), max_size=5).map(
        canonical_like
    ),
)
def test_like_agrees_with_oracle(names, pattern):
    rows = [{"Id": f"a00{i:012d}AAA", "Name": name} for i, name in enumerate(names)]
    expected = [r["Id"] for r in rows if oracle_like(oracle_value("text", r["Name"]), pattern)]
    assert run_ids(rows, widget_query(Like(FieldPath(("Name",)), pattern))) == expected


@SETTINGS
@given(widget_rows, leaf_conditions(), st.sampled_from([NOW, NOW + timedelta(hours=13)]))
def test_leaf_conditions_agree_with_oracle(rows, cond, now):
    name = ".".join(cond.field.parts)
    kind = FIELDS[name][0]
    expected = []
    for row in rows:
        v = oracle_value(kind, oracle_field(row, name))
        if isinstance(cond, Like):
            hit = oracle_like(v, cond.pattern)
        elif isinstance(cond, Comparison):
            hit = oracle_compare(kind, v, cond.op, cond.value, now)
        else:
            hit = any(oracle_compare(kind, v, "=", lit, now) for lit in cond.values)
            hit = hit != cond.negated
        if hit:
            expected.append(row["Id"])
    assert run_ids(rows, widget_query(cond), now) == expected


@SETTINGS
@given(
    widget_rows,
    st.lists(
        st.builds(
            OrderItem,
            st.sampled_from(["Name", "Size", "Weight", "Active", "Day", "Stamp", "Owner.Name"]).map(
                lambda n: FieldPath(tuple(n.split(".")))
            ),
            st.booleans(),
            st.sampled_from([None, True, False]),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_order_by_sorts(rows, order):
    result = run_ids(rows, widget_query(order_by=tuple(order)))
    assert sorted(result) == sorted(r["Id"] for r in rows)
    by_id = {r["Id"]: r for r in rows}
    kinds = {"Name": "text", "Owner.Name": "text", "Size": "number", "Weight": "number"}
    kinds |= {"Active": "boolean", "Day": "date", "Stamp": "datetime"}

    def in_order(a: dict[str, Any], b: dict[str, Any]) -> bool:
        for item in order:
            name = ".".join(item.field.parts)
            va = oracle_value(kinds[name], oracle_field(a, name))
            vb = oracle_value(kinds[name], oracle_field(b, name))
            nulls_first = item.nulls_first is not False
            if va == vb:
                continue
            if va is None or vb is None:
                return (va is None) == nulls_first
            return va > vb if item.descending else va < vb
        return True

    for first, second in itertools.pairwise(result):
        assert in_order(by_id[first], by_id[second])


@SETTINGS
@given(
    widget_rows,
    st.none() | well_typed,
    st.none() | st.integers(0, 15),
    st.none() | st.integers(0, 15),
)
def test_limit_and_offset_slice_the_unsliced_result(rows, where, limit, offset):
    order = (OrderItem(FieldPath(("Stamp",)), descending=True),)
    full = run_ids(rows, widget_query(where, order_by=order))
    sliced = run_ids(rows, widget_query(where, order_by=order, limit=limit, offset=offset))
    start = offset or 0
    assert sliced == full[start : None if limit is None else start + limit]
    data = {"User": OWNERS, "Widget": rows}
    counted = execute(
        Query("Widget", count=True, where=where, limit=limit, offset=offset),
        SCHEMA,
        data.__getitem__,
        attrs,
        now=NOW,
    )
    assert counted.total_size == len(sliced) and counted.records == []
