"""EQL with Elasticsearch semantics: Elastic's `eql` library (1.0.1) parses and evaluates, rewired where
it differs.

pysigma-backend-elasticsearch's EqlBackend emits EQL that Elasticsearch runs; this engine answers which ECS
documents such a query matches, the way Elasticsearch would. The `eql` package is Elastic's own parser and
Python engine, but it implements the older Endgame semantics, so four things are rewired here:

* **Case.** In Elasticsearch `==`, `!=`, `in`, `like`, `regex` and functions are case-sensitive; `:`, `in~`,
  `like~`, `regex~` and `function~(...)` are case-insensitive; `<`..`>=` order strings case-sensitively
  (https://www.elastic.co/docs/reference/query-languages/eql/eql-syntax, "Comparison operators", "Pattern
  comparison keywords", "Lookup operators", "Case-insensitive functions"). The library drops the `~` while
  parsing and applies one global setting, so a subclass of its parse-tree walker (`_Walker`) keeps the
  distinction by emitting private function calls (`_es_seq`, `_es_like_ci`, ...) and `name~` calls.
* **Wildcards and regular expressions.** `:`/`like` patterns know `*` and `?` and no escape character
  (Elasticsearch's EQL `StringUtils.toLikePattern`); the library ignores `?`. `regex`/`regex~` run as Lucene
  regexp queries (https://www.elastic.co/docs/reference/query-languages/query-dsl/regexp-syntax): the whole
  value must match, `^`/`$` are ordinary characters, `\\d` is `[0-9]`, `regex~` folds ASCII letters only.
  `_lucene_regex` translates that dialect to Python `re`; a backslash before another letter is an error
  (as in current Lucene); the optional `&`, `~` and `<n-m>` operators and `\\D`/`\\S`/`\\W` inside brackets
  are refused with `EqlUnsupportedError`.
* **Multi-valued fields.** Elasticsearch compiles field-vs-constant conditions to term/terms/wildcard/
  regexp/prefix/range queries, and a multi-valued field matches when any value does; object arrays are
  flattened (`containers.name` over `[{"name": "a"}, {"name": "b"}]` has values a and b). Every leaf condition
  is therefore evaluated once per value of the fields it names (`_EsEngine._leaf`) and is true if any is.
* **Missing fields and `not`.** `not` compiles to `bool.must_not`, which matches documents without the
  field, so conditions are two-valued: a comparison with a missing field is false and its negation true
  (the library's three-valued `not null` gives no match). Elasticsearch's optimizer first pushes `not` down
  (De Morgan) and flips ordered comparisons (`not f >= 5` becomes `f < 5`, a range query: false when f is
  missing, true for [3, 9]); `f != x` is `not f == x`. It also merges `f > a and f < b` into one range that a
  single value must satisfy. `_normalize` reproduces these rewrites (Elasticsearch sources:
  x-pack/plugin/eql .../planner/QueryTranslator.java, x-pack/plugin/ql .../planner/ExpressionTranslators.java
  `Nots`, .../optimizer/OptimizerRules.java `BooleanSimplification`, `CombineBinaryComparisons`).

Value types follow the document (string = keyword, number = long/double, bool = boolean) and constants are
converted the way term/range queries convert them. Wildcards and regexes on numbers or booleans match their
text, as on a keyword field (Elasticsearch rejects wildcard/regexp queries on numeric fields). Only single
event queries without pipes are supported; the library's `load_extensions` plugin import is never triggered.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import eql  # type: ignore[import-untyped]
from eql import ast
from eql.engine import Scope  # type: ignore[import-untyped]
from eql.errors import EqlError  # type: ignore[import-untyped]
from eql.functions import get_function  # type: ignore[import-untyped]
from eql.parser import (  # type: ignore[import-untyped]
    LarkToEQL,
    elasticsearch_syntax,
    ignore_missing_functions,
    lark_parser,
)
from eql.schema import EVENT_TYPE_ANY  # type: ignore[import-untyped]
from eql.types import NodeInfo, TypeHint  # type: ignore[import-untyped]
from lark.exceptions import LarkError

__all__ = ["EqlQuery", "EqlSyntaxError", "EqlUnsupportedError"]

Callback = Callable[[Any], Any]


class EqlSyntaxError(ValueError):
    """The text is not a valid EQL query; the message is the `eql` library's (or the regexp parser's)."""


class EqlUnsupportedError(ValueError):
    """Valid EQL that this engine cannot evaluate the way Elasticsearch would."""


# ----------------------------------------------------------------------------
# Parsing: the library's walker, keeping what Elasticsearch distinguishes
# ----------------------------------------------------------------------------

_PREDICATES = {
    ":": "_es_seq",
    "like": "_es_like",
    "like~": "_es_like_ci",
    "regex": "_es_regex",
    "regex~": "_es_regex_ci",
}
# Functions whose result depends on case: evaluated here, case-sensitive unless called as name~(...).
_CASED_FUNCTIONS = frozenset({"startsWith", "endsWith", "stringContains", "indexOf", "between"})
# Elasticsearch functions whose `eql` implementation is case-independent and is used as is.
_LIBRARY_FUNCTIONS = frozenset(
    {"add", "subtract", "multiply", "divide", "modulo", "concat", "length", "number", "string", "substring"}
)


class _Walker(LarkToEQL):  # type: ignore[misc]
    """The library's lark-tree walker, except that `:`/like/regex/in keep their case and wildcard meaning."""

    def string_predicate(self, node: Any) -> Any:
        predicate = str(node["STRING_PREDICATE"])
        left, *constants = self.visit(node.child_trees)
        for constant in constants:
            value = constant.node
            if not isinstance(value, ast.Literal) or value.value is None:
                raise self._type_error(constant, TypeHint.String)
            if predicate.startswith("regex"):
                if not isinstance(value.value, str):
                    raise self._type_error(constant, TypeHint.String)
                _lucene_regex(value.value, predicate.endswith("~"))  # surface regexp errors while parsing
        call = ast.FunctionCall(_PREDICATES[predicate], [left.node, *(c.node for c in constants)])
        return NodeInfo(call, TypeHint.Boolean, source=node)

    def in_set(self, node: Any) -> Any:
        insensitive = str(node["IN"]) == "in~"
        outer, container = self.visit(node.child_trees)
        for item in container:
            if not isinstance(item.node, ast.Literal):
                raise self._type_error(item, TypeHint.primitives())
        call = ast.FunctionCall(
            "_es_in_ci" if insensitive else "_es_in", [outer.node, *(c.node for c in container)]
        )
        return NodeInfo(call, TypeHint.Boolean, source=node)

    def function_call(self, node: Any, prev_node: Any = None, prev_arg: Any = None) -> Any:
        info = super().function_call(node, prev_node, prev_arg)
        if (
            node.data != "method"
            and str(node.children[0]).endswith("~")
            and isinstance(info.node, ast.FunctionCall)
        ):
            info.node = ast.FunctionCall(
                info.node.name + "~", info.node.arguments, as_method=info.node.as_method
            )
        return info


