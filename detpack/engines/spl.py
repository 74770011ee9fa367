"""Detpack's own evaluator of the SPL that pysigma-backend-splunk 2.1.0 emits (default output format).

No Splunk runs here, so the converted Splunk queries are executed by this module, which implements the
documented semantics of the few SPL commands the backend writes. The query text is tokenized and parsed
by lark (grammars below, LALR with a contextual lexer); no hand-written regular expression splits it.

What the backend emits, and what is implemented:

* A leading search (the implied `search` command): `field=value`, `field="quoted value"`, field names in
  double quotes when they hold characters outside `[A-Za-z0-9_.]` (`"containers{}.image"="x"`),
  `field IN ("a", "b*")`, `NOT`, `AND`, `OR`, parentheses, implicit AND by juxtaposition, `<`, `<=`, `>`,
  `>=`, `!=`, `field=*`, numbers, `true`/`false`, CIDR values. `*` alone matches every event (the
  backend's query for a rule whose every condition is deferred to a later command).
* `| regex field="re"` / `| regex field!="re"` (a Sigma `re` that is not under an OR).
* `| rex field=X "(?<XMatch>re)"` then `| eval XCondition=if(isnotnull(XMatch), "true", "false")` then
  `| search ...` (Sigma `re` under an OR).
* `| where 'a'='b'` / `| where NOT 'a'='b'` (Sigma `fieldref`).
* `| table f1,f2` (Sigma `fields`; it does not filter).
* Search macros `` `name` `` are expanded textually, recursively, outside quoted strings, before parsing.

Semantics (each pinned by a test in tests/test_engine_spl.py that cites the Splunk page it comes from):

* Boolean order in `search`: parentheses, NOT, OR, AND; AND is implied between terms.
* Field names are case-sensitive; values compare case-insensitively for `=`/`!=`/`IN`.
* `=`/`!=`/`IN` compare strings ("1" does not match "1.0"); `*` in the value matches any run of
  characters, including none. A backslash does not escape `*` (`\\*` is a literal backslash followed by a
  wildcard). Inside quotes `\\"`, `\\\\` and `\\|` are escape sequences; any other backslash is kept.
* A value that is a CIDR block (`10.0.0.0/8`, IPv4 or IPv6) matches IP addresses in that block.
* `<`, `<=`, `>`, `>=` compare numerically when both sides are numbers, otherwise lexicographically
  (by code point, so upper case sorts before lower case).
* `NOT f=x` matches events without `f`; `f!=x` needs `f` to have a value and none of its values to
  match; `f=*` means `f` has a value; `f!=*` never matches.
* A multivalue field (a list in the event) matches `=`, wildcards, `IN` and the comparisons when any
  value does.
* `regex f="re"` keeps events with a value of `f` that the (unanchored) regular expression matches;
  `regex f!="re"` keeps events where no value matches, including events without `f`.
* `rex field=f "re"` matches the first value of `f` only (the rex reference defines `max_match` as the
  number of repeated matches of the pattern within the value, not as a choice of values, and the
  backend never sets it); on a match it sets a field per named group that took part, on no match it
  changes nothing. PCRE named groups `(?<n>...)`/`(?'n'...)` and `\\k<n>` are translated to Python `re`.
* `eval` supports `if`, `isnull`, `isnotnull`, double-quoted strings and field names.
* `where` supports `=`/`!=`/`NOT` on fields and strings: case-sensitive, numeric when both sides are
  numbers, null (a missing field) filters the event out even under NOT.

Transforming searches (`SplStatsQuery`, for the correlation rules the backend converts with its `stats`
method; `SplQuery` keeps refusing them):

* `| multisearch [ search ... | eval event_type="x" ] [ search ... ]` as the first command (temporal
  correlations): every subsearch runs over every event; an event both subsearches keep is two results.
  Splunk: "The multisearch command is a generating command that runs multiple streaming searches at the
  same time. This command requires at least two subsearches and allows only streaming operations in each
  subsearch" and must be the first command of the search
  (https://docs.splunk.com/Documentation/Splunk/9.3.0/SearchReference/Multisearch).
* `| bin _time span=<n><s|m|h|d>`: `_time` (epoch seconds) becomes the start of its span. Bins of
  seconds, minutes and hours are aligned to epoch 0 ("aligntime: Align the bin times to something other
  than base UTC time (epoch 0)"); a span of a day or more "is aligned to midnight in the timezone of the
  user", taken as UTC here, and only `1d` is accepted
  (https://docs.splunk.com/Documentation/SplunkCloud/9.2.2403/SearchReference/Bin).
* `| stats count as N by f1 f2 ...` and `| stats dc(f) as N by ...`: "If a BY clause is used, one row is
  returned for each distinct value specified in the BY clause"
  (https://help.splunk.com/splunk-enterprise/spl-search-reference/9.3/search-commands/stats): a result
  without a value for a BY field belongs to no row; a multivalue BY field puts the result in one row per
  value (the command's `dedup_splitvals` argument deals with "multivalued BY clause fields"); values are
  grouped as text, case-sensitively. `count` is the number of results in the row, `dc(f)` "the count of
  distinct values" of `f` over them (every value of a multivalue field; case-sensitive)
  (https://docs.splunk.com/Documentation/Splunk/9.3.0/SearchReference/Aggregatefunctions). The row has
  the BY fields and N; `search` and `where` then filter rows (`search event_count >= 3` compares
  numerically).
* `matching(events)` returns the events behind the rows that survive: the correlation's verdict
  (docs/formats.md, "Correlation rules").

Values in an event: `str` as is, `bool` as `true`/`false` (Splunk's JSON extraction), `int`/`float` as
Python writes them, `None` (and a list with no non-None element) as "no value"; `""` is a value.

Refused at parse time with `SplUnsupportedError` (a `SplSyntaxError`): bare keyword terms other than `*`
(Sigma keywords; Splunk matches them against `_raw` by indexed terms), a search that starts with `|`,
macros with arguments, eval functions other than the three above, PCRE syntax Python lacks (`\\Q...\\E`,
`\\K`, `\\G`, POSIX classes). At match time `SplEvaluationError`: `where` on a multivalue field.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NoReturn, TypeAlias

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

SplValue = str | int | float | bool | None
SplEvent = dict[str, SplValue | list[SplValue]]

__all__ = [
    "SplEvaluationError",
    "SplEvent",
    "SplQuery",
    "SplStatsQuery",
    "SplSyntaxError",
    "SplUnsupportedError",
    "SplValue",
]


class SplSyntaxError(ValueError):
    """Not SPL this evaluator accepts; the message names the line, the column and what was expected."""


class SplUnsupportedError(SplSyntaxError):
    """Valid SPL whose meaning this evaluator does not implement (for example bare keyword terms)."""


class SplEvaluationError(ValueError):
    """An event this evaluator cannot judge as Splunk would (for example `where` on a multivalue field)."""


# --------------------------------------------------------------------------------------------------
# Grammars
# --------------------------------------------------------------------------------------------------

_MACRO_GRAMMAR = r"""
start: _piece*
_piece: QUOTED | MACRO | TEXT
QUOTED: /"(?:[^"\\]|\\.)*"/s
MACRO: /`[^`]*`/
TEXT: /[^"`]+/
"""

_SPL_GRAMMAR = r"""
pipeline: [search_expr] pipe*
pipe: PIPE command
?command: search_cmd | rex_cmd | eval_cmd | regex_cmd | where_cmd | table_cmd

