"""Regular expressions in rules that would backtrack exponentially (ReDoS) are refused at validation.

The Sigma reference engine (SQLite's REGEXP bound to Python `re`), the SPL evaluator and the EQL engine
run a rule's `|re` values with backtracking matchers; a pull request could make `detpack test` (and a
customer's Splunk, whose PCRE backtracks too) spin for hours with a pattern such as `(a+)+$` and one long
fixture value. Elasticsearch and ES|QL use automata and do not care, so this is a check of the rule.

The check is a heuristic over Python's own parse of the pattern (`re._parser`), refusing the two shapes
behind exponential backtracking:

* a repetition with an unbounded (or large) upper bound whose body can itself match a string in several
  ways, because it contains another variable repetition or an alternation whose branches can start with
  the same character (`(a+)+`, `(\\w+\\s?)*`, `(.*,)+`, `(a|ab)*`), unless the body has a mandatory
  character that none of those inner parts can match, which fixes where each iteration ends
  (`(?:[a-z0-9-]+\\.)+` is fine);
* atomic groups and possessive quantifiers never backtrack and are not reported.

Polynomial blow-ups (`.*a.*b` on a long value) are not refused here; the engines that run Python `re`
have a time budget instead (detpack/engines/budget.py).
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from detpack.content.rules import RuleFile
from detpack.findings import Finding

_parser: Any = importlib.import_module("re._parser")  # no stubs for the private module; typed as Any
_constants: Any = importlib.import_module("re._constants")
MAXREPEAT: int = _constants.MAXREPEAT
LARGE_REPEAT = 10  # an upper bound above this counts as "many times"

# Characters each single-character element is tested against (enough to see whether two sets overlap).
_PROBES = [chr(c) for c in range(128)] + ["é", "ß", "İ", "\u2028", "中", "\U0001f600"]
_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}
_SINGLE = {"LITERAL", "NOT_LITERAL", "ANY", "IN"}
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT"}
ALL = frozenset(_PROBES)


def _op(item: tuple[Any, Any]) -> str:
    return str(item[0])


def _chars_of_single(op: str, arg: Any, ignorecase: bool) -> frozenset[str]:
    chars: set[str] = set()
    if op == "LITERAL":
        chars = {chr(arg)}
    elif op == "NOT_LITERAL":
        chars = set(_PROBES) - {chr(arg)}
    elif op == "ANY":
        chars = set(_PROBES)
    elif op == "IN":
        negate = False
        for sub_op, sub_arg in arg:
            name = str(sub_op)
            if name == "NEGATE":
                negate = True
            elif name == "LITERAL":
                chars.add(chr(sub_arg))
            elif name == "RANGE":
                chars.update(p for p in _PROBES if sub_arg[0] <= ord(p) <= sub_arg[1])
            elif name == "CATEGORY" and str(sub_arg) in _CATEGORIES:
                pattern = re.compile(_CATEGORIES[str(sub_arg)])
                chars.update(p for p in _PROBES if pattern.fullmatch(p))
            else:  # an unknown class: assume it may match anything
                chars.update(_PROBES)
        if negate:
            chars = set(_PROBES) - chars
    if ignorecase:
        chars |= {c.swapcase() for c in chars}
    return frozenset(chars)


def _chars(sequence: Any, ignorecase: bool) -> frozenset[str]:
    """Every character any part of the sequence can consume (an over-approximation)."""
    chars: set[str] = set()
    for op_code, arg in sequence:
        op = str(op_code)
        if op in _SINGLE:
            chars |= _chars_of_single(op, arg, ignorecase)
        elif op in _REPEATS or op == "POSSESSIVE_REPEAT":
            chars |= _chars(arg[2], ignorecase)
        elif op == "SUBPATTERN":
            chars |= _chars(arg[3], ignorecase)
        elif op == "ATOMIC_GROUP":
            chars |= _chars(arg, ignorecase)
        elif op == "BRANCH":
            for branch in arg[1]:
                chars |= _chars(branch, ignorecase)
        elif op == "GROUPREF" or op == "GROUPREF_EXISTS":
            chars |= ALL
    return frozenset(chars)


def _flatten(sequence: Any) -> list[tuple[Any, Any]]:
    """The sequence with plain groups opened: `(\\w+\\s?)` is the two elements inside it."""
    items: list[tuple[Any, Any]] = []
    for item in sequence:
        if _op(item) == "SUBPATTERN":
            items.extend(_flatten(item[1][3]))
        else:
            items.append(item)
    return items


def _matches_empty(sequence: Any) -> bool:
    for op_code, arg in sequence:
        op = str(op_code)
        if op in _SINGLE:
            return False
        if op in _REPEATS or op == "POSSESSIVE_REPEAT":
            if arg[0] > 0 and not _matches_empty(arg[2]):
                return False
        elif op == "SUBPATTERN":
            if not _matches_empty(arg[3]):
                return False
        elif op == "BRANCH" and not any(_matches_empty(b) for b in arg[1]):
            return False
    return True


def _first_chars(sequence: Any, ignorecase: bool) -> frozenset[str]:
    chars: set[str] = set()
    for item in sequence:
        chars |= _chars([item], ignorecase)
        if not _matches_empty([item]):
            break
    return frozenset(chars)


def _ambiguous_parts(sequence: Any, ignorecase: bool) -> list[tuple[str, frozenset[str]]]:
    """Parts of the sequence (searched recursively) that can match a string in more than one way when
    repeated: variable repetitions and alternations with overlapping starts. Atomic parts are skipped."""
    parts: list[tuple[str, frozenset[str]]] = []
    for op_code, arg in sequence:
        op = str(op_code)
        if op in _REPEATS:
            low, high, body = arg
            if high != low:
                parts.append(("a repetition inside the repeated group", _chars(body, ignorecase)))
            parts.extend(_ambiguous_parts(body, ignorecase))
        elif op == "SUBPATTERN":
            parts.extend(_ambiguous_parts(arg[3], ignorecase))
        elif op == "BRANCH":
            branches = arg[1]
            starts = [_first_chars(b, ignorecase) for b in branches]
            overlapping = any(_matches_empty(b) for b in branches) or any(
                starts[i] & starts[j] for i in range(len(starts)) for j in range(i + 1, len(starts))
            )
            if overlapping:
                chars = frozenset().union(*(_chars(b, ignorecase) for b in branches))
                parts.append(("an alternation whose branches can match the same text", chars))
            for branch in branches:
                parts.extend(_ambiguous_parts(branch, ignorecase))
    return parts


def backtracking_problem(pattern: str, ignorecase: bool = False) -> str | None:
    """Why the pattern can backtrack exponentially, or None. Patterns Python cannot parse are left to
    pySigma's own check (it reports them as invalid)."""
    try:
        parsed = _parser.parse(pattern, re.IGNORECASE if ignorecase else 0)
    except (re.error, OverflowError, RecursionError):
        return None
    ignorecase = ignorecase or bool(parsed.state.flags & re.IGNORECASE)
    return _problem(list(parsed), ignorecase)