def _parse(text: str) -> Any:
    """The library's `parse_query`, minus its optimizer (which merges nodes) and plugin loading."""
    if not text.endswith("\n"):
        text += "\n"
    with elasticsearch_syntax, ignore_missing_functions:
        walker = _Walker(text)
        try:
            tree = lark_parser.parse(text, start="piped_query")
        except LarkError as exc:
            line = getattr(exc, "line", 1)
            token = getattr(exc, "token", None)
            error = eql.EqlSyntaxError(
                "Invalid syntax",
                line=line - 1,
                column=getattr(exc, "column", 1) - 1,
                width=len(token) if token else 1,
                source="\n".join(walker.lines[line - 2 : line]),
            )
            raise EqlSyntaxError(str(error)) from None
        try:
            return walker.visit(tree)
        except EqlError as exc:
            raise EqlSyntaxError(str(exc)) from None


# ----------------------------------------------------------------------------
# AST rewrites Elasticsearch's optimizer performs before translating to Query DSL
# ----------------------------------------------------------------------------

_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_LOWER, _UPPER = frozenset({">", ">="}), frozenset({"<", "<="})


def _normalize(node: Any, negate: bool = False) -> Any:
    """Push `not` down to the leaves (flipping ordered comparisons), then merge range bounds."""
    if isinstance(node, ast.Not):
        return _normalize(node.term, not negate)
    if isinstance(node, (ast.And, ast.Or)):
        terms = [_normalize(term, negate) for term in node.terms]
        if isinstance(node, ast.And) != negate:
            return _combine_ranges(
                [t for term in terms for t in (term.terms if isinstance(term, ast.And) else [term])]
            )
        return ast.Or([t for term in terms for t in (term.terms if isinstance(term, ast.Or) else [term])])
    if isinstance(node, ast.Comparison):
        left, op, right = node.left, node.comparator, node.right
        if isinstance(left, ast.Literal) and not isinstance(right, ast.Literal):
            left, op, right = right, _MIRROR[op], left
        if op == "!=":
            return _normalize(ast.Comparison(left, "==", right), not negate)
        if negate and op in _NEGATED:
            return ast.Comparison(left, _NEGATED[op], right)
        node = ast.Comparison(left, op, right)
    elif negate and isinstance(node, (ast.IsNull, ast.IsNotNull)):
        return (ast.IsNotNull if isinstance(node, ast.IsNull) else ast.IsNull)(node.expr)
    elif negate and isinstance(node, ast.Boolean):
        return ast.Boolean(not node.value)
    return ast.Not(node) if negate else node