search_cmd: SEARCH search_expr
rex_cmd: REX FIELD_KW EQ field_arg STRING
regex_cmd: REGEX field_arg EQ STRING     -> regex_keep
         | REGEX field_arg NE STRING     -> regex_drop
         | REGEX STRING                  -> regex_raw
eval_cmd: EVAL NAME EQ eval_expr
where_cmd: WHERE where_expr
table_cmd: TABLE WORD (_COMMA WORD)*
field_arg: WORD | STRING

?search_expr: conj
?conj: disj (_AND? disj)*
?disj: neg (_OR neg)*
?neg: _NOT neg                                       -> not_
    | atom
?atom: _LPAR conj _RPAR
     | field op value                                -> compare
     | field _IN _LPAR value (_COMMA value)* _RPAR   -> in_list
     | WORD                                          -> term
     | STRING                                        -> term
field: WORD | STRING
value: WORD | STRING
op: EQ | NE | LT | LE | GT | GE

?where_expr: _NOT where_expr                         -> where_not
           | eval_expr EQ eval_expr                  -> where_eq
           | eval_expr NE eval_expr                  -> where_ne
?eval_expr: NAME _LPAR [eval_expr (_COMMA eval_expr)*] _RPAR  -> call
          | STRING                                   -> eval_string
          | NAME                                     -> eval_field
          | SQ_FIELD                                 -> eval_field