def _problem(sequence: Any, ignorecase: bool) -> str | None:
    for op_code, arg in sequence:
        op = str(op_code)
        if op in _REPEATS:
            _low, high, body = arg
            if high == MAXREPEAT or high > LARGE_REPEAT:
                parts = _ambiguous_parts(body, ignorecase)
                if parts:
                    variable = frozenset().union(*(chars for _, chars in parts))
                    anchors = [_chars([item], ignorecase) for item in _flatten(body) if _op(item) in _SINGLE]
                    if not any(anchor and not anchor & variable for anchor in anchors):
                        return f"{parts[0][0]} can split the same text in many ways"
            inner = _problem(body, ignorecase)
            if inner:
                return inner
        elif op == "SUBPATTERN":
            inner = _problem(arg[3], ignorecase)
            if inner:
                return inner
        elif op == "BRANCH":
            for branch in arg[1]:
                inner = _problem(branch, ignorecase)
                if inner:
                    return inner
        elif op == "ASSERT" or op == "ASSERT_NOT":
            inner = _problem(arg[1], ignorecase)
            if inner:
                return inner
    return None


def _regex_values(rule: RuleFile) -> list[tuple[tuple[str | int, ...], str, bool]]:
    """(JSON path, pattern, ignorecase) of every `|re` value of the rule's detection."""
    from detpack.validate.rules import detection_keys  # the rule checks import this module

    found: list[tuple[tuple[str | int, ...], str, bool]] = []
    for path, key in detection_keys(rule):
        modifiers = key.split("|")[1:]
        if "re" not in modifiers:
            continue
        ignorecase = "i" in modifiers or "ignorecase" in modifiers
        node = rule.data_at(path)
        if isinstance(node, list):
            found += [((*path, i), v, ignorecase) for i, v in enumerate(node) if isinstance(v, str)]
        elif isinstance(node, str):
            found.append((path, node, ignorecase))
    return found


def check_regexes(rule: RuleFile) -> list[Finding]:
    findings = []
    for path, pattern, ignorecase in _regex_values(rule):
        problem = backtracking_problem(pattern, ignorecase)
        if problem:
            findings.append(
                Finding(
                    rule.path,
                    rule.line(*path),
                    "regex-backtracking",
                    f"regular expression {pattern!r} can take exponential time on a long value: {problem}",
                    "make every repeated group match a string in only one way: end it with a character its "
                    "inner repetition cannot match (e.g. '(?:[a-z0-9-]+\\.)+'), or drop the inner quantifier",
                )
            )
    return findings
