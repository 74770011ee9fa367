"""ES|QL with Elasticsearch 9.1 semantics: the real grammar, translated to DuckDB SQL, run over the documents.

No Elasticsearch runs here, so a query is parsed with the ANTLR lexer and parser Elasticsearch 9.1 itself
is generated from (the `esql-parser` package, 9.1.3), its parse tree is walked into a small typed expression
tree, checked the way Elasticsearch's analyser checks it against the index mapping, and rendered as one
DuckDB `SELECT ... WHERE ...` over a table that holds the documents the way ES|QL reads them.

Supported: `FROM <index patterns> [METADATA ...] | WHERE <condition> [| WHERE ...]`, with `and`/`or`/`not`,
parentheses, `==` `!=` `<` `<=` `>` `>=`, `[not] in (...)`, `is [not] null`, `[not] like "p"`,
`[not] like ("p", ...)`, `[not] rlike "re"`, `starts_with`, `ends_with`, `to_lower`, `to_upper`, `length`,
`cidr_match`, string literals (`"..."` with `\\t \\n \\r \\" \\\\` escapes, `\"\"\"raw\"\"\"`), back-quoted
field names, integer/decimal/boolean/null literals. Everything else the grammar accepts (other commands,
arithmetic, casts, other functions, parameters, `:`/MATCH, array literals, remote clusters) raises
`EsqlUnsupportedError`.

Semantics reproduced (Elasticsearch documentation pages this was written from):

* **Three-valued logic.** Comparisons and functions with a null input are null, `not null` is null,
  `and`/`or` follow the SQL truth tables and `WHERE` keeps only true rows ("Working with NULL values in
  ES|QL", https://www.elastic.co/docs/reference/query-languages/esql/esql-null-values). DuckDB's SQL logic is
  the same, so `not x == "a"`, `x != "a"` and `x not in (...)` drop documents without `x`.
* **Multi-valued fields.** "Unless otherwise documented functions will return null when applied to a
  multivalued field" (and comparisons, `in`, `like`, `rlike`, `cidr_match` are such functions); `is null` is
  false for a multi-valued field; `to_lower`/`to_upper` process every value since 9.1 (PR #124676), so their
  result is still multi-valued ("ES|QL multivalued fields",
  https://elastic.co/docs/reference/query-languages/esql/esql-multivalued-fields). Each column therefore holds
  a field's value only when the document has exactly one; a document with several values has NULL there and
  the field's name in the hidden `_esql_mv` list, which `is null` consults. Storage rules from the same page:
  `null`s inside arrays are dropped, `keyword`-family and `ip` fields (sorted-set doc values) drop duplicate
  values, so `["a", "a"]` is the single value `"a"`; numbers and `text` read from `_source` keep duplicates.
  Arrays of objects flatten (`a: [{b: 1}, {b: 2}]` gives `a.b` the values 1 and 2).
* **Case.** `==`, `like`, `rlike`, `starts_with`, `ends_with` and `in` are case-sensitive; a `text` field
  behaves like a `keyword` field: whole value, case-sensitive ("ES|QL limitations", sections "text fields
  behave like keyword fields" and "Full-text search",
  https://elastic.co/guide/en/elasticsearch/reference/current/esql-limitations.html). A text field with a
  keyword-family multi-field is read from that multi-field (so its duplicate values are dropped).
* **`like`** patterns know `*` (any string) and `?` (one character); `\\` escapes only `*`, `?` and `\\`, any
  other use (including a trailing `\\`) is rejected when the query is parsed, as Elasticsearch does with
  "Invalid sequence - escape character is not followed by special wildcard char" (ES|QL operators, LIKE;
  source `esql-core` `StringUtils.wildcardToJavaPattern`). pySigma's ES|QL backend 2.1.1 emits single-escaped
  backslashes (`like "*\\\\tmp\\\\*"`), which Elasticsearch rejects; so does this engine.
* **`rlike`** is a Lucene regular expression over the whole value ("Regular expression syntax",
  https://elastic.co/docs/reference/query-languages/query-dsl/regexp-syntax), parsed here with Lucene's own
  grammar (RegExp.java: `^`/`$` are ordinary characters, a leading `?`/`*`/`|` is a literal, `\\d \\s \\w` and
  their negations, `\\` before another letter is an error) and rendered as RE2 for `regexp_full_match`.
  Elasticsearch enables all optional operators: `@` (any string) and `#` (nothing) are translated; `&`
  (intersection), `~` (complement) and `<n-m>` (numeric interval) have no RE2 equivalent and raise
  `EsqlUnsupportedError`. `(?i)` is not a flag in Lucene: `(?i)abc` matches the literal text `?iabc`.
* **Unknown columns.** A field the mapping does not have fails the query with `Unknown column [x]`
  (`EsqlUnknownColumnError`), even when some documents carry it: the table has exactly the columns of the
  field list the caller passes (`field_types`, dotted name -> Elasticsearch type). Patterns add the fields
  documents create: `a.*: keyword`, `a: object(keyword)` (the project's notation for dynamic templates such
  as `kubernetes.audit.annotations.*`), and `a.*: object` / `*: object` for dynamic mapping ("Dynamic field
  mapping": boolean, long, float, date detection, other strings text+keyword, read like a keyword); such a
  field exists only once a document has it. Document fields without a column are listed in
  `EsqlTable.unmapped_fields`; a document Elasticsearch would reject (a value where the mapping has an
  object, `"abc"` in a long, two values for a constant_keyword) raises `EsqlDocumentError`. Multi-fields
  (`process.command_line.text`) are indexed from their parent's value.
* **Types.** ES|QL is typed and Elasticsearch's analyser rejects mismatches, so does this engine
  (`EsqlVerificationError`): `like`/`rlike`/`starts_with`/... need a string, `cidr_match` an `ip`, a string
  field cannot be compared with a number (`event.code == 4688`) nor a number with a string; string literals
  are implicitly cast to `ip`, `date`, `version` and `boolean` ("ES|QL implicit casting",
  https://elastic.co/docs/reference/query-languages/esql/esql-implicit-casting). `ip` values are stored as
  128-bit integers (IPv4 mapped into ::ffff:0:0/96, Elasticsearch's encoding), so equality, ordering and
  `cidr_match` are exact integer comparisons in SQL (no Python UDF: DuckDB's Python UDFs need numpy, which
  the project does not carry); dates are UTC timestamps. `to_lower`/`to_upper` apply Java's full Unicode
  case mappings ("ß" -> "SS"), which DuckDB's lower/upper lack, by rewriting those characters first.
* **Unsupported field types.** "Querying a column with an unsupported type returns an error" (ES|QL
  limitations, "Unsupported types": `flattened`, `nested`, `binary`, ranges, ...): `EsqlVerificationError`
  `Cannot use field [x] with unsupported type [flattened]`. ES|QL 9.1 has no columns for the keys inside a
  flattened field (only the root is resolved; FIELD_EXTRACT and dotted access came later: "ES|QL and
  flattened fields", https://www.elastic.co/docs/reference/query-languages/esql/esql-flattened-fields, and
  elastic/elasticsearch#143494, #152537), so `docker.event.actor.attributes.image` under a flattened
  `docker.event.actor.attributes` is an unknown column. Fields inside `nested` objects are not returned by
  ES|QL at all; using one raises `EsqlUnsupportedError`.
* **Index.** `FROM` patterns (comma lists, `*` wildcards, `-exclusions`, `::data` selectors) are recorded;
  when the caller says which index the documents live in, a query whose patterns do not select it raises
  `EsqlUnknownIndexError`.

Aggregations, as pySigma's ES|QL backend writes correlation rules (`EsqlQuery.run` then returns the documents
behind the groups that survive, the correlation's verdict, docs/formats.md "Correlation rules"):
`FROM ... | WHERE ... [| EVAL event_type=CASE(<condition>, "<rule>", ...)]
| EVAL timebucket=DATE_TRUNC(<n> <unit>, @timestamp)
| STATS <name>=COUNT() | COUNT_DISTINCT(<field>) BY <column>, ... | WHERE <name> <op> <n>`.

* **EVAL** adds a column for every row; a later command may name it ("ES|QL EVAL command"). Only `CASE` and
  `DATE_TRUNC` are evaluated; `WHERE` between `EVAL` and `STATS` is refused.
* **CASE** "returns the value that belongs to the first condition that evaluates to true"; with an even
  number of arguments and no true condition it is null (a null or multi-valued condition is not true)
  ("ES|QL conditional functions", https://www.elastic.co/docs/reference/query-languages/esql/functions-operators/conditional-functions-and-expressions).
* **DATE_TRUNC** "rounds down a date to the closest interval"
  (https://elastic.co/docs/reference/query-languages/esql/functions-operators/date-time-functions/date_trunc):
  a time duration (milliseconds to hours) becomes `Rounding.Builder(TimeValue)`, a fixed interval counted
  from 1970-01-01T00:00:00Z in UTC, and `1 day` the calendar day, also UTC midnight
  (`DateTrunc.createRounding`, x-pack/plugin/esql .../scalar/date/DateTrunc.java); time span units are
  those of "ES|QL time spans" (`10minutes` is `10 minutes`). Weeks and longer periods are refused.
* **STATS ... BY**: one row per distinct combination of the BY values, and null is a value of its own:
  the documentation's `STATS count = COUNT(emp_no) BY languages` returns a row `10 | null`
  (https://www.elastic.co/docs/reference/query-languages/esql/commands/stats-by). Grouping by a multi-valued
  field puts the row in every group (elastic/elasticsearch#135109); this engine refuses it
  (`EsqlUnsupportedError`) rather than guess. `COUNT()` counts rows ("If omitted, equivalent to COUNT(*)");
  `COUNT_DISTINCT(f)` counts distinct non-null values, exactly below its precision threshold (3000 by
  default; "ES|QL aggregation functions"); a multi-valued `f` is refused. Exactly one named aggregation
  and a BY clause are supported.
* **WHERE after STATS** sees only the aggregation and the BY columns (others are unknown columns).

Not modelled: the implicit `LIMIT 1000` (every matching document is returned), `ignore_above` and normalizers
on keyword fields, the multi-value warnings, `scaled_float` scaling factors, the final-sigma rule of
`to_lower`, ordering of `version` values (refused).

Documents are loaded once per (documents, field_types) pair into an in-memory DuckDB database: call
`EsqlTable(documents, field_types)` and `EsqlQuery.run(table)` to control that, or `EsqlQuery.matching`, which
keeps a few recent tables (the documents must not be mutated between calls).
"""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import json
import math
import re
import struct
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import duckdb
from antlr4 import CommonTokenStream, InputStream  # type: ignore[import-untyped]
from antlr4.error.ErrorListener import ErrorListener  # type: ignore[import-untyped]
from esql_parser.EsqlBaseLexer import EsqlBaseLexer  # type: ignore[import-untyped]
from esql_parser.EsqlBaseParser import EsqlBaseParser  # type: ignore[import-untyped]