PIPE: "|"
SEARCH: "search"
REX: "rex"
REGEX: "regex"
EVAL: "eval"
WHERE: "where"
TABLE: "table"
FIELD_KW: "field"
_AND: "AND"
_OR: "OR"
_NOT: "NOT"
_IN: "IN"
_LPAR: "("
_RPAR: ")"
_COMMA: ","
EQ: "="
NE: "!="
LT: "<"
LE: "<="
GT: ">"
GE: ">="
STRING: /"(?:[^"\\]|\\.)*"/s
SQ_FIELD: /'(?:[^'\\]|\\.)*'/s
NAME: /[A-Za-z_][A-Za-z0-9_]*/
WORD: /(?:[^\s()"|=!<>,]|!(?!=))+/

%ignore /\s+/
"""

_DESCRIPTIONS: dict[str, str] = {
    "PIPE": "'|'",
    "SEARCH": "'search'",
    "REX": "'rex'",
    "REGEX": "'regex'",
    "EVAL": "'eval'",
    "WHERE": "'where'",
    "TABLE": "'table'",
    "FIELD_KW": "'field'",
    "_AND": "'AND'",
    "_OR": "'OR'",
    "_NOT": "'NOT'",
    "_IN": "'IN'",
    "_LPAR": "'('",
    "_RPAR": "')'",
    "_COMMA": "','",
    "EQ": "'='",
    "NE": "'!='",
    "LT": "'<'",
    "LE": "'<='",
    "GT": "'>'",
    "GE": "'>='",
    "STRING": 'a "quoted string"',
    "SQ_FIELD": "a 'quoted' field name",
    "NAME": "a name",
    "WORD": "a field name or value",
    "$END": "the end of the search",
    "QUOTED": 'a "quoted string"',
    "MACRO": "a `macro`",
    "TEXT": "search text",
    "BIN": "'bin'",
    "STATS": "'stats'",
    "MULTISEARCH": "'multisearch'",
    "AS": "'as'",
    "BY": "'by'",
    "_LBRACKET": "'['",
    "_RBRACKET": "']'",
}


@cache
def _macro_parser() -> Lark:
    return Lark(_MACRO_GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=False)


@cache
def _spl_parser() -> Lark:
    return Lark(_SPL_GRAMMAR, start="pipeline", parser="lalr", lexer="contextual", maybe_placeholders=True)


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


def _describe(names: Iterable[str]) -> str:
    shown = sorted({_DESCRIPTIONS.get(name, name) for name in names})
    if not shown:
        return "nothing more"
    if len(shown) == 1:
        return shown[0]
    return "one of " + ", ".join(shown)


def _position(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, column


def _syntax_error(exc: UnexpectedInput, text: str, where: str) -> SplSyntaxError:
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        expected = exc.expected
        if token.type == "$END":
            line, column = _position(text, len(text))
            found = "the end of the search"
        else:
            line, column = token.line or 1, token.column or 1
            found = repr(str(token))
    elif isinstance(exc, UnexpectedCharacters):
        line, column = exc.line, exc.column
        expected = exc.allowed or set()
        pos = exc.pos_in_stream or 0
        found = repr(text[pos]) if pos < len(text) else "the end of the search"
    elif isinstance(exc, UnexpectedEOF):
        line, column = _position(text, len(text))
        expected = set(exc.expected)
        found = "the end of the search"
    else:  # pragma: no cover - lark raises only the three above
        line, column, expected, found = 1, 1, set(), "?"
    return SplSyntaxError(
        f"{where}line {line}, column {column}: expected {_describe(expected)}, found {found}"
    )


def _at(token: Token, message: str, unsupported: bool = False) -> NoReturn:
    kind = SplUnsupportedError if unsupported else SplSyntaxError
    raise kind(f"line {token.line}, column {token.column}: {message}")


# --------------------------------------------------------------------------------------------------
# Macro expansion
# --------------------------------------------------------------------------------------------------

_MAX_MACRO_DEPTH = 20


def _expand_macros(text: str, macros: Mapping[str, str], stack: tuple[str, ...] = ()) -> str:
    """Replace every `name` outside double quotes by its definition, recursively."""
    where = f"in the definition of macro `{stack[-1]}`, " if stack else ""
    try:
        tree = _macro_parser().parse(text)
    except UnexpectedCharacters as exc:
        opened = {'"': "a quoted string", "`": "a macro reference"}.get(text[exc.pos_in_stream or 0], "text")
        raise SplSyntaxError(
            f"{where}line {exc.line}, column {exc.column}: {opened} starts here and is never closed"
        ) from None
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, where) from None
    out: list[str] = []
    for piece in tree.children:
        if not isinstance(piece, Token) or piece.type != "MACRO":
            out.append(str(piece))
            continue
        name = str(piece)[1:-1]
        at = f"{where}line {piece.line}, column {piece.column}"
        if "(" in name:
            raise SplUnsupportedError(f"{at}: macro `{name}` takes arguments, which are not expanded here")
        if name not in macros:
            known = ", ".join(sorted(macros)) or "none"
            raise SplSyntaxError(f"{at}: unknown macro `{name}` (defined: {known})")
        if name in stack or len(stack) >= _MAX_MACRO_DEPTH:
            raise SplSyntaxError(f"macro `{name}` expands into itself: {' -> '.join((*stack, name))}")
        out.append(_expand_macros(macros[name], macros, (*stack, name)))
    return "".join(out)


# --------------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------------

Row: TypeAlias = dict[str, list[str]]  # field -> its values as strings, never empty


def _unescape(text: str) -> str:
    """SPL's escapes: backslash-quote, backslash-backslash and backslash-pipe; any other backslash stays."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\|':
            out.append(text[i + 1])
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _token_text(token: Token) -> str:
    raw = str(token)
    if token.type in ("STRING", "SQ_FIELD"):
        raw = raw[1:-1]
    return _unescape(raw)


def _as_text(value: SplValue) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _row(event: SplEvent) -> Row:
    row: Row = {}
    for name, value in event.items():
        items = value if isinstance(value, list) else [value]
        texts = [text for text in (_as_text(item) for item in items) if text is not None]
        if texts:
            row[name] = texts
    return row


def _number(text: str) -> float | None:
    if not text or any(char not in "0123456789+-.eE" for char in text):
        return None
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Pattern:
    """A search value: wildcards, case-insensitive, or a CIDR block."""

    text: str
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        parts = (re.escape(part) for part in self.text.split("*"))
        object.__setattr__(self, "regex", re.compile(".*".join(parts), re.IGNORECASE | re.DOTALL))
        network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
        if "/" in self.text and "*" not in self.text:
            try:
                network = ipaddress.ip_network(self.text.strip(), strict=False)
            except ValueError:
                network = None
        object.__setattr__(self, "network", network)

    def matches(self, value: str) -> bool:
        if self.network is not None:
            try:
                address = ipaddress.ip_address(value.strip())
            except ValueError:
                return False
            return address.version == self.network.version and address in self.network
        return self.regex.fullmatch(value) is not None


_ORDER: dict[str, Callable[[int], bool]] = {
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def _ordered(value: str, op: str, literal: str) -> bool:
    left, right = _number(value), _number(literal)
    if left is not None and right is not None:
        comparison = (left > right) - (left < right)
    else:
        comparison = (value > literal) - (value < literal)
    return _ORDER[op](comparison)


# --------------------------------------------------------------------------------------------------
# Search expressions
# --------------------------------------------------------------------------------------------------


class _Expr:
    def test(self, row: Row) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class _All(_Expr):
    def test(self, row: Row) -> bool:
        return True


@dataclass(frozen=True)
class _And(_Expr):
    items: tuple[_Expr, ...]

    def test(self, row: Row) -> bool:
        return all(item.test(row) for item in self.items)


@dataclass(frozen=True)
class _Or(_Expr):
    items: tuple[_Expr, ...]

    def test(self, row: Row) -> bool:
        return any(item.test(row) for item in self.items)


@dataclass(frozen=True)
class _Not(_Expr):
    item: _Expr

    def test(self, row: Row) -> bool:
        return not self.item.test(row)


@dataclass(frozen=True)
class _Compare(_Expr):
    name: str
    op: str
    value: _Pattern

    def test(self, row: Row) -> bool:
        values = row.get(self.name)
        if not values:
            return False
        if self.op == "=":
            return any(self.value.matches(v) for v in values)
        if self.op == "!=":
            return not any(self.value.matches(v) for v in values)
        return any(_ordered(v, self.op, self.value.text) for v in values)


@dataclass(frozen=True)
class _In(_Expr):
    name: str
    values: tuple[_Pattern, ...]

    def test(self, row: Row) -> bool:
        return any(p.matches(v) for v in row.get(self.name, ()) for p in self.values)


# --------------------------------------------------------------------------------------------------
# eval / where expressions
# --------------------------------------------------------------------------------------------------

EvalResult: TypeAlias = list[str] | bool | None


class _EvalExpr:
    def evaluate(self, row: Row) -> EvalResult:
        raise NotImplementedError


@dataclass(frozen=True)
class _EvalString(_EvalExpr):
    text: str

    def evaluate(self, row: Row) -> EvalResult:
        return [self.text]


@dataclass(frozen=True)
class _EvalField(_EvalExpr):
    name: str

    def evaluate(self, row: Row) -> EvalResult:
        return row.get(self.name)


@dataclass(frozen=True)
class _EvalCall(_EvalExpr):
    function: str
    args: tuple[_EvalExpr, ...]

    def evaluate(self, row: Row) -> EvalResult:
        if self.function == "isnotnull":
            return self.args[0].evaluate(row) is not None
        if self.function == "isnull":
            return self.args[0].evaluate(row) is None
        condition = self.args[0].evaluate(row)
        if not isinstance(condition, bool):
            raise SplEvaluationError("the first argument of if() must be a Boolean expression")
        return self.args[1 if condition else 2].evaluate(row)


_FUNCTIONS: dict[str, int] = {"if": 3, "isnull": 1, "isnotnull": 1}


def _single(result: EvalResult, what: str) -> str | None:
    if result is None:
        return None
    if isinstance(result, bool):
        raise SplEvaluationError(f"{what} is a Boolean, not a value")
    if len(result) > 1:
        raise SplEvaluationError(f"{what} is a multivalue field; where does not implement those")
    return result[0]


@dataclass(frozen=True)
class _WhereCompare:
    left: _EvalExpr
    right: _EvalExpr
    equal: bool

    def evaluate(self, row: Row) -> bool | None:
        left = _single(self.left.evaluate(row), "the left side of a where comparison")
        right = _single(self.right.evaluate(row), "the right side of a where comparison")
        if left is None or right is None:
            return None
        a, b = _number(left), _number(right)
        same = a == b if a is not None and b is not None else left == right
        return same if self.equal else not same


@dataclass(frozen=True)
class _WhereNot:
    item: _WhereCompare | _WhereNot

    def evaluate(self, row: Row) -> bool | None:
        result = self.item.evaluate(row)
        return None if result is None else not result


# --------------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------------


class _Command:
    def run(self, row: Row) -> bool:
        """Apply the command to the row in place; False drops the event."""
        raise NotImplementedError


@dataclass(frozen=True)
class _Search(_Command):
    expr: _Expr

    def run(self, row: Row) -> bool:
        return self.expr.test(row)


@dataclass(frozen=True)
class _Rex(_Command):
    source: str
    regex: re.Pattern[str]

    def run(self, row: Row) -> bool:
        values = row.get(self.source)
        if values:
            match = self.regex.search(values[0])
            if match is not None:
                for name, text in match.groupdict().items():
                    if text is not None:
                        row[name] = [text]
        return True


@dataclass(frozen=True)
class _Regex(_Command):
    source: str
    regex: re.Pattern[str]
    keep_matching: bool

    def run(self, row: Row) -> bool:
        matched = any(self.regex.search(value) is not None for value in row.get(self.source, ()))
        return matched if self.keep_matching else not matched


@dataclass(frozen=True)
class _Eval(_Command):
    target: str
    expr: _EvalExpr

    def run(self, row: Row) -> bool:
        result = self.expr.evaluate(row)
        if isinstance(result, bool):
            raise SplEvaluationError(f"eval {self.target}=...: the result of an expression cannot be Boolean")
        if result is None:
            row.pop(self.target, None)
        else:
            row[self.target] = list(result)
        return True


@dataclass(frozen=True)
class _Where(_Command):
    expr: _WhereCompare | _WhereNot

    def run(self, row: Row) -> bool:
        return self.expr.evaluate(row) is True


@dataclass(frozen=True)
class _Table(_Command):
    def run(self, row: Row) -> bool:
        return True


# --------------------------------------------------------------------------------------------------
# PCRE -> Python re
# --------------------------------------------------------------------------------------------------

_PCRE_NAME_MAX = 32


def _group_name(name: str, token: Token) -> str:
    valid = (
        0 < len(name) <= _PCRE_NAME_MAX
        and name.isascii()
        and (name[0].isalpha() or name[0] == "_")
        and all(char.isalnum() or char == "_" for char in name)
    )
    if not valid:
        _at(token, f"invalid regular expression group name {name!r} (PCRE: up to 32 letters, digits, _)")
    return name


def _read_name(pattern: str, start: int, close: str, token: Token) -> tuple[str, int]:
    end = pattern.find(close, start)
    if end < 0:
        _at(token, f"unterminated group name in regular expression at offset {start}")
    return _group_name(pattern[start:end], token), end + 1


def _pcre_to_python(pattern: str, token: Token) -> str:
    """Translate the PCRE syntax Python spells differently; anything Python rejects fails re.compile."""
    out: list[str] = []
    i = 0
    in_class = False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if not in_class and nxt == "k" and i + 2 < len(pattern) and pattern[i + 2] in "<'{":
                close = {"<": ">", "'": "'", "{": "}"}[pattern[i + 2]]
                name, i = _read_name(pattern, i + 3, close, token)
                out.append(f"(?P={name})")
                continue
            if nxt in "QEKGR":
                _at(token, f"PCRE escape \\{nxt} has no Python equivalent", unsupported=True)
            if not in_class and nxt == "z":
                out.append(r"\Z")
            elif not in_class and nxt == "Z":
                out.append(r"(?=\n?\Z)")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if char == "[" and pattern.startswith("[:", i):
                _at(token, "POSIX character classes ([:name:]) have no Python equivalent", unsupported=True)
            if char == "]":
                in_class = False
            out.append(char)
            i += 1
            continue
        if char == "[":
            in_class = True
            out.append(char)
            i += 1
            # A ']' right after '[' or '[^' is a literal member.
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):
                out.append("]")
                i += 1
            continue
        if pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i):
            name, i = _read_name(pattern, i + 3, ">", token)
            out.append(f"(?P<{name}>")
            continue
        if pattern.startswith("(?'", i):
            name, i = _read_name(pattern, i + 3, "'", token)
            out.append(f"(?P<{name}>")
            continue
        if pattern.startswith("(?P<", i):
            name, i = _read_name(pattern, i + 4, ">", token)
            out.append(f"(?P<{name}>")
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _compile(token: Token) -> re.Pattern[str]:
    source = _token_text(token)
    try:
        return re.compile(_pcre_to_python(source, token))
    except re.error as exc:
        _at(token, f"regular expression {source!r} does not compile: {exc}")


# --------------------------------------------------------------------------------------------------
# Parse tree -> commands
# --------------------------------------------------------------------------------------------------

_OPS: dict[str, str] = {"EQ": "=", "NE": "!=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}
_OPERATORS = frozenset({"AND", "OR", "NOT", "IN"})


def _check_not_operator(token: Token) -> None:
    if token.type == "WORD" and str(token) in _OPERATORS:
        _at(token, f"{token} is an operator here; a field name or value spelled {token} must be quoted")


@v_args(inline=True)
class _Builder(Transformer[Token, "list[_Command]"]):
    # search expressions
    def conj(self, *items: _Expr) -> _Expr:
        return _And(items)

    def disj(self, *items: _Expr) -> _Expr:
        return _Or(items)

    def not_(self, item: _Expr) -> _Expr:
        return _Not(item)

    def field(self, token: Token) -> str:
        _check_not_operator(token)
        return _token_text(token)

    def value(self, token: Token) -> _Pattern:
        _check_not_operator(token)
        return _Pattern(_token_text(token))

    def op(self, token: Token) -> str:
        return _OPS[token.type]

    def compare(self, name: str, op: str, value: _Pattern) -> _Expr:
        return _Compare(name, op, value)

    def in_list(self, name: str, *values: _Pattern) -> _Expr:
        return _In(name, values)

    def term(self, token: Token) -> _Expr:
        if token.type == "WORD" and str(token) in _OPERATORS:
            _at(token, f"{token} has no search term on one side")
        if str(token) == "*":
            return _All()
        _at(
            token,
            f"keyword term {str(token)!r}: bare terms search the raw event by its indexed terms, "
            "which this evaluator does not implement",
            unsupported=True,
        )

    # eval / where
    def eval_string(self, token: Token) -> _EvalExpr:
        return _EvalString(_token_text(token))

    def eval_field(self, token: Token) -> _EvalExpr:
        return _EvalField(_token_text(token))

    def call(self, name: Token, *args: _EvalExpr | None) -> _EvalExpr:
        present = tuple(arg for arg in args if arg is not None)
        function = str(name)
        if function not in _FUNCTIONS:
            _at(name, f"eval function {function}() is not implemented", unsupported=True)
        if len(present) != _FUNCTIONS[function]:
            _at(name, f"{function}() takes {_FUNCTIONS[function]} argument(s), got {len(present)}")
        return _EvalCall(function, present)

    def where_eq(self, left: _EvalExpr, _op: Token, right: _EvalExpr) -> _WhereCompare:
        return _WhereCompare(left, right, equal=True)

    def where_ne(self, left: _EvalExpr, _op: Token, right: _EvalExpr) -> _WhereCompare:
        return _WhereCompare(left, right, equal=False)

    def where_not(self, item: _WhereCompare | _WhereNot) -> _WhereNot:
        return _WhereNot(item)

    # commands
    def field_arg(self, token: Token) -> Token:
        return token

    def search_cmd(self, _kw: Token, expr: _Expr) -> _Command:
        return _Search(expr)

    def rex_cmd(self, _kw: Token, _field: Token, _eq: Token, source: Token, regex: Token) -> _Command:
        return _Rex(_token_text(source), _compile(regex))

    def regex_keep(self, _kw: Token, source: Token, _op: Token, regex: Token) -> _Command:
        return _Regex(_token_text(source), _compile(regex), keep_matching=True)

    def regex_drop(self, _kw: Token, source: Token, _op: Token, regex: Token) -> _Command:
        return _Regex(_token_text(source), _compile(regex), keep_matching=False)

    def regex_raw(self, _kw: Token, regex: Token) -> _Command:
        return _Regex("_raw", _compile(regex), keep_matching=True)

    def eval_cmd(self, _kw: Token, target: Token, _eq: Token, expr: _EvalExpr) -> _Command:
        if isinstance(expr, _EvalCall) and expr.function in ("isnull", "isnotnull"):
            _at(target, f"eval {target}=...: the result of an expression cannot be Boolean")
        return _Eval(str(target), expr)

    def where_cmd(self, _kw: Token, expr: _WhereCompare | _WhereNot) -> _Command:
        return _Where(expr)

    def table_cmd(self, _kw: Token, *_fields: Token) -> _Command:
        return _Table()

    def pipe(self, _pipe: Token, command: _Command) -> _Command:
        return command

    def pipeline(self, first: _Expr | None, *commands: _Command) -> list[_Command]:
        if first is None:
            raise SplUnsupportedError(
                "line 1, column 1: the search starts with '|' and no search terms, so it retrieves no "
                "indexed events; put the data source's macro (or `*`) first"
            )
        return [_Search(first), *commands]


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def _parse_with(
    parser: Lark, builder: Transformer[Any, Any], text: str, macros: Mapping[str, str]
) -> tuple[str, Any]:
    """Expand the macros, parse, and build; syntax errors say whether they are in the expanded text."""
    expanded = _expand_macros(text, macros)
    where = "after macro expansion, " if expanded != text else ""
    try:
        tree = parser.parse(expanded)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, expanded, where) from None
    try:
        return expanded, builder.transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, SplSyntaxError):
            raise type(exc.orig_exc)(f"{where}{exc.orig_exc}") from None
        raise
    except SplSyntaxError as exc:
        raise type(exc)(f"{where}{exc}") from None