def _combine_ranges(terms: list[Any]) -> Any:
    """Bounds on one field in a conjunction become one range that a single value must satisfy."""
    bounds: dict[tuple[Any, ...], list[Any]] = {}
    for term in terms:
        if (
            isinstance(term, ast.Comparison)
            and term.comparator in _LOWER | _UPPER
            and isinstance(term.left, ast.Field)
            and isinstance(term.right, ast.Literal)
        ):
            bounds.setdefault(_path(term.left), []).append(term)
    merged: dict[int, Any] = {}
    for group in bounds.values():
        ops = {term.comparator for term in group}
        if ops & _LOWER and ops & _UPPER:
            merged[id(group[0])] = ast.FunctionCall("_es_range", [ast.And(group)])
            merged.update({id(term): None for term in group[1:]})
    combined = [merged.get(id(term), term) for term in terms]
    combined = [term for term in combined if term is not None]
    return combined[0] if len(combined) == 1 else ast.And(combined)


def _path(field: Any) -> tuple[Any, ...]:
    """Elasticsearch field names are dotted strings: a back-quoted `a.b/c` names the field a -> b/c, not
    one key "a.b/c", so string parts are split on dots (_values still finds keys that contain dots)."""
    parts: list[Any] = []
    for part in (field.base, *field.path):
        parts.extend(part.split(".") if isinstance(part, str) else [part])
    return tuple(parts)


# ----------------------------------------------------------------------------
# Values: multi-valued and object-array fields, type conversion, case
# ----------------------------------------------------------------------------


def _values(data: Any, path: Sequence[str]) -> list[Any]:
    """All values of a dotted field, as Elasticsearch indexes them: lists and object arrays flattened,
    nulls dropped; `{"a.b": 1}` and `{"a": {"b": 1}}` are the same field."""
    found: list[Any] = []

    def walk(value: Any, rest: Sequence[str]) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item, rest)
        elif not rest:
            if value is not None:
                found.append(value)
        elif isinstance(value, Mapping):
            for cut in range(1, len(rest) + 1):
                key = ".".join(rest[:cut])
                if key in value:
                    walk(value[key], rest[cut:])

    walk(data, path)
    return found