__all__ = [
    "EsqlDocumentError",
    "EsqlQuery",
    "EsqlSyntaxError",
    "EsqlTable",
    "EsqlUnknownColumnError",
    "EsqlUnknownIndexError",
    "EsqlUnsupportedError",
    "EsqlVerificationError",
]

P = EsqlBaseParser


# ----------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------


class EsqlSyntaxError(ValueError):
    """The grammar (or a LIKE/RLIKE pattern) rejects the text; `line`/`column` are 1-based, like ES's."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.line, self.column = line, column
        super().__init__(f"line {line}:{column}: {message}" if line is not None else message)


class EsqlVerificationError(ValueError):
    """Elasticsearch's analyser would reject the query against this mapping (HTTP 400 "Found 1 problem")."""


class EsqlUnknownColumnError(EsqlVerificationError):
    """The query names a field the mapping does not have: `Unknown column [x]`."""


class EsqlUnknownIndexError(EsqlVerificationError):
    """The query's FROM patterns do not select the index the documents live in."""


class EsqlUnsupportedError(ValueError):
    """Valid ES|QL that this engine does not evaluate (named in the message); never a silent guess."""


class EsqlDocumentError(ValueError):
    """Elasticsearch would refuse to index this document with this mapping (mapper_parsing_exception)."""


# ----------------------------------------------------------------------------
# The expression tree
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Src:
    text: str
    line: int
    column: int  # 1-based

    def at(self) -> str:
        return f"line {self.line}:{self.column}"


@dataclass(frozen=True)
class _Field:
    src: _Src
    name: str


@dataclass(frozen=True)
class _Lit:
    src: _Src
    value: object  # str, int, float, bool or None
    type: str  # keyword, integer, long, unsigned_long, double, boolean, null


@dataclass(frozen=True)
class _Cmp:
    src: _Src
    op: str  # == != < <= > >=
    left: _Expr
    right: _Expr


@dataclass(frozen=True)
class _Logic:
    src: _Src
    op: str  # and, or
    left: _Expr
    right: _Expr


@dataclass(frozen=True)
class _Not:
    src: _Src
    operand: _Expr


@dataclass(frozen=True)
class _In:
    src: _Src
    value: _Expr
    items: tuple[_Expr, ...]
    negated: bool


@dataclass(frozen=True)
class _IsNull:
    src: _Src
    value: _Expr
    negated: bool


@dataclass(frozen=True)
class _Like:
    src: _Src
    value: _Expr
    patterns: tuple[str, ...]  # SQL LIKE patterns (escape character `\`)
    negated: bool


@dataclass(frozen=True)
class _RLike:
    src: _Src
    value: _Expr
    regex: str  # RE2, whole-value
    negated: bool


@dataclass(frozen=True)
class _Call:
    src: _Src
    name: str  # lower case
    args: tuple[_Expr, ...]


_Expr = _Field | _Lit | _Cmp | _Logic | _Not | _In | _IsNull | _Like | _RLike | _Call


@dataclass(frozen=True)
class _Assign:
    """`EVAL name = CASE(...)` (args: condition, value, ...) or `EVAL name = DATE_TRUNC(span, field)`."""

    src: _Src
    name: str
    function: str  # case | date_trunc
    args: tuple[_Expr, ...]
    interval_ms: int = 0  # date_trunc


@dataclass(frozen=True)
class _Aggregation:
    """`[EVAL ...] | STATS name = COUNT() | COUNT_DISTINCT(field) BY ... [| WHERE ...]`."""

    evals: tuple[_Assign, ...]
    src: _Src
    name: str
    function: str  # count | count_distinct
    argument: _Field | None
    by: tuple[_Field, ...]
    having: tuple[_Expr, ...]


_Statement = tuple[tuple[str, ...], tuple[str, ...], tuple[_Expr, ...], _Aggregation | None]
# "ES|QL time spans": the units DATE_TRUNC accepts here (fixed lengths), in milliseconds.
_TIME_UNITS: Final = {
    **dict.fromkeys(("millisecond", "milliseconds", "ms"), 1),
    **dict.fromkeys(("second", "seconds", "sec", "s"), 1000),
    **dict.fromkeys(("minute", "minutes", "min"), 60_000),
    **dict.fromkeys(("hour", "hours", "h"), 3_600_000),
    **dict.fromkeys(("day", "days", "d"), 86_400_000),
}

_FUNCTIONS: Final = {  # name -> (min args, max args or None)
    "starts_with": (2, 2),
    "ends_with": (2, 2),
    "to_lower": (1, 1),
    "to_upper": (1, 1),
    "length": (1, 1),
    "cidr_match": (2, None),
}
_METADATA: Final = frozenset(  # "ES|QL metadata fields"
    {"_id", "_index", "_version", "_ignored", "_index_mode", "_score", "_size", "_source"}
)


# ----------------------------------------------------------------------------
# Parsing: Elasticsearch's own lexer and parser, then a walk of the parse tree
# ----------------------------------------------------------------------------


class _Errors(ErrorListener):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.first: EsqlSyntaxError | None = None

    def syntaxError(self, recognizer: Any, offending: Any, line: int, column: int, msg: str, e: Any) -> None:
        if self.first is None:
            self.first = EsqlSyntaxError(msg, line, column + 1)


def _unquote_string(text: str) -> str:
    """A QUOTED_STRING token's value (ES|QL `ParserUtils.unquoteString`): raw between triple quotes."""
    if text.startswith('"""'):
        return text[3:-3]
    out: list[str] = []
    body, i = text[1:-1], 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):  # the lexer admits only \t \n \r \" \\
            nxt = body[i + 1]
            out.append({"t": "\t", "n": "\n", "r": "\r"}.get(nxt, nxt))
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _unquote_identifier(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1].replace("``", "`")
    return text