@dataclass(frozen=True)
class SplQuery:
    """One parsed SPL search: `SplQuery.parse(text, macros).matches(event)`."""

    text: str  # as given
    expanded: str  # after macro expansion, what was parsed
    commands: Sequence[_Command] = field(repr=False)

    @classmethod
    def parse(cls, text: str, macros: Mapping[str, str]) -> SplQuery:
        expanded, commands = _parse_with(_spl_parser(), _Builder(), text, macros)
        return cls(text, expanded, tuple(commands))

    def matches(self, event: SplEvent) -> bool:
        """Whether the event survives every command of the search."""
        row = _row(event)
        return all(command.run(row) for command in self.commands)


# --------------------------------------------------------------------------------------------------
# Transforming searches: multisearch, bin, stats (correlation rules)
# --------------------------------------------------------------------------------------------------

# The streaming grammar plus the three commands pySigma's Splunk backend writes for correlation rules.
# `[` and `]` delimit subsearches in SPL, so they are no longer part of a bare word.
_STATS_GRAMMAR = (
    _SPL_GRAMMAR
    + r"""
%extend command: bin_cmd | stats_cmd | multisearch_cmd
bin_cmd: BIN bin_item+
bin_item: WORD EQ WORD  -> bin_option
        | field         -> bin_field
stats_cmd: STATS stats_agg BY by_field+
stats_agg: WORD [_LPAR field _RPAR] AS WORD
by_field: WORD | STRING
multisearch_cmd: MULTISEARCH subsearch subsearch+
subsearch: _LBRACKET SEARCH search_expr pipe* _RBRACKET
BIN: "bin"
STATS: "stats"
MULTISEARCH: "multisearch"
AS: "as"i
BY: "by"i
_LBRACKET: "["
_RBRACKET: "]"
%override WORD: /(?:[^\s()"|=!<>,\[\]]|!(?!=))+/
"""
)


