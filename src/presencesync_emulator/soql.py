"""The SOQL subset the org emulator answers on ``/services/data/vNN.0/query?q=``.

A hand-written tokenizer and recursive-descent parser produce a frozen AST (:class:`Query`),
:func:`render` turns it back into canonical SOQL text (``parse(render(q)) == q``), and
:func:`execute` evaluates it over in-memory rows, returning records shaped like Salesforce's
REST JSON.  The module is pure: no I/O, no clock unless ``now`` is left out.

Grammar (keywords and names are case-insensitive)::

    query   := SELECT (COUNT '(' ')' | path (',' path)*) FROM name
               [WHERE cond] [ORDER BY order (',' order)*] [LIMIT int] [OFFSET int]
    path    := name ('.' name)*                     -- Relationship.Field, Object.Field
    cond    := unary (AND unary)* | unary (OR unary)*   -- mixing AND/OR needs parentheses
    unary   := NOT primary | primary
    primary := '(' cond ')' | path op value | path [NOT] IN '(' value (',' value)* ')'
             | path LIKE string
    op      := '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
    value   := 'string' | number | true | false | null | 2024-01-31 | 2024-01-31T10:00:00Z
             | 2024-01-31T10:00:00.000+05:30 | TODAY | YESTERDAY | TOMORROW
             | LAST_N_DAYS:n | NEXT_N_DAYS:n
    order   := path [ASC | DESC] [NULLS FIRST | NULLS LAST]

Semantics, where Salesforce is vague or where this emulator chooses:

* Errors are :class:`SoqlError` with ``error_code`` ``MALFORMED_QUERY`` (syntax, duplicate
  field, nesting deeper than 32 parentheses, LIMIT/OFFSET/n above 2147483647),
  ``INVALID_TYPE`` (unknown object) or ``INVALID_FIELD`` (unknown field or relationship, a
  literal of the wrong type for its field, an operator the field's type does not allow).
  ``message`` is Salesforce's full text: the offending line, a caret, ``ERROR at
  Row:r:Column:c`` and the detail (``unexpected token: 'FORM'``); ``detail`` is the last line
  alone. A type mismatch (``IsCurrentState = 'true'``) is ``INVALID_FIELD`` with
  "value of filter criterion for field 'IsCurrentState' must be of type boolean and should not
  be enclosed in quotes", as Salesforce answers it. Salesforce's own
  ``INVALID_QUERY_FILTER_OPERATOR`` (LIKE on an id, ``<`` on a boolean) is reported as
  ``INVALID_FIELD`` here, so that only the three codes above ever appear. ID syntax in literals
  and the 2000-row OFFSET cap are not checked.
* Two-valued logic, as in SOQL: ``null`` is a value. ``Field = null`` matches nulls,
  ``Field != 'x'`` and ``Field NOT IN (...)`` match nulls too; ``<``, ``<=``, ``>``, ``>=`` and
  ``LIKE`` never match a null. So ``NOT A`` is exactly the complement of ``A``. A boolean
  field is never null (null reads as false, and ``= null`` means ``= false``), an empty text
  value is null (``Name = ''`` means ``Name = null``), and a field of a missing parent
  (``User.Name`` where ``UserId`` is null or dangling) is null.
* Text comparisons (``=``, ``IN``, ordering, ``LIKE``) are case-insensitive. In ``LIKE``, ``%``
  is any run, ``_`` one character, ``\\%`` and ``\\_`` are literal (matched without regex
  backtracking). Id and reference fields compare case-sensitively on the 15-character form
  (an 18-character id equals its 15-character prefix).
* ``ORDER BY`` puts nulls first unless told ``NULLS LAST`` (Salesforce: "by default, null values
  are sorted first"), in either direction; ties keep the store's row order.
* Date literals (``TODAY``, ``LAST_N_DAYS:n``, ...) are day ranges in the time zone of ``now``
  (UTC when ``now`` is naive or left out). ``LAST_N_DAYS:n`` is today and the n days before it;
  ``NEXT_N_DAYS:n`` the n days after today. ``= range`` is "inside", ``<`` is "before its start",
  ``<=`` "before its end", ``>`` "from its end on", ``>=`` "from its start on".
* ``COUNT()`` must be the whole select list; it answers ``total_size`` = the number of rows
  after ``LIMIT``/``OFFSET``, and no records. ``totalSize`` of a normal query is
  ``len(records)`` (after ``LIMIT``/``OFFSET``); batching into ``nextRecordsUrl`` pages is the
  REST layer's job.
* A field may be prefixed by the queried object's name (``UserServicePresence.User.Name``);
  aliases, aggregates other than ``COUNT()``, ``GROUP BY``, sub-queries, ``TYPEOF``, bind
  variables and ``WITH``/``FOR`` clauses are not part of the subset (``MALFORMED_QUERY``).
  These words are reserved and cannot name objects or fields: SELECT FROM WHERE AND OR NOT IN
  LIKE ORDER BY ASC DESC NULLS FIRST LAST LIMIT OFFSET NULL TRUE FALSE GROUP HAVING WITH
  INCLUDES EXCLUDES.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeAlias, cast

__all__ = [
    "INVALID_FIELD",
    "INVALID_TYPE",
    "MALFORMED_QUERY",
    "RESERVED",
    "And",
    "BooleanLit",
    "Comparison",
    "Condition",
    "DateFunc",
    "DateLit",
    "DateTimeLit",
    "FieldPath",
    "InList",
    "Like",
    "Literal",
    "Not",
    "NullLit",
    "NumberLit",
    "Or",
    "OrderItem",
    "Query",
    "QueryResult",
    "Relationship",
    "SObjectSchema",
    "SoqlError",
    "StringLit",
    "Wildcard",
    "execute",
    "parse",
    "render",
]

MALFORMED_QUERY = "MALFORMED_QUERY"
INVALID_FIELD = "INVALID_FIELD"
INVALID_TYPE = "INVALID_TYPE"

MAX_INT = 2**31 - 1
MAX_NESTING = 32

RESERVED = frozenset(
    {
        *("SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY"),
        *("ASC", "DESC", "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "NULL", "TRUE", "FALSE"),
        *("GROUP", "HAVING", "WITH", "INCLUDES", "EXCLUDES"),
    }
)
COMPARISON_OPS = ("=", "!=", "<", "<=", ">", ">=")
DAY_LITERALS = ("TODAY", "YESTERDAY", "TOMORROW")
N_DAY_LITERALS = ("LAST_N_DAYS", "NEXT_N_DAYS")


# --------------------------------------------------------------------------------------------
# Errors and schema
# --------------------------------------------------------------------------------------------


class SoqlError(Exception):
    """A query Salesforce would refuse, with its REST ``errorCode`` and ``message``."""

    def __init__(
        self,
        error_code: str,
        message: str,
        *,
        detail: str | None = None,
        row: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(error_code, message)
        self.error_code = error_code
        self.message = message
        self.detail = message if detail is None else detail
        self.row = row
        self.column = column

    def __str__(self) -> str:
        return f"{self.error_code}: {self.message}"


def _error(code: str, detail: str, text: str | None, pos: int | None) -> SoqlError:
    """Salesforce's message layout: the line, a caret under the culprit, its row and column."""
    if text is None or pos is None:
        return SoqlError(code, detail, detail=detail)
    pos = max(0, min(pos, len(text)))
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    if line_end < 0:
        line_end = len(text)
    row = text.count("\n", 0, pos) + 1
    column = pos - line_start + 1
    message = (
        f"\n{text[line_start:line_end]}\n{' ' * (column - 1)}^\n"
        f"ERROR at Row:{row}:Column:{column}\n{detail}"
    )
    return SoqlError(code, message, detail=detail, row=row, column=column)