def _keyword(value: Any) -> str | None:
    """The text a keyword field holds for a scalar (as JSON/Java render it), or None for objects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _equals(value: Any, constant: Any, insensitive: bool) -> bool:
    """Term query semantics: the constant is converted to the document value's type."""
    if value is None or constant is None:
        return False
    if isinstance(value, bool):
        text = _keyword(constant)
        return text in ("true", "false") and value == (text == "true")
    if isinstance(value, (int, float)):
        number = _number(constant)
        return number is not None and value == number
    if isinstance(value, str):
        text = _keyword(constant)
        if text is None:
            return False
        return _text_regex(text, True, False).fullmatch(value) is not None if insensitive else value == text
    return False


def _order(value: Any, constant: Any) -> int | None:
    """Range query semantics: numbers numerically, strings by code point (case-sensitive)."""
    left: Any
    right: Any
    if isinstance(value, bool) or isinstance(constant, bool):
        if not (isinstance(value, bool) and isinstance(constant, bool)):
            return None
        left, right = int(value), int(constant)
    elif isinstance(value, (int, float)):
        left, right = value, _number(constant)
    elif isinstance(value, str):
        left, right = value, _keyword(constant)
    else:
        return None
    if right is None:
        return None
    return int(left > right) - int(left < right)


_ORDERED: dict[str, Callable[[int], bool]] = {
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def _compare(value: Any, op: str, constant: Any) -> bool:
    if value is None or constant is None:
        return False
    if op == "==":
        return _equals(value, constant, False)
    if op == "!=":
        return not _equals(value, constant, False)
    order = _order(value, constant)
    return order is not None and _ORDERED[op](order)


def _fold(char: str, ascii_only: bool) -> str:
    """A regex atom matching `char` in either case (Lucene folds per code point)."""
    if ascii_only and not char.isascii():
        return re.escape(char)
    variants = dict.fromkeys(c for c in (char, char.lower(), char.upper()) if len(c) == 1)
    if len(variants) == 1:
        return re.escape(char)
    return "[" + "".join(re.escape(c) for c in variants) + "]"


@functools.cache
def _text_regex(pattern: str, insensitive: bool, wildcards: bool) -> re.Pattern[str]:
    """A `:`/`like` pattern (`*` any run, `?` one character, no escape character) or a plain term."""
    parts = []
    for char in pattern:
        if wildcards and char == "*":
            parts.append(".*")
        elif wildcards and char == "?":
            parts.append(".")
        else:
            parts.append(_fold(char, False) if insensitive else re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


# ----------------------------------------------------------------------------
# Lucene regexp -> Python re
# ----------------------------------------------------------------------------

_PREDEFINED = {"d": "0-9", "s": " \\t\\n\\r", "w": "a-zA-Z_0-9"}


class _LuceneRegex:
    """Recursive descent over Lucene's RegExp grammar, all optional operators on (Elasticsearch's default)."""

    def __init__(self, pattern: str, insensitive: bool) -> None:
        self.pattern, self.insensitive, self.pos = pattern, insensitive, 0

    def error(self, message: str) -> EqlSyntaxError:
        return EqlSyntaxError(
            f"invalid regular expression {self.pattern!r}: {message} at position {self.pos}"
        )

    def unsupported(self, what: str) -> EqlUnsupportedError:
        return EqlUnsupportedError(f"regular expression {self.pattern!r}: Lucene's {what} is not supported")

    def more(self) -> bool:
        return self.pos < len(self.pattern)

    def peek(self, chars: str) -> bool:
        return self.more() and self.pattern[self.pos] in chars

    def match(self, char: str) -> bool:
        if self.peek(char):
            self.pos += 1
            return True
        return False

    def next(self) -> str:
        if not self.more():
            raise self.error("unexpected end of string")
        self.pos += 1
        return self.pattern[self.pos - 1]

    def translate(self) -> str:
        if not self.pattern:
            return ""  # Lucene's RegExp special-cases the empty expression: it matches the empty string
        result = self.union()
        if self.more():
            raise self.error("end of string expected")
        return result

    def union(self) -> str:
        alternatives = [self.concatenation()]
        while self.match("|"):
            alternatives.append(self.concatenation())
        return "|".join(alternatives)

    def concatenation(self) -> str:
        items = [self.repeat()]
        while self.more() and not self.peek(")|"):
            if self.peek("&"):
                raise self.unsupported("'&' (intersection) operator")
            items.append(self.repeat())
        return "".join(items)

    def repeat(self) -> str:
        if self.peek("~"):
            raise self.unsupported("'~' (complement) operator")
        atom = self.char_class() if self.match("[") else self.simple()
        while self.peek("?*+{"):
            char = self.next()
            if char == "{":
                start = self.pos
                while self.peek("0123456789,"):
                    self.pos += 1
                bounds = self.pattern[start : self.pos]
                low, _, high = bounds.partition(",")
                if not re.fullmatch(r"\d+(,\d*)?", bounds) or not self.match("}"):
                    raise self.error("malformed repetition")
                if high and int(high) < int(low):
                    raise self.error("invalid repetition range (out of order)")
                char = "{" + bounds + "}"
            atom = f"(?:{atom}){char}"
        return atom

    def literal(self, char: str) -> str:
        return _fold(char, True) if self.insensitive else re.escape(char)

    def simple(self) -> str:
        if self.match("."):
            return "."
        if self.match("#"):
            return "(?!)"
        if self.match("@"):
            return ".*"
        if self.match('"'):
            end = self.pattern.find('"', self.pos)
            if end < 0:
                raise self.error("expected '\"'")
            text, self.pos = self.pattern[self.pos : end], end + 1
            return "(?:" + "".join(self.literal(c) for c in text) + ")"
        if self.match("("):
            if self.match(")"):
                return "(?:)"
            inner = self.union()
            if not self.match(")"):
                raise self.error("expected ')'")
            return f"(?:{inner})"
        if self.peek("<"):
            raise self.unsupported("'<n-m>' (numeric interval) operator")
        if self.match("\\"):
            if self.peek("dDsSwW"):
                char = self.next()
                return ("[^" if char.isupper() else "[") + _PREDEFINED[char.lower()] + "]"
            self.check_escape()
        return self.literal(self.next())

    def check_escape(self) -> None:
        """Current Lucene rejects a backslash before a letter that is not a predefined class (e.g. `\\t`)."""
        if self.more() and self.pattern[self.pos].isascii() and self.pattern[self.pos].isalpha():
            raise self.error(f"invalid character class \\{self.pattern[self.pos]}")

    def class_char(self, range_end: bool = False) -> tuple[str, bool]:
        """One bracket item: a character, or (first of a pair only) a predefined class body."""
        if self.match("\\") and not range_end:
            if self.peek("dDsSwW"):
                char = self.next()
                if char.isupper():
                    raise self.unsupported(f"'\\{char}' inside brackets")
                return _PREDEFINED[char], True
            self.check_escape()
        return self.next(), False

    def char_class(self) -> str:
        negated = self.match("^")
        items: list[str] = []
        while True:
            first, predefined = self.class_char()
            if predefined:
                items.append(first)
            elif self.match("-"):
                last, _ = self.class_char(range_end=True)
                if ord(last) < ord(first):
                    raise self.error("invalid character range")
                items.append(re.escape(first) + "-" + re.escape(last))
            elif self.insensitive and first.isascii() and first.isalpha():
                items.append(re.escape(first.lower()) + re.escape(first.upper()))
            else:
                items.append(re.escape(first))
            if not self.more():
                raise self.error("expected ']'")
            if self.match("]"):
                break
        return "[" + ("^" if negated else "") + "".join(items) + "]"


@functools.cache
def _lucene_regex(pattern: str, insensitive: bool) -> re.Pattern[str]:
    return re.compile(_LuceneRegex(pattern, insensitive).translate(), re.DOTALL)


# ----------------------------------------------------------------------------
# Evaluation: the library's Python engine with Elasticsearch leaves
# ----------------------------------------------------------------------------


def _matcher(name: str, constants: list[Any]) -> Callable[[Any], bool]:
    """One predicate over one scalar value, for the private calls `_Walker` emits."""
    insensitive = name.endswith("_ci")
    kind = name.removesuffix("_ci")
    if kind in ("_es_in", "_es_seq"):
        folded = insensitive or kind == "_es_seq"
        wild = [c for c in constants if kind == "_es_seq" and isinstance(c, str) and ("*" in c or "?" in c)]
        patterns = [_text_regex(c, True, True) for c in wild]
        terms = [c for c in constants if c is not None and c not in wild]

        def lookup(value: Any) -> bool:
            text = _keyword(value)
            if text is not None and any(p.fullmatch(text) for p in patterns):
                return True
            return any(_equals(value, term, folded) for term in terms)

        return lookup
    if kind == "_es_like":
        regexes = [_text_regex(_keyword(c) or "", insensitive, True) for c in constants]
    else:
        regexes = [_lucene_regex(c, insensitive) for c in constants]
    return lambda v: (t := _keyword(v)) is not None and any(r.fullmatch(t) for r in regexes)


def _cased(name: str, insensitive: bool, args: list[Any]) -> Any:
    """startsWith & co. with Elasticsearch's null handling: any null argument gives null."""
    if any(arg is None for arg in args[:2]) or not all(isinstance(arg, str) for arg in args[:2]):
        return None
    source, text = (a.lower() for a in args[:2]) if insensitive else args[:2]
    if name == "startsWith":
        return source.startswith(text)
    if name == "endsWith":
        return source.endswith(text)
    if name == "stringContains":
        return text in source
    if name == "indexOf":
        start = max(args[2] if len(args) > 2 and isinstance(args[2], int) else 0, 0)
        found = source.find(text, start)
        return found if found >= 0 else None
    # between(source, left, right[, greedy])
    right = args[2] if len(args) > 2 else None
    if not isinstance(right, str):
        return None
    right = right.lower() if insensitive else right
    greedy = len(args) > 3 and args[3] is True
    begin = source.find(text)
    if begin < 0:
        return ""
    begin += len(text)
    end = source.rfind(right) if greedy else source.find(right, begin)
    return args[0][begin:end] if end >= begin else ""


def _cidr(value: Any, networks: list[Any]) -> bool:
    try:
        address = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        return False
    return address is not None and any(address in network for network in networks)


class _EsEngine(eql.PythonEngine):  # type: ignore[misc]
    """The library's engine with leaves evaluated per field value and Elasticsearch comparisons."""

    def __init__(self) -> None:
        super().__init__()
        self._bound: dict[tuple[Any, ...], Any] = {}

    # ---- boolean structure: two-valued, leaves evaluated over every value of their fields ----
    def _predicate(self, node: Any) -> Callable[[Any], bool]:
        if isinstance(node, (ast.And, ast.Or, ast.Not)):
            return self.convert(node)  # type: ignore[no-any-return]
        return self._leaf(node)

    def _convert_and(self, node: Any) -> Callback:
        terms = [self._predicate(term) for term in node.terms]
        return lambda scope: all(term(scope) for term in terms)

    def _convert_or(self, node: Any) -> Callback:
        terms = [self._predicate(term) for term in node.terms]
        return lambda scope: any(term(scope) for term in terms)

    def _convert_not(self, node: Any) -> Callback:
        term = self._predicate(node.term)
        return lambda scope: not term(scope)

    def _leaf(self, node: Any) -> Callable[[Any], bool]:
        evaluate = self.convert(node)
        paths = list(dict.fromkeys(_path(n) for n in _walk(node) if isinstance(n, ast.Field)))
        bound = self._bound

        def leaf(scope: Any) -> bool:
            choices = [_values(scope.event.data, path) or [None] for path in paths]
            try:
                for combination in itertools.product(*choices):
                    bound.update(zip(paths, combination, strict=True))
                    if evaluate(scope) is True:
                        return True
                return False
            finally:
                for path in paths:
                    bound.pop(path, None)

        return leaf

    def _convert_field(self, node: Any) -> Callback:
        path = _path(node)
        if any(not isinstance(part, str) for part in path):
            raise EqlUnsupportedError(f"array indexing ({node}) is not Elasticsearch EQL")
        bound = self._bound

        def field(scope: Any) -> Any:
            if path in bound:
                return bound[path]
            values = _values(scope.event.data, path)
            return values[0] if len(values) == 1 else (values or None)

        return field

    # ---- leaves ----
    def _convert_comparison(self, node: Any) -> Callback:
        get_left, get_right, op = self.convert(node.left), self.convert(node.right), node.comparator
        return lambda scope: _compare(get_left(scope), op, get_right(scope))

    def _convert_in_set(self, node: Any) -> Callback:  # the library's own `in` node (not emitted by _Walker)
        call = ast.FunctionCall("_es_in", [node.expression, *node.container])
        return self._convert_function_call(call)

    def _convert_function_call(self, node: Any) -> Callback:
        name: str = node.name
        insensitive = name.endswith("~")
        base = name.removesuffix("~")
        if base.startswith("_es_"):
            if base == "_es_range":
                checks = [self.convert(term) for term in node.arguments[0].terms]
                return lambda scope: all(check(scope) is True for check in checks)
            get_value = self.convert(node.arguments[0])
            test = _matcher(base, [argument.value for argument in node.arguments[1:]])
            return lambda scope: (v := get_value(scope)) is not None and test(v)
        arguments = [self.convert(argument) for argument in node.arguments]
        if base in _CASED_FUNCTIONS:
            return lambda scope: _cased(base, insensitive, [get(scope) for get in arguments])
        if base == "cidrMatch":
            networks = [ipaddress.ip_network(a.value, strict=False) for a in node.arguments[1:]]
            return lambda scope: _cidr(arguments[0](scope), networks)
        if base in _LIBRARY_FUNCTIONS and not insensitive:
            run = get_function(base).run

            def library(scope: Any) -> Any:
                values = [get(scope) for get in arguments]
                return None if any(value is None for value in values) else run(*values)

            return library
        raise EqlUnsupportedError(f"function {name} is not supported (not an Elasticsearch EQL function?)")

    # ---- the query ----
    def compile_event_query(self, event_type: str, condition: Any) -> Callable[[Mapping[str, Any]], bool]:
        check = self._predicate(condition)

        def match(document: Mapping[str, Any]) -> bool:
            categories = _values(document, ("event", "category"))
            if event_type != EVENT_TYPE_ANY and not any(_equals(c, event_type, False) for c in categories):
                return False
            first = _keyword(categories[0]) if categories else None
            return check(Scope([eql.Event(first or EVENT_TYPE_ANY, 0, document)], []))

        return match


def _walk(node: Any) -> Iterator[Any]:
    yield from node  # eql nodes iterate over themselves and all descendants


class EqlQuery:
    """A parsed EQL event query (`any where ...`, `process where ...`), evaluated like Elasticsearch."""

    def __init__(self, text: str, event_type: str, condition: Any) -> None:
        self.text = text
        self._event_type = event_type
        self._condition = condition

    @classmethod
    def parse(cls, text: str) -> EqlQuery:
        query = _parse(text)
        if not isinstance(query, ast.PipedQuery) or not isinstance(query.first, ast.EventQuery):
            raise EqlUnsupportedError("only single event queries are supported (no sequence/sample/join)")
        if query.pipes:
            raise EqlUnsupportedError("pipes are not supported")
        parsed = cls(text, query.first.event_type, _normalize(query.first.query))
        _EsEngine().compile_event_query(parsed._event_type, parsed._condition)  # reject what cannot run, now
        return parsed

    def fields(self) -> set[str]:
        """The dotted names of the fields the query reads."""
        return {
            ".".join(str(p) for p in _path(node))
            for node in _walk(self._condition)
            if isinstance(node, ast.Field)
        }

    def matching(self, documents: Sequence[Mapping[str, Any]]) -> set[int]:
        """Indexes of the documents the query matches."""
        match = _EsEngine().compile_event_query(self._event_type, self._condition)
        return {index for index, document in enumerate(documents) if match(document)}

    def __repr__(self) -> str:
        return f"EqlQuery({self.text!r})"