@cache
def _stats_parser() -> Lark:
    return Lark(_STATS_GRAMMAR, start="pipeline", parser="lalr", lexer="contextual", maybe_placeholders=True)


_SPAN_UNITS: dict[str, int] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
}
_STREAMING = (_Search, _Rex, _Regex, _Eval, _Where, _Table)
Result: TypeAlias = tuple[frozenset[int], Row]  # the events behind a result, and its fields


def _format_number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


@dataclass(frozen=True)
class _Bin(_Command):
    """`bin _time span=N<unit>`: `_time` becomes the start of its span (epoch-aligned, see the module doc)."""

    span: int

    def run(self, row: Row) -> bool:
        values = row.get("_time")
        seconds = _number(values[0]) if values else None
        if seconds is None:
            row.pop("_time", None)
        else:
            row["_time"] = [_format_number(math.floor(seconds / self.span) * self.span)]
        return True


@dataclass(frozen=True)
class _Stats:
    """`stats count|dc(f) as name by f1 f2 ...`: one result per distinct combination of BY values."""

    function: str  # count | dc
    argument: str | None
    name: str
    by: tuple[str, ...]

    def aggregate(self, results: Sequence[Result]) -> list[Result]:
        groups: dict[tuple[str, ...], list[Result]] = {}
        for result in results:
            keys = [result[1].get(name) for name in self.by]
            if any(not values for values in keys):
                continue  # no value for a BY field: in no row
            for combination in itertools.product(*(dict.fromkeys(v) for v in keys if v)):
                groups.setdefault(tuple(combination), []).append(result)
        out: list[Result] = []
        for key, members in groups.items():
            if self.function == "count":
                value = len(members)
            else:
                assert self.argument is not None
                value = len({v for _, row in members for v in row.get(self.argument, ())})
            row: Row = {name: [text] for name, text in zip(self.by, key, strict=True)}
            row[self.name] = [str(value)]
            out.append((frozenset().union(*(sources for sources, _ in members)), row))
        return out