def _like_to_sql(pattern: str) -> str:
    """ES|QL LIKE (`*`, `?`, `\\` before `*`/`?`/`\\` only) to a SQL LIKE pattern with ESCAPE '\\'."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            nxt = pattern[i + 1] if i + 1 < len(pattern) else ""
            if nxt not in ("*", "?", "\\"):
                raise ValueError(
                    "Invalid sequence - escape character is not followed by special wildcard char"
                )
            out.append("\\\\" if nxt == "\\" else nxt)
            i += 2
            continue
        out.append({"*": "%", "?": "_", "%": "\\%", "_": "\\_"}.get(char, char))
        i += 1
    return "".join(out)


class _Builder:
    """Walks EsqlBaseParser's tree (contexts named after the labelled alternatives of EsqlBaseParser.g4)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def src(self, ctx: Any) -> _Src:
        start, stop = ctx.start, ctx.stop
        end = stop.stop if stop is not None and stop.stop >= start.start else start.start - 1
        return _Src(self.text[start.start : end + 1], start.line, start.column + 1)

    def unsupported(self, ctx: Any, what: str) -> EsqlUnsupportedError:
        src = self.src(ctx)
        return EsqlUnsupportedError(f"{src.at()}: {what} [{src.text}] is not supported by this engine")

    # ---- commands ----
    def statement(self, tree: Any) -> _Statement:
        commands: list[Any] = []
        query = tree.query()
        while isinstance(query, P.CompositeQueryContext):
            commands.append(query.processingCommand())
            query = query.query()
        source = query.sourceCommand()
        if source.fromCommand() is None:
            raise self.unsupported(source, "source command")
        patterns, metadata = self.from_command(source.fromCommand())
        conditions: list[_Expr] = []
        evals: list[_Assign] = []
        stats: tuple[_Src, str, str, _Field | None, tuple[_Field, ...]] | None = None
        having: list[_Expr] = []
        for command in reversed(commands):
            where = command.whereCommand()
            if where is not None and stats is not None:
                having.append(self.boolean(where.booleanExpression()))
            elif where is not None and not evals:
                conditions.append(self.boolean(where.booleanExpression()))
            elif command.evalCommand() is not None and stats is None:
                evals.extend(self.eval_command(command.evalCommand()))
            elif command.statsCommand() is not None and stats is None:
                stats = self.stats_command(command.statsCommand())
            else:
                raise self.unsupported(command, "processing command")
        if stats is None:
            if evals:
                raise EsqlUnsupportedError(
                    f"{evals[0].src.at()}: EVAL without STATS is not supported by this engine"
                )
            return patterns, metadata, tuple(conditions), None
        aggregation = _Aggregation(tuple(evals), *stats, tuple(having))
        return patterns, metadata, tuple(conditions), aggregation

    @staticmethod
    def _function_of(ctx: Any) -> Any:
        """The functionExpression a booleanExpression consists of, or None."""
        if not isinstance(ctx, P.BooleanDefaultContext):
            return None
        value = ctx.valueExpression()
        if not isinstance(value, P.ValueExpressionDefaultContext):
            return None
        operator = value.operatorExpression()
        if not isinstance(operator, P.OperatorExpressionDefaultContext):
            return None
        primary = operator.primaryExpression()
        return primary.functionExpression() if isinstance(primary, P.FunctionContext) else None

    def _function_name(self, ctx: Any) -> str:
        name_ctx = ctx.functionName().identifierOrParameter()
        if name_ctx.identifier() is None:
            raise self.unsupported(name_ctx, "query parameter")
        return str(_unquote_identifier(name_ctx.identifier().getText()).lower())

    def eval_command(self, ctx: Any) -> list[_Assign]:
        assigns: list[_Assign] = []
        for field_ctx in ctx.fields().field():
            src = self.src(field_ctx)
            function = self._function_of(field_ctx.booleanExpression())
            if field_ctx.qualifiedName() is None or function is None:
                raise self.unsupported(field_ctx, "EVAL expression")
            name = self.qualified_name(field_ctx.qualifiedName())
            function_name = self._function_name(function)
            if function.ASTERISK() is not None or function.mapExpression() is not None:
                raise self.unsupported(function, f"{function_name}() argument")
            arguments = list(function.booleanExpression())
            if function_name == "case":
                args = tuple(self.boolean(arg) for arg in arguments)
                if len(args) < 2:
                    raise EsqlVerificationError(
                        f"{src.at()}: error building [case]: expects at least 2 arguments"
                    )
                for value in args[1::2] + ((args[-1],) if len(args) % 2 else ()):
                    if not (isinstance(value, _Lit) and isinstance(value.value, str)):
                        raise self.unsupported(function, "CASE value other than a string literal")
                assigns.append(_Assign(src, name, "case", args))
            elif function_name == "date_trunc":
                if len(arguments) != 2:
                    raise EsqlVerificationError(
                        f"{src.at()}: error building [date_trunc]: expects exactly 2 arguments"
                    )
                assigns.append(
                    _Assign(
                        src, name, "date_trunc", (self.boolean(arguments[1]),), self.interval(arguments[0])
                    )
                )
            else:
                raise self.unsupported(function, f"EVAL function {function_name}()")
        return assigns

    def interval(self, ctx: Any) -> int:
        """A time span literal (`10 minutes`, `10minutes`, `1h`) in milliseconds."""
        src = self.src(ctx)
        constant = None
        if isinstance(ctx, P.BooleanDefaultContext):
            value = ctx.valueExpression()
            if isinstance(value, P.ValueExpressionDefaultContext):
                operator = value.operatorExpression()
                if isinstance(operator, P.OperatorExpressionDefaultContext):
                    primary = operator.primaryExpression()
                    if isinstance(primary, P.ConstantDefaultContext):
                        constant = primary.constant()
        if not isinstance(constant, P.QualifiedIntegerLiteralContext):
            raise EsqlVerificationError(f"{src.at()}: [{src.text}] is not a time span (e.g. 10 minutes)")
        count = int(constant.integerValue().getText())
        unit = constant.UNQUOTED_IDENTIFIER().getText().lower()
        if unit not in _TIME_UNITS:
            raise EsqlUnsupportedError(
                f"{src.at()}: time span unit [{unit}] is not supported by this engine (milliseconds to days)"
            )
        if count <= 0:
            raise EsqlVerificationError(f"{src.at()}: Zero or negative time interval is not supported")
        return count * _TIME_UNITS[unit]

    def stats_command(self, ctx: Any) -> tuple[_Src, str, str, _Field | None, tuple[_Field, ...]]:
        src = self.src(ctx)
        aggregations = ctx.aggFields().aggField()
        if len(aggregations) != 1 or ctx.fields() is None:
            raise self.unsupported(ctx, "STATS other than one named aggregation with BY")
        agg = aggregations[0]
        field_ctx = agg.field()
        function = self._function_of(field_ctx.booleanExpression())
        if agg.WHERE() is not None or field_ctx.qualifiedName() is None or function is None:
            raise self.unsupported(agg, "aggregation")
        name = self.qualified_name(field_ctx.qualifiedName())
        function_name = self._function_name(function)
        arguments = [self.boolean(arg) for arg in function.booleanExpression()]
        argument: _Field | None = None
        if function_name == "count" and not arguments:
            pass  # COUNT() (and COUNT(*)): rows
        elif function_name == "count_distinct" and len(arguments) == 1 and isinstance(arguments[0], _Field):
            argument = arguments[0]
        else:
            raise self.unsupported(agg, f"aggregation {function_name}()")
        by: list[_Field] = []
        for group in ctx.fields().field():
            column = self.boolean(group.booleanExpression())
            if group.qualifiedName() is not None or not isinstance(column, _Field):
                raise self.unsupported(group, "STATS grouping other than a column")
            by.append(column)
        return src, name, function_name, argument, tuple(by)

    def from_command(self, ctx: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
        body = ctx.indexPatternAndMetadataFields()
        patterns: list[str] = []
        for pattern in body.indexPattern():
            if pattern.clusterString() is not None:
                raise self.unsupported(pattern, "remote cluster index pattern")
            name = pattern.indexString() or pattern.unquotedIndexString()
            text = name.getText()
            if text.startswith("<"):
                raise self.unsupported(pattern, "date-math index pattern")
            text = _unquote_string(text) if text.startswith('"') else text
            selector = pattern.selectorString()
            for part in text.split(","):
                patterns.append(part.strip() + (f"::{selector.getText()}" if selector is not None else ""))
        metadata: list[str] = []
        if body.metadata() is not None:
            src = self.src(body.metadata())
            for token in body.metadata().UNQUOTED_SOURCE():
                for name in token.getText().split(","):
                    if name not in _METADATA:
                        raise EsqlVerificationError(f"{src.at()}: unsupported metadata field [{name}]")
                    metadata.append(name)
        return tuple(patterns), tuple(metadata)

    # ---- boolean expressions ----
    def boolean(self, ctx: Any) -> _Expr:
        src = self.src(ctx)
        if isinstance(ctx, P.LogicalNotContext):
            return _Not(src, self.boolean(ctx.booleanExpression()))
        if isinstance(ctx, P.BooleanDefaultContext):
            return self.value(ctx.valueExpression())
        if isinstance(ctx, P.LogicalBinaryContext):
            left, right = ctx.booleanExpression()
            return _Logic(src, ctx.operator.text.lower(), self.boolean(left), self.boolean(right))
        if isinstance(ctx, P.LogicalInContext):
            value, *items = (self.value(v) for v in ctx.valueExpression())
            return _In(src, value, tuple(items), ctx.NOT() is not None)
        if isinstance(ctx, P.IsNullContext):
            return _IsNull(src, self.value(ctx.valueExpression()), ctx.NOT() is not None)
        if isinstance(ctx, P.RegexExpressionContext):
            return self.regex(ctx.regexBooleanExpression())
        if isinstance(ctx, P.MatchExpressionContext):
            raise self.unsupported(ctx, "full-text match")
        raise self.unsupported(ctx, "expression")

    def regex(self, ctx: Any) -> _Expr:
        src = self.src(ctx)
        value = self.value(ctx.valueExpression())
        negated = ctx.NOT() is not None
        if isinstance(ctx, P.RlikeExpressionContext):
            pattern = _unquote_string(ctx.string().getText())
            try:
                regex = _LuceneRegExp(pattern).to_re2()
            except EsqlUnsupportedError as exc:
                raise EsqlUnsupportedError(f"{src.at()}: RLIKE [{pattern}]: {exc}") from None
            except ValueError as exc:
                message = f"Invalid pattern for RLIKE [{pattern}]: [{exc}]"
                raise EsqlSyntaxError(message, src.line, src.column) from None
            return _RLike(src, value, regex, negated)
        strings = [ctx.string()] if isinstance(ctx, P.LikeExpressionContext) else ctx.string()
        sql_patterns: list[str] = []
        for string in strings:
            pattern = _unquote_string(string.getText())
            try:
                sql_patterns.append(_like_to_sql(pattern))
            except ValueError as exc:
                message = f"Invalid pattern for LIKE [{pattern}]: [{exc}]"
                raise EsqlSyntaxError(message, src.line, src.column) from None
        return _Like(src, value, tuple(sql_patterns), negated)

    # ---- value expressions ----
    def value(self, ctx: Any) -> _Expr:
        if isinstance(ctx, P.ComparisonContext):
            left, right = ctx.operatorExpression()
            op = ctx.comparisonOperator().getText()
            return _Cmp(self.src(ctx), op, self.operator(left), self.operator(right))
        return self.operator(ctx.operatorExpression())

    def operator(self, ctx: Any) -> _Expr:
        if isinstance(ctx, P.OperatorExpressionDefaultContext):
            return self.primary(ctx.primaryExpression())
        if isinstance(ctx, P.ArithmeticUnaryContext):
            inner = self.operator(ctx.operatorExpression())
            if isinstance(inner, _Lit) and isinstance(inner.value, (int, float)) and inner.type != "boolean":
                if ctx.MINUS() is None:
                    return _Lit(self.src(ctx), inner.value, inner.type)
                return self.number(self.src(ctx), repr(-inner.value))
            raise self.unsupported(ctx, "arithmetic")
        raise self.unsupported(ctx, "arithmetic")

    def primary(self, ctx: Any) -> _Expr:
        src = self.src(ctx)
        if isinstance(ctx, P.ConstantDefaultContext):
            return self.constant(ctx.constant())
        if isinstance(ctx, P.DereferenceContext):
            return _Field(src, self.qualified_name(ctx.qualifiedName()))
        if isinstance(ctx, P.ParenthesizedExpressionContext):
            return self.boolean(ctx.booleanExpression())
        if isinstance(ctx, P.FunctionContext):
            return self.function(ctx.functionExpression())
        if isinstance(ctx, P.InlineCastContext):
            raise self.unsupported(ctx, "inline cast")
        raise self.unsupported(ctx, "expression")

    def qualified_name(self, ctx: Any) -> str:
        parts: list[str] = []
        for part in ctx.identifierOrParameter():
            if part.identifier() is None:
                raise self.unsupported(part, "query parameter")
            parts.append(_unquote_identifier(part.identifier().getText()))
        return ".".join(parts)

    def function(self, ctx: Any) -> _Expr:
        src = self.src(ctx)
        name_ctx = ctx.functionName().identifierOrParameter()
        if name_ctx.identifier() is None:
            raise self.unsupported(name_ctx, "query parameter")
        name = _unquote_identifier(name_ctx.identifier().getText()).lower()
        if name not in _FUNCTIONS:
            raise self.unsupported(ctx, f"function {name}()")
        if ctx.ASTERISK() is not None or ctx.mapExpression() is not None:
            raise self.unsupported(ctx, f"{name}() argument")
        args = tuple(self.boolean(arg) for arg in ctx.booleanExpression())
        low, high = _FUNCTIONS[name]
        if len(args) < low or (high is not None and len(args) > high):
            expected = f"exactly {low}" if low == high else f"at least {low}"
            raise EsqlVerificationError(
                f"{src.at()}: error building [{name}]: expects {expected} argument(s), got {len(args)}"
            )
        return _Call(src, name, args)

    def constant(self, ctx: Any) -> _Expr:
        src = self.src(ctx)
        if isinstance(ctx, P.NullLiteralContext):
            return _Lit(src, None, "null")
        if isinstance(ctx, P.BooleanLiteralContext):
            return _Lit(src, ctx.getText().lower() == "true", "boolean")
        if isinstance(ctx, P.StringLiteralContext):
            return _Lit(src, _unquote_string(ctx.string().getText()), "keyword")
        if isinstance(ctx, (P.IntegerLiteralContext, P.DecimalLiteralContext)):
            return self.number(src, ctx.getText())
        if isinstance(ctx, P.QualifiedIntegerLiteralContext):
            raise self.unsupported(ctx, "time span literal")
        if isinstance(ctx, P.InputParameterContext):
            raise self.unsupported(ctx, "query parameter")
        raise self.unsupported(ctx, "array literal")

    @staticmethod
    def number(src: _Src, text: str) -> _Lit:
        """As StringUtils.parseIntegral/parseDouble: narrowest of integer, long, unsigned_long; or double."""
        try:
            integer = int(text)
        except ValueError:
            value = float(text)
            if math.isinf(value):
                raise EsqlSyntaxError(f"Number [{text}] is too large", src.line, src.column) from None
            return _Lit(src, value, "double")
        if -(2**31) <= integer < 2**31:
            return _Lit(src, integer, "integer")
        if -(2**63) <= integer < 2**63:
            return _Lit(src, integer, "long")
        if 0 <= integer < 2**64:
            return _Lit(src, integer, "unsigned_long")
        raise EsqlSyntaxError(f"Number [{text}] is too large", src.line, src.column)


def _parse(text: str) -> _Statement:
    errors = _Errors()
    lexer = EsqlBaseLexer(InputStream(text))
    lexer.removeErrorListeners()
    lexer.addErrorListener(errors)
    parser = EsqlBaseParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(errors)
    try:
        tree = parser.singleStatement()
    except Exception as exc:  # the Python ANTLR runtime raises a bare Exception on an unbalanced `)`
        if errors.first is not None:
            raise errors.first from None
        line, column = lexer._tokenStartLine, lexer._tokenStartColumn + 1
        bad = text[lexer._tokenStartCharIndex : lexer._tokenStartCharIndex + 1]
        raise EsqlSyntaxError(f"extraneous input '{bad}' ({exc})", line, column) from None
    if errors.first is not None:
        raise errors.first
    return _Builder(text).statement(tree)


# ----------------------------------------------------------------------------
# Lucene regular expressions (RegExp.java, all optional operators on) rendered as RE2
# ----------------------------------------------------------------------------

_PREDEFINED: Final = {"d": "0-9", "s": " \\t\\n\\r", "w": "a-zA-Z_0-9"}
_NOTHING: Final = "[^\\x00-\\x{10FFFF}]"


def _re2_char(char: str) -> str:
    if char.isascii() and (char.isalnum() or char == "_"):
        return char
    return f"\\x{{{ord(char):X}}}"


class _LuceneRegExp:
    """Recursive descent following Lucene's RegExp parser method by method; output is an RE2 pattern."""

    def __init__(self, pattern: str) -> None:
        self.s, self.pos = pattern, 0

    def to_re2(self) -> str:
        if not self.s:
            return "(?s)"
        body = self.union()
        if self.more():
            raise ValueError(f"end-of-string expected at position {self.pos}")
        return "(?s)" + body

    def more(self) -> bool:
        return self.pos < len(self.s)

    def peek(self, chars: str) -> bool:
        return self.more() and self.s[self.pos] in chars

    def match(self, char: str) -> bool:
        if self.peek(char):
            self.pos += 1
            return True
        return False

    def next(self) -> str:
        if not self.more():
            raise ValueError("unexpected end-of-string")
        self.pos += 1
        return self.s[self.pos - 1]

    @staticmethod
    def unsupported(what: str) -> EsqlUnsupportedError:
        return EsqlUnsupportedError(
            f"Lucene regexp {what} has no RE2 equivalent; not supported by this engine"
        )

    def union(self) -> str:
        first = self.inter()
        if self.match("|"):
            return f"(?:{first}|{self.union()})"
        return first

    def inter(self) -> str:
        first = self.concat()
        if self.peek("&"):
            raise self.unsupported("intersection '&'")
        return first

    def concat(self) -> str:
        items = [self.repeat()]
        while self.more() and not self.peek(")|&"):
            items.append(self.repeat())
        return "".join(items)

    def repeat(self) -> str:
        atom = self.compl()
        while self.peek("?*+{"):
            char = self.next()
            if char == "{":
                start = self.pos
                while self.peek("0123456789"):
                    self.pos += 1
                if start == self.pos:
                    raise ValueError(f"integer expected at position {self.pos}")
                low = int(self.s[start : self.pos])
                high: int | None = low
                if self.match(","):
                    start = self.pos
                    while self.peek("0123456789"):
                        self.pos += 1
                    high = int(self.s[start : self.pos]) if start != self.pos else None
                if not self.match("}"):
                    raise ValueError(f"expected '}}' at position {self.pos}")
                if max(low, high or 0) > 1000 or (high is not None and high < low):
                    raise self.unsupported(f"repetition {{{low},{'' if high is None else high}}}")
                char = f"{{{low}}}" if high == low else f"{{{low},{'' if high is None else high}}}"
            atom = f"(?:{atom}){char}"
        return atom

    def compl(self) -> str:
        if self.peek("~"):
            raise self.unsupported("complement '~'")
        return self.char_class_exp()

    def char_class_exp(self) -> str:
        if not self.match("["):
            return self.simple()
        negate = self.match("^")
        plain: list[str] = []  # bracket items
        negated_sets: list[str] = []  # \D \S \W: complement sets, only expressible as alternatives
        self.char_class(plain, negated_sets)
        while self.more() and not self.peek("]"):
            self.char_class(plain, negated_sets)
        if not self.match("]"):
            raise ValueError(f"expected ']' at position {self.pos}")
        if negate:
            if negated_sets:
                raise self.unsupported("negated class containing \\D, \\S or \\W")
            return "[^" + "".join(plain) + "]"
        alternatives = (["[" + "".join(plain) + "]"] if plain else []) + [f"[^{n}]" for n in negated_sets]
        return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"

    def predefined(self) -> str | None:
        """RegExp.matchPredefinedCharacterClass: consumes a backslash; returns a class body or a char."""
        if not self.match("\\"):
            return None
        if self.peek("dDwWsS"):
            char = self.next()
            return ("^" if char.isupper() else "") + _PREDEFINED[char.lower()]
        if self.peek("\\"):
            return _re2_char(self.next())
        if self.peek("abcefghijklmnopqrtuvxyzABCEFGHIJKLMNOPQRTUVXYZ"):
            raise ValueError(f"invalid character class \\{self.next()}")
        return None

    def char_exp(self) -> str:
        self.match("\\")
        return self.next()

    def char_class(self, plain: list[str], negated_sets: list[str]) -> None:
        start = self.pos
        found = self.predefined()
        if found is not None:
            if self.s[start + 1] == "\\":  # an escaped backslash is an ordinary character
                plain.append(found)
            elif found.startswith("^"):
                negated_sets.append(found[1:])
            else:
                plain.append(found)
            return
        low = self.char_exp()
        if self.match("-"):
            high = self.char_exp()
            if ord(high) < ord(low):
                raise ValueError(f"invalid range: from ({ord(low)}) cannot be > to ({ord(high)})")
            plain.append(f"{_re2_char(low)}-{_re2_char(high)}")
        else:
            plain.append(_re2_char(low))

    def simple(self) -> str:
        if self.match("."):
            return "."
        if self.match("#"):
            return _NOTHING
        if self.match("@"):
            return ".*"
        if self.match('"'):
            end = self.s.find('"', self.pos)
            if end < 0:
                self.pos = len(self.s)
                raise ValueError(f"expected '\"' at position {self.pos}")
            text, self.pos = self.s[self.pos : end], end + 1
            return "(?:" + "".join(_re2_char(c) for c in text) + ")"
        if self.match("("):
            if self.match(")"):
                return "(?:)"
            inner = self.union()
            if not self.match(")"):
                raise ValueError(f"expected ')' at position {self.pos}")
            return f"(?:{inner})"
        if self.peek("<"):
            raise self.unsupported("interval/automaton '<...>'")
        start = self.pos
        found = self.predefined()
        if found is not None:
            if self.s[start + 1] == "\\":
                return found
            return f"[{found}]"
        return _re2_char(self.char_exp())


# ----------------------------------------------------------------------------
# Mapping types and value conversion (what Elasticsearch indexes and ES|QL reads back)
# ----------------------------------------------------------------------------

# Elasticsearch field type -> ES|QL data type
_ESQL_TYPE: Final = {
    "keyword": "keyword",
    "constant_keyword": "keyword",
    "wildcard": "keyword",
    "text": "text",
    "match_only_text": "text",
    "semantic_text": "text",
    "long": "long",
    "integer": "integer",
    "short": "integer",
    "byte": "integer",
    "token_count": "integer",
    "unsigned_long": "unsigned_long",
    "double": "double",
    "float": "double",
    "half_float": "double",
    "scaled_float": "double",
    "boolean": "boolean",
    "ip": "ip",
    "date": "datetime",
    "date_nanos": "date_nanos",
    "version": "version",
}
_DUCKDB_TYPE: Final = {
    "keyword": "VARCHAR",
    "text": "VARCHAR",
    "version": "VARCHAR",
    "long": "BIGINT",
    "integer": "INTEGER",
    "unsigned_long": "UBIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "ip": "UHUGEINT",
    "datetime": "TIMESTAMP",
    "date_nanos": "TIMESTAMP_NS",
}
# ES|QL supports these, this engine does not evaluate them.
_ENGINE_UNSUPPORTED: Final = frozenset(
    {"geo_point", "geo_shape", "point", "shape", "alias", "aggregate_metric_double", "counter_long"}
)
# "Unsupported types" of the ES|QL limitations page (and their relatives).
_ESQL_UNSUPPORTED: Final = frozenset(
    {
        "flattened",
        "nested",
        "binary",
        "completion",
        "dense_vector",
        "sparse_vector",
        "date_range",
        "double_range",
        "float_range",
        "integer_range",
        "ip_range",
        "long_range",
        "histogram",
        "rank_feature",
        "rank_features",
        "search_as_you_type",
        "percolator",
        "join",
        "murmur3",
        "annotated_text",
    }
)
_CONTAINERS: Final = frozenset({"object", "group"})
_DEDUPED: Final = frozenset({"keyword", "constant_keyword", "wildcard", "version", "ip"})
_KEYWORD_FAMILY: Final = frozenset({"keyword", "constant_keyword", "wildcard"})
_INT_RANGE: Final = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "token_count": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
    "unsigned_long": (0, 2**64 - 1),
}
_MV_COLUMN: Final = "_esql_mv"
_ROW_COLUMN: Final = "_esql_row"
_TABLE: Final = "esql_docs"


