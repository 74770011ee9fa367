"""Small helpers the tests share for finding and breaking content in a pack copy."""

from __future__ import annotations

from tests.conftest import PackCopy


def rule_containing(pack: PackCopy, text: str) -> str:
    """The first rule file (sorted) whose text contains `text`, relative to the pack root."""
    for file in sorted((pack.root / "rules").rglob("*.yml")):
        if text in file.read_text(encoding="utf-8"):
            return file.relative_to(pack.root).as_posix()
    raise AssertionError(f"no rule contains {text!r}: the test no longer matches the content")


def line_of(pack: PackCopy, relative: str, text: str) -> int:
    """1-based number of the first line of `relative` that contains `text`."""
    for number, line in enumerate(pack.read(relative).splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {relative}")


def plant_validator_warning(pack: PackCopy) -> tuple[str, int]:
    """Give one rule a value pySigma's validators flag with low severity (DoubleWildcardIssue), which
    detpack reports as a warning; returns the rule and the line."""
    rule = rule_containing(pack, "        Action: pause\n")
    pack.replace(rule, "        Action: pause\n", "        Action: 'pause**'\n")
    return rule, line_of(pack, rule, "'pause**'")