@dataclass(frozen=True)
class _Multisearch:
    searches: tuple[tuple[_Command, ...], ...]


@v_args(inline=True)
class _StatsBuilder(_Builder):
    def bin_option(self, name: Token, _eq: Token, value: Token) -> tuple[str, str]:
        return str(name), str(value)

    def bin_field(self, name: str) -> str:
        return name

    def bin_cmd(self, keyword: Token, *items: tuple[str, str] | str) -> _Bin:
        fields = [item for item in items if isinstance(item, str)]
        options = dict(item for item in items if isinstance(item, tuple))
        if fields != ["_time"]:
            _at(keyword, f"bin on {', '.join(fields) or 'no field'}: only `bin _time` is implemented", True)
        if set(options) != {"span"}:
            _at(keyword, f"bin options {sorted(options)}: only span= is implemented", True)
        match = re.fullmatch(r"(\d+)([a-z]+)", options["span"])
        if match is None or match[2] not in _SPAN_UNITS or int(match[1]) <= 0:
            _at(keyword, f"bin span={options['span']}: expected a positive number and s, m, h or d", True)
        span = int(match[1]) * _SPAN_UNITS[match[2]]
        if span > 86400 or (span >= 86400 and span % 86400):
            _at(keyword, f"bin span={options['span']}: spans over one day are not implemented", True)
        return _Bin(span)

    def stats_agg(
        self, function: Token, argument: str | None, _as: Token, name: Token
    ) -> tuple[str, str | None, str]:
        if (str(function), argument is None) not in (("count", True), ("dc", False)):
            shown = f"{function}({argument})" if argument is not None else str(function)
            _at(function, f"stats function {shown}: only count and dc(<field>) are implemented", True)
        return str(function), argument, str(name)

    def by_field(self, token: Token) -> str:
        return _token_text(token)

    def stats_cmd(
        self, _kw: Token, aggregation: tuple[str, str | None, str], _by: Token, *fields: str
    ) -> _Stats:
        return _Stats(aggregation[0], aggregation[1], aggregation[2], tuple(fields))

    def subsearch(self, keyword: Token, expr: _Expr, *commands: _Command) -> tuple[_Command, ...]:
        for command in commands:
            if not isinstance(command, _STREAMING):
                _at(keyword, "multisearch allows only streaming commands in its subsearches")
        return (_Search(expr), *commands)

    def multisearch_cmd(self, _kw: Token, *searches: tuple[_Command, ...]) -> _Multisearch:
        return _Multisearch(searches)

    def pipeline(self, first: _Expr | None, *commands: Any) -> list[Any]:
        source: _Multisearch | _Search
        if first is None and commands and isinstance(commands[0], _Multisearch):
            source, rest = commands[0], commands[1:]
        elif first is None:
            return super().pipeline(first, *commands)  # raises: nothing retrieves events
        else:
            source, rest = _Search(first), commands
        if any(isinstance(command, _Multisearch) for command in rest):
            raise SplSyntaxError("multisearch must be the first command of a search")
        return [source, *rest]