def _ip_to_int(text: str) -> int:
    """Elasticsearch's ip encoding as one 128-bit number: IPv6, IPv4 mapped into ::ffff:0:0/96."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv4Address):
        return 0xFFFF_0000_0000 | int(address)
    return int(address)


def _cidr_range(text: str) -> tuple[int, int]:
    network = ipaddress.ip_network(text, strict=False)
    low, high = int(network.network_address), int(network.broadcast_address)
    if isinstance(network, ipaddress.IPv4Network):
        return 0xFFFF_0000_0000 | low, 0xFFFF_0000_0000 | high
    return low, high


def _parse_date(value: object) -> dt.datetime:
    """`strict_date_optional_time||epoch_millis`, Elasticsearch's default date format; result in naive UTC."""
    if isinstance(value, bool):
        raise ValueError("not a date")
    if isinstance(value, (int, float)):
        return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=value)
    if isinstance(value, str):
        if re.fullmatch(r"\d{4}", value):  # strict_date_optional_time is tried first: a year
            return dt.datetime(int(value), 1, 1)
        if re.fullmatch(r"-?\d+(\.\d+)?", value):
            return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=float(value))
        if "/" in value:  # the second of dynamic mapping's date formats
            for layout in ("%Y/%m/%d %H:%M:%S %z", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %z", "%Y/%m/%d"):
                try:
                    parsed = dt.datetime.strptime(value, layout)
                    break
                except ValueError:
                    continue
            else:
                raise ValueError(f"unparseable date [{value}]")
        else:
            parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        return parsed
    raise ValueError("not a date")


_DATE_DETECTION: Final = re.compile(  # dynamic_date_formats: strict_date_optional_time, yyyy/MM/dd HH:mm:ss Z
    r"\d{4}-\d{2}-\d{2}(T\d{2}(:\d{2}(:\d{2}([.,]\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?"
    r"|\d{4}/\d{2}/\d{2}( \d{2}:\d{2}:\d{2})?( [+-]\d{4})?"
)


def _dynamic_type(value: object) -> str:
    """Elasticsearch's dynamic field mapping of a new field from its first value ("Dynamic field mapping",
    https://elastic.co/docs/manage-data/data-store/mapping/dynamic-field-mapping): a string becomes text with
    a `.keyword` sub-field, which ES|QL reads like a keyword; date detection is on, numeric detection off."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str) and _DATE_DETECTION.fullmatch(value):
        return "date"
    return "keyword"


def _to_keyword(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return json.dumps(value)
    raise ValueError("not a keyword")


def _convert(es_type: str, value: object) -> str:
    """One source value as indexed by `es_type`, rendered as text DuckDB casts to the column type."""
    if es_type in _INT_RANGE:
        if isinstance(value, bool):
            raise ValueError("booleans are not numbers")
        if isinstance(value, str):
            try:
                number: float = int(value)
            except ValueError:
                number = float(value)
        elif isinstance(value, (int, float)):
            number = value
        else:
            raise ValueError("not a number")
        if isinstance(number, float):
            if not math.isfinite(number):
                raise ValueError("not a finite number")
            number = math.trunc(number)  # coerce: "truncate fractions for integers"
        low, high = _INT_RANGE[es_type]
        if not low <= number <= high:
            raise ValueError(f"out of range for {es_type}")
        return str(int(number))
    if es_type in ("double", "float", "half_float", "scaled_float"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError("not a number")
        real = float(value)
        if not math.isfinite(real):
            raise ValueError("not a finite number")
        if es_type == "float":
            real = struct.unpack("f", struct.pack("f", real))[0]
        elif es_type == "half_float":
            real = struct.unpack("e", struct.pack("e", real))[0]
        return repr(real)
    if es_type == "boolean":
        if value is True or value == "true":
            return "true"
        if value is False or value in ("false", ""):
            return "false"
        raise ValueError('only true, false, "true", "false" and "" are booleans')
    if es_type == "ip":
        if not isinstance(value, str):
            raise ValueError("not an IP address string")
        return str(_ip_to_int(value))
    if es_type in ("date", "date_nanos"):
        parsed = _parse_date(value)
        if es_type == "date":
            parsed = parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)
        return parsed.isoformat(sep=" ")
    return _to_keyword(value)


# ----------------------------------------------------------------------------
# The table: documents as ES|QL sees them
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    name: str  # the field name
    sql: str  # the quoted DuckDB column
    es_type: str  # the mapping type
    esql_type: str  # ES|QL data type, or "unsupported"/"engine-unsupported"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _index_matches(patterns: Sequence[str], index: str) -> bool:
    """Elasticsearch's index expression resolution for one concrete index (only `*` is a wildcard)."""
    selected = False
    for position, raw in enumerate(patterns):
        pattern, _, selector = raw.partition("::")
        if selector not in ("", "data", "*"):
            continue
        exclude = position > 0 and pattern.startswith("-")
        if exclude:
            pattern = pattern[1:]
        if "*" in pattern and index.startswith(".") and not pattern.startswith("."):
            continue  # wildcards do not select hidden (dot-prefixed) indices
        regex = ".*".join(re.escape(part) for part in pattern.split("*"))
        if re.fullmatch(regex, index):
            selected = not exclude
    return selected


class _Schema:
    """The caller's field list: concrete names, containers, and patterns for fields mapped on first sight.

    `a.b: object(keyword)` (or `a.b.*: keyword`) maps every field below `a.b` as keyword when a document
    brings it (a dynamic template); `a.b.*: object` (or `*: object`, for a data stream with `dynamic: true`)
    maps it the way Elasticsearch's dynamic mapping does, from the first value.
    """

    def __init__(self, field_types: Mapping[str, str]) -> None:
        self.concrete: dict[str, str] = {}
        patterns: list[tuple[str, str]] = []
        for name, raw in field_types.items():
            es_type = raw.strip().lower()
            wrapped = re.fullmatch(r"object\((\w+)\)", es_type)
            inner = None
            if wrapped or es_type == "object":
                inner = wrapped.group(1) if wrapped else "dynamic"
                inner = inner if inner in _ESQL_TYPE else "dynamic"
                es_type = "object"
            if "*" in name:
                patterns.append((name, inner or es_type))
                continue
            if name in (_MV_COLUMN, _ROW_COLUMN):
                raise ValueError(f"field [{name}] collides with a column this engine reserves")
            self.concrete[name] = es_type
            if wrapped:
                patterns.append((name + ".*", inner or "dynamic"))
        for name, es_type in (*self.concrete.items(), *patterns):
            self.check_type(name, es_type)
        patterns.sort(key=lambda item: -len(item[0].replace("*", "")))  # the most specific pattern first
        self.patterns = [(re.compile(".*".join(map(re.escape, n.split("*")))), t) for n, t in patterns]
        self.stops = {n for n, t in self.concrete.items() if t in ("flattened", "nested")}

    @staticmethod
    def check_type(name: str, es_type: str) -> None:
        known = _ESQL_TYPE.keys() | _ENGINE_UNSUPPORTED | _ESQL_UNSUPPORTED | _CONTAINERS | {"dynamic"}
        if es_type not in known:
            raise ValueError(f"field [{name}]: unknown Elasticsearch field type [{es_type}]")

    def leaf_type(self, path: str) -> str | None:
        es_type = self.concrete.get(path)
        if es_type is not None:
            return None if es_type in _CONTAINERS else es_type
        if self.parent_leaf(path) is not None:
            return None  # a multi-field: gets its values from the parent, never from the document
        for regex, pattern_type in self.patterns:
            if regex.fullmatch(path):
                return pattern_type
        return None

    def parent_leaf(self, name: str) -> str | None:
        """The field `name` is a multi-field of (`process.command_line` for `process.command_line.text`)."""
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            parent = ".".join(parts[:cut])
            es_type = self.concrete.get(parent)
            if es_type is not None:
                if es_type in _CONTAINERS or es_type in ("flattened", "nested"):
                    return None
                return parent
        return None

    def enclosing(self, name: str, types: frozenset[str]) -> str | None:
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            parent = ".".join(parts[:cut])
            if self.concrete.get(parent) in types:
                return parent
        return None


def _flatten(value: object, path: str, out: dict[str, list[object]], stops: set[str]) -> None:
    if path in stops:
        return  # flattened/nested: ES|QL reads nothing inside
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(item, f"{path}.{key}" if path else str(key), out, stops)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _flatten(item, path, out, stops)
    elif value is not None:
        out.setdefault(path, []).append(value)


class EsqlTable:
    """Documents loaded into DuckDB with the columns of `field_types` (dotted name -> Elasticsearch type).

    Row `i` is `documents[i]`. `index`, when given, is the index the documents live in; queries whose FROM
    patterns do not select it raise `EsqlUnknownIndexError`. `unmapped_fields` lists document fields that
    have no column (not in the field list), which ES|QL cannot see either.
    """

    def __init__(
        self,
        documents: Sequence[Mapping[str, Any]],
        field_types: Mapping[str, str],
        *,
        index: str | None = None,
    ) -> None:
        self.index = index
        self.schema = _Schema(field_types)
        self.lock = threading.Lock()
        flattened = [self._flatten(number, doc) for number, doc in enumerate(documents)]
        types = {name: t for name, t in self.schema.concrete.items() if t not in _CONTAINERS}
        objects = {name.rsplit(".", cut)[0] for name in types for cut in range(1, name.count(".") + 1)}
        self.unmapped_fields: set[str] = set()
        for number, doc in enumerate(flattened):
            for path in doc:
                if path in types:
                    continue
                leaf = self.schema.parent_leaf(path)
                if leaf is not None:
                    raise EsqlDocumentError(
                        f"document {number}: [{leaf}] is a {types[leaf]} field, the document gives it an "
                        f"object ([{path}])"
                    )
                if path in objects or path in self.schema.concrete:
                    raise EsqlDocumentError(
                        f"document {number}: [{path}] is an object in the mapping, "
                        "the document gives it a value"
                    )
                pattern_type = self.schema.leaf_type(path)
                if pattern_type == "dynamic":
                    pattern_type = _dynamic_type(doc[path][0])
                if pattern_type is not None:
                    types[path] = pattern_type
                else:
                    self.unmapped_fields.add(path)
        self.columns = self._columns(types)
        self._load(flattened)

    def _flatten(self, number: int, document: Mapping[str, Any]) -> dict[str, list[object]]:
        if not isinstance(document, Mapping):
            raise EsqlDocumentError(f"document {number} is not a JSON object")
        out: dict[str, list[object]] = {}
        _flatten(document, "", out, self.schema.stops)
        return out

    def _columns(self, types: Mapping[str, str]) -> dict[str, _Column]:
        columns: dict[str, _Column] = {}
        taken: set[str] = {_MV_COLUMN, _ROW_COLUMN}
        for name in sorted(types):
            es_type = types[name]
            sql_name, suffix = name, 1
            while sql_name.lower() in taken:  # DuckDB identifiers are case-insensitive
                suffix += 1
                sql_name = f"{name}#{suffix}"
            taken.add(sql_name.lower())
            if es_type in _ESQL_TYPE:
                esql_type = _ESQL_TYPE[es_type]
            elif es_type in _ENGINE_UNSUPPORTED:
                esql_type = "engine-unsupported"
            else:
                esql_type = "unsupported"
            columns[name] = _Column(name, _quote(sql_name), es_type, esql_type)
        return columns

    def _keyword_subfield(self, name: str) -> bool:
        prefix = name + "."
        return any(
            other.startswith(prefix) and t in _KEYWORD_FAMILY and "." not in other[len(prefix) :]
            for other, t in self.schema.concrete.items()
        )

    def _load(self, documents: list[dict[str, list[object]]]) -> None:
        # Which columns each document path feeds: itself, and the multi-fields indexed from its value.
        feeds: dict[str, list[tuple[_Column, bool]]] = {}
        for column in self.columns.values():
            if column.esql_type in ("unsupported", "engine-unsupported"):
                continue  # never read: any use of the column is an error
            source = self.schema.parent_leaf(column.name) if column.name in self.schema.concrete else None
            dedupe = column.es_type in _DEDUPED or (
                column.esql_type == "text" and self._keyword_subfield(column.name)
            )
            feeds.setdefault(source or column.name, []).append((column, dedupe))
        size = len(documents)
        multi: list[list[str]] = [[] for _ in documents]
        data: dict[str, list[str | None]] = {}
        constants: dict[str, str] = {}
        for number, doc in enumerate(documents):
            for path, raw in doc.items():
                for column, dedupe in feeds.get(path, ()):
                    try:
                        values = [_convert(column.es_type, v) for v in raw]
                    except (ValueError, OverflowError) as exc:
                        raise EsqlDocumentError(
                            f"document {number}: field [{column.name}] ({column.es_type}) cannot index "
                            f"{raw!r}: {exc}"
                        ) from None
                    if dedupe:
                        values = sorted(set(values), key=str.encode)
                    if column.es_type == "constant_keyword" and values:
                        held = constants.setdefault(column.name, values[0])
                        if values != [held]:
                            raise EsqlDocumentError(
                                f"document {number}: constant_keyword [{column.name}] holds [{held}], "
                                f"cannot take {values!r}"
                            )
                    if len(values) == 1:
                        data.setdefault(column.name, [None] * size)[number] = values[0]
                    else:
                        multi[number].append(column.name)
        for name, value in constants.items():  # the mapping's value applies to every document of the index
            data[name] = [value] * size

        self.connection = duckdb.connect(":memory:")
        definitions = [f"{_quote(_ROW_COLUMN)} INTEGER", f"{_quote(_MV_COLUMN)} VARCHAR[]"]
        definitions += [f"{c.sql} {_DUCKDB_TYPE.get(c.esql_type, 'VARCHAR')}" for c in self.columns.values()]
        self.connection.execute(f"CREATE TABLE {_TABLE} ({', '.join(definitions)})")
        if not documents:
            return
        names = sorted(data)
        targets = ", ".join([_quote(_ROW_COLUMN), _quote(_MV_COLUMN)] + [self.columns[n].sql for n in names])
        selects = ["unnest($1::INTEGER[])", "unnest($2::VARCHAR[][])"]
        for position, name in enumerate(names, start=3):
            duck_type = _DUCKDB_TYPE[self.columns[name].esql_type]
            selects.append(f"CAST(unnest(${position}::VARCHAR[]) AS {duck_type})")
        self.connection.execute(
            f"INSERT INTO {_TABLE} ({targets}) SELECT {', '.join(selects)}",
            [list(range(size)), multi, *(data[n] for n in names)],
        )

    def resolve(self, name: str, src: _Src) -> _Column:
        column = self.columns.get(name)
        if column is not None:
            if column.esql_type == "unsupported":
                raise EsqlVerificationError(
                    f"{src.at()}: Cannot use field [{name}] with unsupported type [{column.es_type}]"
                )
            if column.esql_type == "engine-unsupported":
                raise EsqlUnsupportedError(
                    f"{src.at()}: field [{name}] of type [{column.es_type}] is not supported by this engine"
                )
            return column
        nested = self.schema.enclosing(name, frozenset({"nested"}))
        if nested is not None:
            raise EsqlUnsupportedError(
                f"{src.at()}: [{name}] is inside the nested field [{nested}]; "
                "ES|QL does not return nested fields"
            )
        message = f"{src.at()}: Unknown column [{name}]"
        flattened = self.schema.enclosing(name, frozenset({"flattened"}))
        if flattened is not None:
            message += f" ([{flattened}] is a flattened field; ES|QL 9.1 has no columns for its keys)"
        else:
            close = difflib.get_close_matches(name, list(self.columns), n=3, cutoff=0.8)
            if len(close) == 1:
                message += f", did you mean [{close[0]}]?"
            elif close:
                message += f", did you mean any of [{', '.join(close)}]?"
        raise EsqlUnknownColumnError(message)


# ----------------------------------------------------------------------------
# Typing and SQL rendering
# ----------------------------------------------------------------------------

_STRING: Final = frozenset({"keyword", "text"})
_NUMERIC: Final = frozenset({"integer", "long", "unsigned_long", "double"})
_CASTABLE: Final = frozenset({"ip", "datetime", "date_nanos", "version", "boolean"})  # from string literals
_ORDERED: Final = _STRING | _NUMERIC | frozenset({"ip", "datetime", "date_nanos"})
_SQL_OP: Final = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
# Java's toLowerCase/toUpperCase(Locale.ROOT) apply Unicode's full mappings; DuckDB's lower/upper the simple
# ones. Characters whose full mapping has several characters are rewritten before DuckDB's function runs.
_BMP: Final = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
_FULL_LOWER: Final = {c: c.lower() for c in _BMP if len(c.lower()) > 1}
_FULL_UPPER: Final = {c: c.upper() for c in _BMP if len(c.upper()) > 1}


@dataclass(frozen=True)
class _Sql:
    sql: str
    type: str  # ES|QL type; "unknown" when rendering without a table
    is_null: str  # SQL that is true when the ES|QL value is null


class _Compiler:
    def __init__(self, table: EsqlTable | None, metadata: Sequence[str]) -> None:
        self.table, self.metadata = table, frozenset(metadata)

    def where(self, conditions: Sequence[_Expr]) -> str:
        parts: list[str] = []
        for condition in conditions:
            compiled = self.expr(condition)
            if compiled.type not in ("boolean", "null", "unknown"):
                raise EsqlVerificationError(
                    f"{condition.src.at()}: Condition expression needs to be boolean, "
                    f"found [{compiled.type.upper()}]"
                )
            parts.append(compiled.sql)
        condition_sql = " AND ".join(parts) if parts else "TRUE"
        return f"SELECT {_quote(_ROW_COLUMN)} FROM {_TABLE} WHERE {condition_sql}"

    def expr(self, node: _Expr) -> _Sql:
        method: Callable[[Any], _Sql] = getattr(self, type(node).__name__.lower())
        return method(node)

    @staticmethod
    def type_error(src: _Src, message: str) -> EsqlVerificationError:
        return EsqlVerificationError(f"{src.at()}: {message}")

    # ---- leaves ----
    def _field(self, node: _Field) -> _Sql:
        if node.name in self.metadata:
            raise EsqlUnsupportedError(
                f"{node.src.at()}: metadata field [{node.name}] is not supported by this engine"
            )
        if self.table is None:
            sql = _quote(node.name)
            return _Sql(
                sql,
                "unknown",
                f"({sql} IS NULL AND NOT list_contains({_quote(_MV_COLUMN)}, {_sql_string(node.name)}))",
            )
        column = self.table.resolve(node.name, node.src)
        mv = f"list_contains({_quote(_MV_COLUMN)}, {_sql_string(column.name)})"
        return _Sql(column.sql, column.esql_type, f"({column.sql} IS NULL AND NOT {mv})")

    def _lit(self, node: _Lit) -> _Sql:
        value = node.value
        if value is None:
            return _Sql("NULL", "null", "TRUE")
        if isinstance(value, bool):
            return _Sql("TRUE" if value else "FALSE", "boolean", "FALSE")
        if isinstance(value, str):
            return _Sql(_sql_string(value), "keyword", "FALSE")
        if isinstance(value, float):
            return _Sql(f"CAST({value!r} AS DOUBLE)", "double", "FALSE")
        return _Sql(str(value), node.type, "FALSE")

    def cast_literal(self, node: _Expr, target: str) -> _Sql | None:
        """Implicit casting of a string literal to `target` (ip, date, version, boolean); None if not one."""
        if not (isinstance(node, _Lit) and isinstance(node.value, str)) or target not in _CASTABLE:
            return None
        text = node.value
        try:
            if target == "ip":
                return _Sql(f"CAST('{_ip_to_int(text)}' AS UHUGEINT) /* {text} */", "ip", "FALSE")
            if target in ("datetime", "date_nanos"):
                stamp = _parse_date(text).isoformat(sep=" ")
                return _Sql(f"CAST('{stamp}' AS {_DUCKDB_TYPE[target]})", target, "FALSE")
        except ValueError:
            raise self.type_error(node.src, f"Cannot convert string [{text}] to [{target.upper()}]") from None
        if target == "boolean":
            return _Sql("TRUE" if text.lower() == "true" else "FALSE", "boolean", "FALSE")
        return _Sql(_sql_string(text), "version", "FALSE")

    def operands(self, src: _Src, left: _Expr, right: _Expr, ordering: bool) -> tuple[_Sql, _Sql]:
        a, b = self.expr(left), self.expr(right)
        a = self.cast_literal(left, b.type) or a
        b = self.cast_literal(right, a.type) or b
        self.check_comparable(src, a, b, ordering)
        return a, b

    def check_comparable(self, src: _Src, a: _Sql, b: _Sql, ordering: bool) -> None:
        if "unknown" in (a.type, b.type) or "null" in (a.type, b.type):
            return
        if ordering and a.type not in _ORDERED:
            if a.type == "version":
                raise EsqlUnsupportedError(f"{src.at()}: ordering versions is not supported by this engine")
            raise self.type_error(
                src,
                f"first argument of [{src.text}] must be [date_nanos, datetime, double, integer, ip, "
                f"keyword, long, text, unsigned_long or version], found value type [{a.type}]",
            )
        same = (
            (a.type in _STRING and b.type in _STRING)
            or (
                a.type in _NUMERIC
                and b.type in _NUMERIC
                and (a.type == "unsigned_long") == (b.type == "unsigned_long")
            )
            or ({a.type, b.type} <= {"datetime", "date_nanos"})
            or a.type == b.type
        )
        if not same:
            if "unsigned_long" in (a.type, b.type) and a.type in _NUMERIC and b.type in _NUMERIC:
                raise self.type_error(
                    src,
                    f"[{src.text}]: [unsigned_long] can only be operated on together with another "
                    "[unsigned_long]",
                )
            raise self.type_error(
                src,
                f"first argument of [{src.text}] is [{a.type}] so second argument must also be [{a.type}] "
                f"but was [{b.type}]",
            )

    def need(self, node: _Expr, compiled: _Sql, allowed: frozenset[str], what: str, context: _Src) -> None:
        if compiled.type in allowed or compiled.type in ("unknown", "null"):
            return
        raise self.type_error(
            context,
            f"{what} argument of [{context.text}] must be [{' or '.join(sorted(allowed))}], "
            f"found value [{node.src.text}] type [{compiled.type}]",
        )

    # ---- predicates ----
    def _cmp(self, node: _Cmp) -> _Sql:
        a, b = self.operands(node.src, node.left, node.right, node.op not in ("==", "!="))
        sql = f"({a.sql} {_SQL_OP[node.op]} {b.sql})"
        return _Sql(sql, "boolean", f"({sql} IS NULL)")

    def _logic(self, node: _Logic) -> _Sql:
        parts = []
        for side, name in ((node.left, "first"), (node.right, "second")):
            compiled = self.expr(side)
            self.need(side, compiled, frozenset({"boolean"}), name, node.src)
            parts.append(compiled.sql)
        sql = f"({parts[0]} {node.op.upper()} {parts[1]})"
        return _Sql(sql, "boolean", f"({sql} IS NULL)")

    def _not(self, node: _Not) -> _Sql:
        compiled = self.expr(node.operand)
        self.need(node.operand, compiled, frozenset({"boolean"}), "first", node.src)
        sql = f"(NOT {compiled.sql})"
        return _Sql(sql, "boolean", f"({sql} IS NULL)")

    def _in(self, node: _In) -> _Sql:
        value = self.expr(node.value)
        items: list[str] = []
        for item in node.items:
            compiled = self.cast_literal(item, value.type) or self.expr(item)
            self.check_comparable(node.src, value, compiled, ordering=False)
            items.append(compiled.sql)
        sql = f"({value.sql} IN ({', '.join(items)}))"
        if node.negated:
            sql = f"(NOT {sql})"
        return _Sql(sql, "boolean", f"({sql} IS NULL)")

    def _isnull(self, node: _IsNull) -> _Sql:
        value = self.expr(node.value)
        sql = f"(NOT {value.is_null})" if node.negated else value.is_null
        return _Sql(sql, "boolean", "FALSE")

    def _like(self, node: _Like) -> _Sql:
        value = self.expr(node.value)
        self.need(node.value, value, _STRING, "first", node.src)
        tests = [f"{value.sql} LIKE {_sql_string(p)} ESCAPE '\\'" for p in node.patterns]
        sql = f"({' OR '.join(tests)})"
        if node.negated:
            sql = f"(NOT {sql})"
        return _Sql(sql, "boolean", f"({sql} IS NULL)")

    def _rlike(self, node: _RLike) -> _Sql:
        value = self.expr(node.value)
        self.need(node.value, value, _STRING, "first", node.src)
        sql = f"regexp_full_match({value.sql}, {_sql_string(node.regex)})"
        if node.negated:
            sql = f"(NOT {sql})"
        return _Sql(sql, "boolean", f"({sql} IS NULL)")

    # ---- functions ----
    def _call(self, node: _Call) -> _Sql:
        if node.name == "cidr_match":
            return self.cidr_match(node)
        args = [self.expr(arg) for arg in node.args]
        for position, (arg, compiled) in enumerate(zip(node.args, args, strict=True)):
            self.need(arg, compiled, _STRING, ("first", "second")[position], node.src)
        sqls = [a.sql for a in args]
        if node.name in ("starts_with", "ends_with"):
            sql = f"{node.name}({sqls[0]}, {sqls[1]})"
            return _Sql(sql, "boolean", f"({sql} IS NULL)")
        if node.name == "length":
            sql = f"length({sqls[0]})"
            return _Sql(sql, "integer", f"({sql} IS NULL)")
        # to_lower / to_upper keep every value of a multi-valued field (9.1), hence the argument's is_null
        full, function = (_FULL_LOWER, "lower") if node.name == "to_lower" else (_FULL_UPPER, "upper")
        inner = sqls[0]
        if self.table is not None:
            for char, mapped in full.items():
                inner = f"replace({inner}, {_sql_string(char)}, {_sql_string(mapped)})"
        return _Sql(f"{function}({inner})", "keyword", args[0].is_null)

    def cidr_match(self, node: _Call) -> _Sql:
        ip_node, *blocks = node.args
        ip = self.expr(ip_node)
        self.need(ip_node, ip, frozenset({"ip"}), "first", node.src)
        tests: list[str] = []
        for block in blocks:
            if not (isinstance(block, _Lit) and isinstance(block.value, str)):
                raise EsqlUnsupportedError(
                    f"{block.src.at()}: cidr_match() with a non-literal block [{block.src.text}] "
                    "is not supported by this engine"
                )
            try:
                low, high = _cidr_range(block.value)
            except ValueError:
                raise self.type_error(block.src, f"[{block.value}] is not a valid CIDR block") from None
            tests.append(
                f"({ip.sql} BETWEEN CAST('{low}' AS UHUGEINT) AND CAST('{high}' AS UHUGEINT) "
                f"/* {block.value.replace('*/', '')} */)"
            )
        sql = f"({' OR '.join(tests)})"
        return _Sql(sql, "boolean", f"({sql} IS NULL)")


class _ScopeCompiler(_Compiler):
    """A compiler that sees some extra columns (EVAL results, STATS output) first; with `documents`
    false, only those exist (after STATS, a document field is an unknown column)."""

    def __init__(
        self, table: EsqlTable | None, metadata: Sequence[str], local: Mapping[str, _Sql], documents: bool
    ) -> None:
        super().__init__(table, metadata)
        self.local, self.documents = dict(local), documents

    def _field(self, node: _Field) -> _Sql:
        found = self.local.get(node.name)
        if found is not None:
            return found
        if not self.documents:
            known = ", ".join(sorted(self.local))
            raise EsqlUnknownColumnError(
                f"{node.src.at()}: Unknown column [{node.name}] (after STATS: {known})"
            )
        return super()._field(node)


@dataclass(frozen=True)
class _AggregateSql:
    sql: str  # the rows behind the surviving groups
    mv_check: str | None  # counts filtered rows whose group/count_distinct column is multi-valued
    mv_columns: tuple[str, ...]


def _aggregate_sql(
    table: EsqlTable | None, metadata: Sequence[str], conditions: Sequence[_Expr], aggregation: _Aggregation
) -> _AggregateSql:
    """One DuckDB query: filter, EVAL, group, aggregate, filter the groups, return the rows in them."""
    base = _Compiler(table, metadata)
    where = base.where(conditions).split(" WHERE ", 1)[1]
    local: dict[str, _Sql] = {}
    for assign in aggregation.evals:
        scope = _ScopeCompiler(table, metadata, local, documents=True)
        if assign.function == "case":
            parts: list[str] = []
            pairs = assign.args[: len(assign.args) - len(assign.args) % 2]
            for condition, value in zip(pairs[0::2], pairs[1::2], strict=True):
                compiled = scope.expr(condition)
                scope.need(condition, compiled, frozenset({"boolean"}), "condition", assign.src)
                parts.append(f"WHEN {compiled.sql} THEN {scope.expr(value).sql}")
            otherwise = f" ELSE {scope.expr(assign.args[-1]).sql}" if len(assign.args) % 2 else ""
            sql = f"(CASE {' '.join(parts)}{otherwise} END)"
            local[assign.name] = _Sql(sql, "keyword", f"({sql} IS NULL)")
        else:
            moment = scope.expr(assign.args[0])
            scope.need(assign.args[0], moment, frozenset({"datetime", "date_nanos"}), "second", assign.src)
            ms = assign.interval_ms
            sql = f"(CAST(floor(epoch_ms({moment.sql}) / {ms}.0) AS BIGINT) * {ms})"
            local[assign.name] = _Sql(sql, "datetime", f"({sql} IS NULL)")
    scope = _ScopeCompiler(table, metadata, local, documents=True)
    keys = [scope.expr(column) for column in aggregation.by]
    documents = [c.name for c in aggregation.by if c.name not in local]
    argument = scope.expr(aggregation.argument) if aggregation.argument is not None else None
    if aggregation.argument is not None and aggregation.argument.name not in local:
        documents.append(aggregation.argument.name)
    columns = [f"{_quote(_ROW_COLUMN)} AS r"] + [f"{key.sql} AS g{i}" for i, key in enumerate(keys)]
    if argument is not None:
        columns.append(f"{argument.sql} AS v")
    groups = ", ".join(f"g{i}" for i in range(len(keys)))
    measure = "count(*)" if argument is None else "count(DISTINCT v)"
    output = {aggregation.name: _Sql(_quote("agg"), "long", f"({_quote('agg')} IS NULL)")}
    for i, (column, key) in enumerate(zip(aggregation.by, keys, strict=True)):
        output.setdefault(column.name, _Sql(f"g{i}", key.type, f"(g{i} IS NULL)"))
    having = _ScopeCompiler(table, metadata, output, documents=False).where(aggregation.having)
    having_sql = having.split(" WHERE ", 1)[1]
    join = " AND ".join(f"b.g{i} IS NOT DISTINCT FROM k.g{i}" for i in range(len(keys))) or "TRUE"
    sql = (
        f"WITH base AS (SELECT {', '.join(columns)} FROM {_TABLE} WHERE {where}), "
        f"grouped AS (SELECT {groups}, {measure} AS {_quote('agg')} FROM base GROUP BY {groups}), "
        f"kept AS (SELECT * FROM grouped WHERE {having_sql}) "
        f"SELECT DISTINCT b.r FROM base b JOIN kept k ON {join}"
    )
    check = None
    if table is not None and documents:
        resolved = [table.resolve(name, aggregation.src).name for name in documents]
        tests = " OR ".join(f"list_contains({_quote(_MV_COLUMN)}, {_sql_string(n)})" for n in resolved)
        check = f"SELECT count(*) FROM {_TABLE} WHERE ({where}) AND ({tests})"
        return _AggregateSql(sql, check, tuple(resolved))
    return _AggregateSql(sql, check, ())


# ----------------------------------------------------------------------------
# The query
# ----------------------------------------------------------------------------

_CACHE_SIZE: Final = 8


@dataclass
class _CacheEntry:
    documents: Sequence[Mapping[str, Any]]
    field_types: dict[str, str]
    table: EsqlTable


_tables: OrderedDict[tuple[int, int, str | None], _CacheEntry] = OrderedDict()
_tables_lock = threading.Lock()


def _table_for(
    documents: Sequence[Mapping[str, Any]], field_types: Mapping[str, str], index: str | None
) -> EsqlTable:
    key = (id(documents), len(documents), index)
    with _tables_lock:
        entry = _tables.get(key)
        if entry is not None and entry.documents is documents and entry.field_types == dict(field_types):
            _tables.move_to_end(key)
            return entry.table
    table = EsqlTable(documents, field_types, index=index)
    with _tables_lock:
        _tables[key] = _CacheEntry(documents, dict(field_types), table)
        while len(_tables) > _CACHE_SIZE:
            _tables.popitem(last=False)
    return table


@dataclass
class EsqlQuery:
    """One parsed ES|QL query. `sql` is its DuckDB rendering without a mapping (every field untyped);
    `compile(table)` gives the typed SQL that `run`/`matching` execute."""

    text: str
    index_patterns: tuple[str, ...]
    metadata: tuple[str, ...]
    sql: str
    _conditions: tuple[_Expr, ...] = field(repr=False)
    _compiled: weakref.WeakKeyDictionary[EsqlTable, str] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False, compare=False
    )
    _aggregation: _Aggregation | None = field(default=None, repr=False)

    @property
    def index_pattern(self) -> str:
        return ",".join(self.index_patterns)

    @classmethod
    def parse(cls, text: str) -> EsqlQuery:
        patterns, metadata, conditions, aggregation = _parse(text)
        if aggregation is None:
            sql = _Compiler(None, metadata).where(conditions)
        else:
            sql = _aggregate_sql(None, metadata, conditions, aggregation).sql
        return cls(text, patterns, metadata, sql, conditions, _aggregation=aggregation)

    def compile(self, table: EsqlTable) -> str:
        sql = self._compiled.get(table)
        if sql is None:
            if self._aggregation is None:
                sql = _Compiler(table, self.metadata).where(self._conditions)
            else:
                sql = _aggregate_sql(table, self.metadata, self._conditions, self._aggregation).sql
            self._compiled[table] = sql
        return sql

    def run(self, table: EsqlTable) -> set[int]:
        """Positions (in the table's document sequence) of the documents the query returns."""
        if table.index is not None and not _index_matches(self.index_patterns, table.index):
            raise EsqlUnknownIndexError(
                f"FROM [{self.index_pattern}] does not select the index [{table.index}] the documents live in"
            )
        sql = self.compile(table)
        if self._aggregation is not None:
            self._refuse_multivalued_groups(table)
        with table.lock:
            try:
                rows = table.connection.execute(sql).fetchall()
            except duckdb.Error as exc:
                raise RuntimeError(
                    f"DuckDB failed on the translation of {self.text!r}: {exc}\n{sql}"
                ) from exc
        return {int(row[0]) for row in rows}

    def _refuse_multivalued_groups(self, table: EsqlTable) -> None:
        assert self._aggregation is not None
        plan = _aggregate_sql(table, self.metadata, self._conditions, self._aggregation)
        if plan.mv_check is None:
            return
        with table.lock:
            found = table.connection.execute(plan.mv_check).fetchone()
        if found and found[0]:
            raise EsqlUnsupportedError(
                f"STATS groups or counts by a multi-valued field ({', '.join(plan.mv_columns)}) in "
                f"{found[0]} row(s); Elasticsearch puts such a row in every group, which this engine does "
                "not evaluate"
            )

    def matching(
        self,
        documents: Sequence[Mapping[str, Any]],
        field_types: Mapping[str, str],
        *,
        index: str | None = None,
    ) -> set[int]:
        """Positions of the (nested ECS) documents the query returns, given the data stream's field types."""
        return self.run(_table_for(documents, field_types, index))