@dataclass(frozen=True)
class Relationship:
    """A lookup from one object to another, as SOQL names it (``UserServicePresence.User``)."""

    name: str  # relationship name as written in SOQL, e.g. "User"
    lookup_field: str  # the reference field holding the parent's Id, e.g. "UserId"
    target: str  # the parent object's canonical name, e.g. "User"
    # A polymorphic lookup (AgentWork.WorkItem): the objects it may point to. Its fields are
    # then those of Salesforce's `Name` object (Id, Name, Type), as SOQL documents for
    # polymorphic relationships; `target` names that pseudo-object in the schema.
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class SObjectSchema:
    name: str
    # canonical field name -> "id", "string", "boolean", "int", "double", "datetime", "date",
    # "reference", "picklist" (other Salesforce text types are treated as "string", "long",
    # "currency" and "percent" as numbers)
    fields: Mapping[str, str]
    relationships: Mapping[str, Relationship] = field(default_factory=dict)
    # The field that is the record's name for a polymorphic lookup's `Name` (Case: CaseNumber).
    name_field: str | None = None


# --------------------------------------------------------------------------------------------
# AST
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldPath:
    """``Name``, ``User.Name`` or ``UserServicePresence.User.Name``, as written."""

    parts: tuple[str, ...]
    pos: int | None = field(default=None, compare=False, repr=False)


class Wildcard(Enum):
    ANY = "%"
    ONE = "_"


@dataclass(frozen=True)
class StringLit:
    value: str


@dataclass(frozen=True)
class NumberLit:
    value: Decimal


@dataclass(frozen=True)
class BooleanLit:
    value: bool


@dataclass(frozen=True)
class NullLit:
    pass


@dataclass(frozen=True)
class DateLit:
    value: date


@dataclass(frozen=True)
class DateTimeLit:
    value: datetime  # always timezone-aware


@dataclass(frozen=True)
class DateFunc:
    """A relative date literal: ``TODAY``, ``YESTERDAY``, ``TOMORROW`` (``n`` None),
    ``LAST_N_DAYS:n``, ``NEXT_N_DAYS:n``."""

    name: str
    n: int | None = None


Literal: TypeAlias = StringLit | NumberLit | BooleanLit | NullLit | DateLit | DateTimeLit | DateFunc


@dataclass(frozen=True)
class Comparison:
    field: FieldPath
    op: str  # one of COMPARISON_OPS ("<>" is parsed as "!=")
    value: Literal


@dataclass(frozen=True)
class InList:
    field: FieldPath
    values: tuple[Literal, ...]
    negated: bool = False


@dataclass(frozen=True)
class Like:
    field: FieldPath
    # literal text runs (never empty, never two in a row) and wildcards
    pattern: tuple[str | Wildcard, ...]


@dataclass(frozen=True)
class Not:
    operand: Condition