@dataclass(frozen=True)
class SplStatsQuery:
    """A search that may transform results (multisearch, bin, stats): `SplStatsQuery.parse(text, macros)
    .matching(events)` gives the indexes of the events behind the results it returns."""

    text: str
    expanded: str
    source: _Multisearch | _Search = field(repr=False)
    commands: Sequence[_Command | _Stats] = field(repr=False)

    @classmethod
    def parse(cls, text: str, macros: Mapping[str, str]) -> SplStatsQuery:
        expanded, parts = _parse_with(_stats_parser(), _StatsBuilder(), text, macros)
        where = "after macro expansion, " if expanded != text else ""
        source, *commands = parts
        if not isinstance(source, _Multisearch | _Search):  # pragma: no cover - the builder ensures it
            raise SplSyntaxError(f"{where}the search retrieves no events")
        transformed = False
        for command in commands:
            if isinstance(command, _Stats):
                if transformed:
                    raise SplUnsupportedError(f"{where}only one stats command is implemented")
                transformed = True
            elif transformed and not isinstance(command, _Search | _Where):
                raise SplUnsupportedError(f"{where}only search and where are implemented after stats")
        return cls(text, expanded, source, tuple(commands))

    def matching(self, events: Sequence[SplEvent]) -> set[int]:
        """Indexes of the events behind the results that survive every command."""
        searches = self.source.searches if isinstance(self.source, _Multisearch) else ((self.source,),)
        results: list[Result] = []
        for commands in searches:
            for index, event in enumerate(events):
                row = _row(event)
                if all(command.run(row) for command in commands):
                    results.append((frozenset({index}), row))
        for command in self.commands:
            if isinstance(command, _Stats):
                results = command.aggregate(results)
            else:
                results = [result for result in results if command.run(result[1])]
        return set().union(*(sources for sources, _ in results))