@dataclass(frozen=True)
class And:
    operands: tuple[Condition, ...]  # two or more


@dataclass(frozen=True)
class Or:
    operands: tuple[Condition, ...]  # two or more


Condition: TypeAlias = Comparison | InList | Like | Not | And | Or


@dataclass(frozen=True)
class OrderItem:
    field: FieldPath
    descending: bool = False
    nulls_first: bool | None = None  # None: not written (nulls first)


@dataclass(frozen=True)
class Query:
    sobject: str  # as written
    fields: tuple[FieldPath, ...] = ()  # empty for COUNT()
    count: bool = False
    where: Condition | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None
    sobject_pos: int | None = field(default=None, compare=False, repr=False)
    text: str | None = field(default=None, compare=False, repr=False)


@dataclass
class QueryResult:
    total_size: int
    records: list[dict[str, Any]]


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "ident" "string" "number" "date" "datetime" "op" "punct" "eof"
    text: str  # source text ("<EOF>" at the end)
    pos: int
    value: Any = None


_WS = re.compile(r"[ \t\n\r\f\v]+")
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*", re.ASCII)
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:?\d{2})",
    re.ASCII,
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)", re.ASCII)
_OPS = ("!=", "<>", "<=", ">=", "=", "<", ">")
_PUNCT = "(),.:"


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        m = _WS.match(text, i)
        if m:
            i = m.end()
            continue
        ch = text[i]
        if m := _IDENT.match(text, i):
            tok = _Token("ident", m.group(), i)
        elif ch == "'":
            end = _scan_string(text, i)
            tok = _Token("string", text[i:end], i, text[i + 1 : end - 1])
        elif m := _DATETIME.match(text, i):
            tok = _Token("datetime", m.group(), i, _datetime_value(m, text, i))
        elif m := _DATE.match(text, i):
            tok = _Token("date", m.group(), i, _date_value(m, text, i))
        elif m := _NUMBER.match(text, i):
            tok = _Token("number", m.group(), i)
        elif op := next((op for op in _OPS if text.startswith(op, i)), None):
            tok = _Token("op", op, i)
        elif ch in _PUNCT:
            tok = _Token("punct", ch, i)
        else:
            raise _error(MALFORMED_QUERY, f"unexpected token: '{ch}'", text, i)
        tokens.append(tok)
        i += len(tok.text)
    tokens.append(_Token("eof", "<EOF>", n))
    return tokens


def _scan_string(text: str, start: int) -> int:
    """The end (exclusive) of the string literal opening at ``start``."""
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
        elif c == "'":
            return i + 1
        else:
            i += 1
    raise _error(MALFORMED_QUERY, "unexpected token: '<EOF>' (unterminated string)", text, n)


def _date_value(m: re.Match[str], text: str, pos: int) -> date:
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise _error(MALFORMED_QUERY, f"invalid date: '{m.group()}'", text, pos) from None


def _datetime_value(m: re.Match[str], text: str, pos: int) -> datetime:
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        if zone == "Z":
            tz = UTC
        else:
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            hh, mm = int(digits[:2]), int(digits[2:])
            if mm > 59:
                raise ValueError(zone)
            tz = timezone(sign * timedelta(hours=hh, minutes=mm))
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((frac or "").ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError:
        raise _error(MALFORMED_QUERY, f"invalid datetime: '{m.group()}'", text, pos) from None


_ESCAPES = {
    "n": "\n",
    "N": "\n",
    "r": "\r",
    "R": "\r",
    "t": "\t",
    "T": "\t",
    "b": "\b",
    "B": "\b",
    "f": "\f",
    "F": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}


def _decode(tok: _Token, text: str, *, like: bool) -> list[str | Wildcard]:
    """The characters of a string literal; in a LIKE pattern ``%``/``_`` are wildcards and
    ``\\%``/``\\_`` literal, elsewhere ``\\%``/``\\_`` stay as written (backslash included)."""
    raw: str = tok.value
    out: list[str | Wildcard] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\":
            nxt = raw[i + 1]  # the scanner guarantees a character after a backslash
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in "%_":
                out.append(nxt if like else "\\" + nxt)
            else:
                raise _error(
                    MALFORMED_QUERY,
                    f"Invalid string literal '{raw}'. "
                    f"Illegal character sequence '\\{nxt}' in string literal.",
                    text,
                    tok.pos,
                )
            i += 2
        else:
            if like and c == "%":
                out.append(Wildcard.ANY)
            elif like and c == "_":
                out.append(Wildcard.ONE)
            else:
                out.append(c)
            i += 1
    return out


def _like_parts(chars: Iterable[str | Wildcard]) -> tuple[str | Wildcard, ...]:
    """Merge adjacent text into runs: the canonical form of a LIKE pattern."""
    parts: list[str | Wildcard] = []
    run: list[str] = []
    for c in chars:
        if isinstance(c, str):
            run.append(c)
            continue
        if run:
            parts.append("".join(run))
            run = []
        parts.append(c)
    if run:
        parts.append("".join(run))
    return tuple(parts)


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------


def parse(text: str) -> Query:
    """Parse SOQL text; raises :class:`SoqlError` (``MALFORMED_QUERY``) on any bad input."""
    if not isinstance(text, str):
        raise SoqlError(MALFORMED_QUERY, "query must be a string")
    return _Parser(text).query()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    # -- token helpers ------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    @staticmethod
    def is_kw(tok: _Token, *words: str) -> bool:
        return tok.kind == "ident" and tok.text.upper() in words

    @staticmethod
    def is_punct(tok: _Token, ch: str) -> bool:
        return tok.kind == "punct" and tok.text == ch

    def accept_kw(self, word: str) -> bool:
        if self.is_kw(self.peek(), word):
            self.advance()
            return True
        return False

    def accept_punct(self, ch: str) -> bool:
        if self.is_punct(self.peek(), ch):
            self.advance()
            return True
        return False

    def unexpected(self, tok: _Token, detail: str | None = None) -> SoqlError:
        return _error(
            MALFORMED_QUERY, detail or f"unexpected token: '{tok.text}'", self.text, tok.pos
        )

    def expect_kw(self, word: str) -> None:
        tok = self.advance()
        if not self.is_kw(tok, word):
            raise self.unexpected(tok)

    def expect_punct(self, ch: str) -> None:
        tok = self.advance()
        if not self.is_punct(tok, ch):
            raise self.unexpected(tok)

    def name(self) -> _Token:
        tok = self.advance()
        if tok.kind != "ident" or tok.text.upper() in RESERVED:
            raise self.unexpected(tok)
        return tok

    def integer(self, what: str) -> int:
        tok = self.advance()
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.unexpected(tok)
        if len(tok.text) > 10 or int(tok.text) > MAX_INT:
            raise self.unexpected(tok, f"{what} must not be greater than {MAX_INT}")
        return int(tok.text)

    # -- grammar ------------------------------------------------------------------------------

    def query(self) -> Query:
        self.expect_kw("SELECT")
        count = False
        fields: list[FieldPath] = []
        if self.is_kw(self.peek(), "COUNT") and self.is_punct(self.peek(1), "("):
            self.advance()
            self.advance()
            self.expect_punct(")")
            count = True
        else:
            fields.append(self.path())
            while self.accept_punct(","):
                fields.append(self.path())
        self.expect_kw("FROM")
        sobject = self.name()
        where = self.condition() if self.accept_kw("WHERE") else None
        order: list[OrderItem] = []
        if self.accept_kw("ORDER"):
            self.expect_kw("BY")
            order.append(self.order_item())
            while self.accept_punct(","):
                order.append(self.order_item())
        limit = self.integer("LIMIT") if self.accept_kw("LIMIT") else None
        offset = self.integer("OFFSET") if self.accept_kw("OFFSET") else None
        tok = self.peek()
        if tok.kind != "eof":
            raise self.unexpected(tok)
        return Query(
            sobject=sobject.text,
            fields=tuple(fields),
            count=count,
            where=where,
            order_by=tuple(order),
            limit=limit,
            offset=offset,
            sobject_pos=sobject.pos,
            text=self.text,
        )

    def path(self) -> FieldPath:
        first = self.name()
        parts = [first.text]
        while self.accept_punct("."):
            parts.append(self.name().text)
        return FieldPath(tuple(parts), pos=first.pos)

    def order_item(self) -> OrderItem:
        path = self.path()
        descending = False
        if self.accept_kw("DESC"):
            descending = True
        else:
            self.accept_kw("ASC")
        nulls_first = None
        if self.accept_kw("NULLS"):
            tok = self.advance()
            if not self.is_kw(tok, "FIRST", "LAST"):
                raise self.unexpected(tok)
            nulls_first = tok.text.upper() == "FIRST"
        return OrderItem(path, descending, nulls_first)

    def condition(self) -> Condition:
        first = self.unary()
        tok = self.peek()
        if not self.is_kw(tok, "AND", "OR"):
            return first
        joiner = tok.text.upper()
        operands = [first]
        while self.accept_kw(joiner):
            operands.append(self.unary())
        tok = self.peek()
        if self.is_kw(tok, "AND", "OR"):  # the other one: SOQL wants parentheses
            raise self.unexpected(tok)
        return And(tuple(operands)) if joiner == "AND" else Or(tuple(operands))

    def unary(self) -> Condition:
        if self.accept_kw("NOT"):
            return Not(self.primary())
        return self.primary()

    def primary(self) -> Condition:
        tok = self.peek()
        if self.is_punct(tok, "("):
            if self.depth >= MAX_NESTING:
                raise self.unexpected(tok, "too many nested parentheses")
            self.advance()
            self.depth += 1
            inner = self.condition()
            self.depth -= 1
            self.expect_punct(")")
            return inner
        path = self.path()
        tok = self.advance()
        if tok.kind == "op":
            op = "!=" if tok.text == "<>" else tok.text
            return Comparison(path, op, self.value())
        if self.is_kw(tok, "IN"):
            return InList(path, self.value_list(), negated=False)
        if self.is_kw(tok, "NOT"):
            self.expect_kw("IN")
            return InList(path, self.value_list(), negated=True)
        if self.is_kw(tok, "LIKE"):
            pat = self.advance()
            if pat.kind != "string":
                raise self.unexpected(pat)
            return Like(path, _like_parts(_decode(pat, self.text, like=True)))
        raise self.unexpected(tok)

    def value_list(self) -> tuple[Literal, ...]:
        self.expect_punct("(")
        values = [self.value()]
        while self.accept_punct(","):
            values.append(self.value())
        self.expect_punct(")")
        return tuple(values)

    def value(self) -> Literal:
        tok = self.advance()
        if tok.kind == "string":
            return StringLit("".join(_decode(tok, self.text, like=False)))  # type: ignore[arg-type]
        if tok.kind == "number":
            return NumberLit(Decimal(tok.text))
        if tok.kind == "date":
            return DateLit(tok.value)
        if tok.kind == "datetime":
            return DateTimeLit(tok.value)
        if tok.kind == "ident":
            word = tok.text.upper()
            if word in ("TRUE", "FALSE"):
                return BooleanLit(word == "TRUE")
            if word == "NULL":
                return NullLit()
            if word in DAY_LITERALS:
                return DateFunc(word)
            if word in N_DAY_LITERALS:
                self.expect_punct(":")
                return DateFunc(word, self.integer(word))
        raise self.unexpected(tok)


# --------------------------------------------------------------------------------------------
# Renderer
# --------------------------------------------------------------------------------------------

_RENDER_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def _quote(s: str, *, like: bool = False) -> str:
    out = []
    for c in s:
        if c in _RENDER_ESCAPES:
            out.append(_RENDER_ESCAPES[c])
        elif like and c in "%_":
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def _render_literal(lit: Literal) -> str:
    match lit:
        case StringLit(value):
            return f"'{_quote(value)}'"
        case NumberLit(value):
            return format(value, "f")
        case BooleanLit(value):
            return "true" if value else "false"
        case NullLit():
            return "null"
        case DateLit(value):
            return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        case DateTimeLit(value):
            return _render_datetime(value)
        case DateFunc(name, n):
            return name if n is None else f"{name}:{n}"
    raise TypeError(f"not a SOQL literal: {lit!r}")


def _render_datetime(v: datetime) -> str:
    text = f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
    if v.microsecond:
        ms, us = divmod(v.microsecond, 1000)
        text += f".{ms:03d}" if us == 0 else f".{v.microsecond:06d}"
    offset = v.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        return text + "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _render_path(path: FieldPath) -> str:
    return ".".join(path.parts)


def _render_condition(cond: Condition) -> str:
    match cond:
        case Comparison(path, op, value):
            return f"{_render_path(path)} {op} {_render_literal(value)}"
        case InList(path, values, negated):
            items = ", ".join(_render_literal(v) for v in values)
            return f"{_render_path(path)} {'NOT IN' if negated else 'IN'} ({items})"
        case Like(path, pattern):
            text = "".join(
                p.value if isinstance(p, Wildcard) else _quote(p, like=True) for p in pattern
            )
            return f"{_render_path(path)} LIKE '{text}'"
        case Not(operand):
            inner = _render_condition(operand)
            return f"NOT {inner}" if _is_field_expr(operand) else f"NOT ({inner})"
        case And(operands) | Or(operands):
            joiner = " AND " if isinstance(cond, And) else " OR "
            return joiner.join(
                _render_condition(o)
                if isinstance(o, Comparison | InList | Like | Not)
                else f"({_render_condition(o)})"
                for o in operands
            )
    raise TypeError(f"not a SOQL condition: {cond!r}")


def _is_field_expr(cond: Condition) -> bool:
    return isinstance(cond, Comparison | InList | Like)


def render(query: Query) -> str:
    """Canonical SOQL text for ``query``: ``parse(render(q)) == q``."""
    parts = ["SELECT", "COUNT()" if query.count else ", ".join(map(_render_path, query.fields))]
    parts += ["FROM", query.sobject]
    if query.where is not None:
        parts += ["WHERE", _render_condition(query.where)]
    if query.order_by:
        items = []
        for item in query.order_by:
            text = _render_path(item.field) + (" DESC" if item.descending else "")
            if item.nulls_first is not None:
                text += " NULLS FIRST" if item.nulls_first else " NULLS LAST"
            items.append(text)
        parts += ["ORDER BY", ", ".join(items)]
    if query.limit is not None:
        parts += ["LIMIT", str(query.limit)]
    if query.offset is not None:
        parts += ["OFFSET", str(query.offset)]
    return " ".join(parts)


# --------------------------------------------------------------------------------------------
# Evaluator
# --------------------------------------------------------------------------------------------

_TEXT = "text"
_ID = "id"
_NUMBER_KIND = "number"
_BOOLEAN = "boolean"
_DATE_KIND = "date"
_DATETIME_KIND = "datetime"
_KIND_OF_TYPE = {
    "id": _ID,
    "reference": _ID,
    "boolean": _BOOLEAN,
    "int": _NUMBER_KIND,
    "integer": _NUMBER_KIND,
    "long": _NUMBER_KIND,
    "double": _NUMBER_KIND,
    "currency": _NUMBER_KIND,
    "percent": _NUMBER_KIND,
    "date": _DATE_KIND,
    "datetime": _DATETIME_KIND,
}
# how Salesforce names the expected type in "must be of type ..." messages
_TYPE_WORD = {
    _ID: "id",
    _TEXT: "string",
    _BOOLEAN: "boolean",
    _DATE_KIND: "date",
    _DATETIME_KIND: "dateTime",
}
_LITERAL_KINDS: dict[str, tuple[type, ...]] = {
    _TEXT: (StringLit,),
    _ID: (StringLit,),
    _NUMBER_KIND: (NumberLit,),
    _BOOLEAN: (BooleanLit,),
    _DATE_KIND: (DateLit, DateFunc),
    _DATETIME_KIND: (DateTimeLit, DateFunc),
}

_NO_SUCH_COLUMN = (
    "No such column '{name}' on entity '{entity}'. If you are attempting to use a custom field, "
    "be sure to append the '__c' after the custom field name. Please reference your WSDL or the "
    "describe call for the appropriate names."
)
_NO_SUCH_RELATIONSHIP = (
    "Didn't understand relationship '{name}' in field path. If you are attempting to use a "
    "custom relationship, be sure to append the '__r' after the custom relationship name. "
    "Please reference your WSDL or the describe call for the appropriate names."
)
_NO_SUCH_TYPE = (
    "sObject type '{name}' is not supported. If you are attempting to use a custom object, be "
    "sure to append the '__c' after the entity name. Please reference your WSDL or the describe "
    "call for the appropriate names."
)


@dataclass(frozen=True)
class _Resolved:
    rels: tuple[Relationship, ...]  # canonical, outermost first
    name: str  # canonical field name
    type: str  # schema type
    kind: str  # comparison kind
    label: str  # canonical dotted path


def _id_key(v: Any) -> Any:
    """Ids match on their 15-character, case-sensitive form."""
    if isinstance(v, str):
        return v[:15] if len(v) == 18 else v
    return v


def _to_decimal(v: Any) -> Decimal | None:
    try:
        if isinstance(v, Decimal):
            d = v
        elif isinstance(v, bool | int):
            d = Decimal(int(v))
        elif isinstance(v, float):
            d = Decimal(repr(v))
        elif isinstance(v, str):
            d = Decimal(v.strip())
        else:
            return None
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _to_date(v: Any) -> date | None:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    if isinstance(v, str):
        try:
            return date.fromisoformat(v[:10])
        except ValueError:
            return None
    return None


def _to_datetime(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        dt = v
    elif isinstance(v, date):
        dt = datetime(v.year, v.month, v.day)
    elif isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v)
        except ValueError:
            return None
    else:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _to_bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() == "true"
    return bool(v)


def _to_text(v: Any) -> str | None:
    if v is None:
        return None
    s = v if isinstance(v, str) else str(v)
    return s.casefold() if s else None


def _to_id(v: Any) -> Any:
    if v is None or v == "":
        return None
    return _id_key(v if isinstance(v, str) else str(v))


_NORMALIZE: dict[str, Callable[[Any], Any]] = {
    _TEXT: _to_text,
    _ID: _to_id,
    _NUMBER_KIND: _to_decimal,
    _BOOLEAN: _to_bool,
    _DATE_KIND: _to_date,
    _DATETIME_KIND: _to_datetime,
}


def _like_items(pattern: tuple[str | Wildcard, ...]) -> tuple[str | Wildcard, ...]:
    """The pattern as single (casefolded) characters and wildcards."""
    items: list[str | Wildcard] = []
    for part in pattern:
        if isinstance(part, Wildcard):
            items.append(part)
        else:
            items.extend(part.casefold())
    return tuple(items)


def _like_match(value: str, items: tuple[str | Wildcard, ...]) -> bool:
    """Greedy wildcard matching that backs up only to the last ``%``: O(len(value) *
    len(items)) at worst, where a regex of ``.*`` runs can backtrack polynomially."""
    i = j = 0
    star, mark = -1, 0
    n, m = len(value), len(items)
    while i < n:
        if j < m and (items[j] is Wildcard.ONE or items[j] == value[i]):
            i += 1
            j += 1
        elif j < m and items[j] is Wildcard.ANY:
            star, mark = j, i
            j += 1
        elif star >= 0:
            mark += 1
            i, j = mark, star + 1
        else:
            return False
    while j < m and items[j] is Wildcard.ANY:
        j += 1
    return j == m


def _clamped_day(d: date, days: int) -> date:
    try:
        return d + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


class _Executor:
    def __init__(
        self,
        query: Query,
        schema: Mapping[str, SObjectSchema],
        rows: Callable[[str], Iterable[Mapping[str, Any]]],
        attributes: Callable[[str, str], dict[str, str]],
        now: datetime | None,
    ) -> None:
        self.query = query
        self.schema = {name.lower(): obj for name, obj in schema.items()}
        self.rows = rows
        self.attributes = attributes
        if now is None:
            now = datetime.now(UTC)
        elif now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        self.now = now
        self.indexes: dict[str, dict[Any, Mapping[str, Any]]] = {}

    def fail(self, code: str, detail: str, pos: int | None) -> SoqlError:
        return _error(code, detail, self.query.text, pos)

    # -- name resolution ----------------------------------------------------------------------

    def resolve_object(self) -> SObjectSchema:
        obj = self.schema.get(self.query.sobject.lower())
        if obj is None:
            raise self.fail(
                INVALID_TYPE, _NO_SUCH_TYPE.format(name=self.query.sobject), self.query.sobject_pos
            )
        return obj

    def resolve(self, root: SObjectSchema, path: FieldPath) -> _Resolved:
        parts = list(path.parts)
        if (
            len(parts) > 1
            and parts[0].lower() == root.name.lower()
            and _find(root.relationships, parts[0]) is None
        ):
            parts = parts[1:]
        obj, rels = root, []
        for part in parts[:-1]:
            key = _find(obj.relationships, part)
            rel = obj.relationships[key] if key is not None else None
            target = self.schema.get(rel.target.lower()) if rel is not None else None
            if rel is None or target is None:
                raise self.fail(INVALID_FIELD, _NO_SUCH_RELATIONSHIP.format(name=part), path.pos)
            rels.append(rel)
            obj = target
        name = _find(obj.fields, parts[-1])
        if name is None:
            raise self.fail(
                INVALID_FIELD, _NO_SUCH_COLUMN.format(name=parts[-1], entity=obj.name), path.pos
            )
        ftype = obj.fields[name]
        kind = _KIND_OF_TYPE.get(str(ftype).lower(), _TEXT)
        label = ".".join([r.name for r in rels] + [name])
        return _Resolved(tuple(rels), name, ftype, kind, label)

    # -- row access ---------------------------------------------------------------------------

    def target_name(self, rel: Relationship) -> str:
        return self.schema[rel.target.lower()].name

    def parent(self, rel: Relationship, row: Mapping[str, Any]) -> Mapping[str, Any] | None:
        ref = row.get(rel.lookup_field)
        if ref is None or ref == "":
            return None
        if rel.targets:
            return self.polymorphic_parent(rel, ref)
        return self.index(self.target_name(rel)).get(_id_key(ref))

    def index(self, target: str) -> dict[Any, Mapping[str, Any]]:
        index = self.indexes.get(target)
        if index is None:
            index = {}
            for r in self.rows(target):
                index.setdefault(_id_key(r.get("Id")), r)
            self.indexes[target] = index
        return index

    def polymorphic_parent(self, rel: Relationship, ref: Any) -> Mapping[str, Any] | None:
        """The record a polymorphic lookup points to, as its `Name` object (Id, Name, Type)."""
        for target in rel.targets:
            obj = self.schema.get(target.lower())
            if obj is None:
                continue
            found = self.index(obj.name).get(_id_key(ref))
            if found is not None:
                name = found.get(obj.name_field) if obj.name_field else None
                return {"Id": found.get("Id"), "Name": name, "Type": obj.name}
        return None

    def getter(self, res: _Resolved) -> Callable[[Mapping[str, Any]], Any]:
        normalize = _NORMALIZE[res.kind]
        name = res.name
        if not res.rels:
            return lambda row: normalize(row.get(name))

        def get(row: Mapping[str, Any]) -> Any:
            cur: Mapping[str, Any] = row
            for rel in res.rels:
                parent = self.parent(rel, cur)
                if parent is None:
                    return normalize(None)
                cur = parent
            return normalize(cur.get(name))

        return get

    # -- WHERE --------------------------------------------------------------------------------

    def day_range(self, func: DateFunc, kind: str) -> tuple[Any, Any]:
        today = self.now.date()
        n = func.n or 0
        start, end = {
            "TODAY": (0, 1),
            "YESTERDAY": (-1, 0),
            "TOMORROW": (1, 2),
            "LAST_N_DAYS": (-n, 1),
            "NEXT_N_DAYS": (1, 1 + n),
        }[func.name]
        lo, hi = _clamped_day(today, start), _clamped_day(today, end)
        if kind == _DATE_KIND:
            return lo, hi
        tz = self.now.tzinfo
        return datetime.combine(lo, time(), tzinfo=tz), datetime.combine(hi, time(), tzinfo=tz)

    def check_literal(self, res: _Resolved, lit: Literal, pos: int | None) -> None:
        if isinstance(lit, (NullLit, *_LITERAL_KINDS[res.kind])):
            return
        if res.kind == _NUMBER_KIND:
            word = "integer" if str(res.type).lower() in ("int", "integer", "long") else "double"
        else:
            word = _TYPE_WORD[res.kind]
        quoted = "be enclosed" if res.kind in (_TEXT, _ID) else "not be enclosed"
        raise self.fail(
            INVALID_FIELD,
            f"value of filter criterion for field '{res.name}' must be of type {word} "
            f"and should {quoted} in quotes",
            pos,
        )

    def operator_error(self, res: _Resolved, pos: int | None) -> SoqlError:
        return self.fail(INVALID_FIELD, f"invalid operator on {res.type} field", pos)

    def literal_value(self, res: _Resolved, lit: Literal) -> Any:
        if isinstance(lit, NullLit):
            return _NORMALIZE[res.kind](None)
        if isinstance(lit, DateFunc):
            return self.day_range(lit, res.kind)
        return _NORMALIZE[res.kind](lit.value)

    def predicate(
        self, root: SObjectSchema, cond: Condition
    ) -> Callable[[Mapping[str, Any]], bool]:
        match cond:
            case And(operands):
                preds = [self.predicate(root, o) for o in operands]
                return lambda row: all(p(row) for p in preds)
            case Or(operands):
                preds = [self.predicate(root, o) for o in operands]
                return lambda row: any(p(row) for p in preds)
            case Not(operand):
                pred = self.predicate(root, operand)
                return lambda row: not pred(row)
            case Like(path, pattern):
                res = self.resolve(root, path)
                if res.kind != _TEXT:
                    raise self.operator_error(res, path.pos)
                items = _like_items(pattern)
                get = self.getter(res)

                def like(row: Mapping[str, Any]) -> bool:
                    v = get(row)
                    return v is not None and _like_match(v, items)

                return like
            case InList(path, values, negated):
                res = self.resolve(root, path)
                for lit in values:
                    self.check_literal(res, lit, path.pos)
                tests = [self.equality(res, lit) for lit in values]
                get = self.getter(res)

                def in_list(row: Mapping[str, Any]) -> bool:
                    v = get(row)
                    return any(t(v) for t in tests) != negated

                return in_list
            case Comparison(path, op, lit):
                res = self.resolve(root, path)
                self.check_literal(res, lit, path.pos)
                get = self.getter(res)
                if op in ("=", "!="):
                    test = self.equality(res, lit)
                    if op == "=":
                        return lambda row: test(get(row))
                    return lambda row: not test(get(row))
                if res.kind == _BOOLEAN:
                    raise self.operator_error(res, path.pos)
                order = self.ordering(res, op, lit)
                return lambda row: order(get(row))
        raise TypeError(f"not a SOQL condition: {cond!r}")

    def equality(self, res: _Resolved, lit: Literal) -> Callable[[Any], bool]:
        value = self.literal_value(res, lit)
        if isinstance(lit, DateFunc):
            lo, hi = value
            return lambda v: v is not None and lo <= v < hi
        return lambda v: v == value

    def ordering(self, res: _Resolved, op: str, lit: Literal) -> Callable[[Any], bool]:
        value = self.literal_value(res, lit)
        if value is None:
            return lambda v: False
        if isinstance(lit, DateFunc):
            lo, hi = value
            # < before the range, <= before its end, > after it, >= from its start
            op, value = {"<": ("<", lo), "<=": ("<", hi), ">": (">=", hi), ">=": (">=", lo)}[op]
        compare: Callable[[Any], bool] = {
            "<": lambda v: v < value,
            "<=": lambda v: v <= value,
            ">": lambda v: v > value,
            ">=": lambda v: v >= value,
        }[op]
        return lambda v: v is not None and compare(v)

    # -- the query ----------------------------------------------------------------------------

    def run(self) -> QueryResult:
        query = self.query
        root = self.resolve_object()
        selected: list[_Resolved] = []
        seen: set[tuple[str, ...]] = set()
        for path in query.fields:
            res = self.resolve(root, path)
            key = (*(r.name.lower() for r in res.rels), res.name.lower())
            if key in seen:
                raise self.fail(MALFORMED_QUERY, f"duplicate field selected: {res.label}", path.pos)
            seen.add(key)
            selected.append(res)
        pred = self.predicate(root, query.where) if query.where is not None else None
        sort_keys = [(self.getter(self.resolve(root, item.field)), item) for item in query.order_by]

        matched = [row for row in self.rows(root.name) if pred is None or pred(row)]
        for get, item in reversed(sort_keys):
            nulls_first = item.nulls_first is not False
            # reverse=True flips the groups too, so pick them for the final order
            null_group = 0 if nulls_first != item.descending else 2

            def sort_key(
                row: Mapping[str, Any], get: Any = get, null_group: int = null_group
            ) -> Any:
                v = get(row)
                return (null_group, 0) if v is None else (1, v)

            matched.sort(key=sort_key, reverse=item.descending)
        start = query.offset or 0
        matched = matched[start:] if query.limit is None else matched[start : start + query.limit]
        if query.count:
            return QueryResult(total_size=len(matched), records=[])
        records = [self.record(root, row, selected) for row in matched]
        return QueryResult(total_size=len(records), records=records)

    def record(
        self, root: SObjectSchema, row: Mapping[str, Any], selected: list[_Resolved]
    ) -> dict[str, Any]:
        # The rows are untyped: every record has its Id, a polymorphic parent its Type (str).
        out: dict[str, Any] = {"attributes": self.attributes(root.name, cast(str, row.get("Id")))}
        for res in selected:
            cur: dict[str, Any] | None = out
            src: Mapping[str, Any] | None = row
            for rel in res.rels:
                assert cur is not None and src is not None
                src = self.parent(rel, src)
                if rel.name not in cur:
                    cur[rel.name] = (
                        None
                        if src is None
                        else {
                            "attributes": self.attributes(
                                cast(str, src.get("Type"))
                                if rel.targets
                                else self.target_name(rel),
                                cast(str, src.get("Id")),
                            )
                        }
                    )
                cur = cur[rel.name]
                if cur is None:
                    break
            else:
                assert cur is not None and src is not None
                cur[res.name] = src.get(res.name)
        return out


def _find(mapping: Mapping[str, Any], name: str) -> str | None:
    """The canonical key of ``mapping`` equal to ``name`` ignoring case."""
    if name in mapping:
        return name
    lower = name.lower()
    return next((k for k in mapping if k.lower() == lower), None)


def execute(
    query: Query,
    schema: Mapping[str, SObjectSchema],
    rows: Callable[[str], Iterable[Mapping[str, Any]]],
    attributes: Callable[[str, str], dict[str, str]],
    now: datetime | None = None,
) -> QueryResult:
    """Run ``query`` over ``rows(object_name)``; raises :class:`SoqlError` for unknown objects
    (``INVALID_TYPE``), unknown fields and ill-typed filters (``INVALID_FIELD``) and duplicate
    fields (``MALFORMED_QUERY``)."""
    return _Executor(query, schema, rows, attributes, now).run()
