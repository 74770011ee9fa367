"""Detection values that no target can hold as one literal are refused, never altered.

A converted query is one line in savedsearches.conf and one query string in Kibana: a control character
or a line separator inside a detection value ends the .conf line or splits a Lucene query string into two
terms (pySigma's Lucene backend leaves them unescaped), so the search would test something else than the
rule says. Such values get a located finding at the line of their key; `|re` patterns write a tab or a
newline as the escape `\\t` / `\\n`, which stays allowed.
"""

from __future__ import annotations

import re
from typing import Any

from detpack.content.rules import RuleFile
from detpack.findings import Finding

# C0 controls (tab and line feed included), DEL, C1 controls, and the Unicode line/paragraph separators.
UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _values(node: Any) -> list[tuple[int | None, Any]]:
    return list(enumerate(node)) if isinstance(node, list) else [(None, node)]


def check_detection_values(rule: RuleFile) -> list[Finding]:
    from detpack.validate.rules import detection_keys  # the rule checks import this module

    findings = []
    detection = rule.data.get("detection")
    for path, key in detection_keys(rule):
        node: Any = detection
        for part in path[1:]:
            if isinstance(node, dict):
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                node = None
        for index, value in _values(node):
            if not isinstance(value, str):
                continue
            bad = UNSAFE.search(value)
            if bad is None:
                continue
            where = path if index is None else (*path, index)
            findings.append(
                Finding(
                    rule.path,
                    rule.line(*where),
                    "detection-value",
                    f"the value of {key!r} holds the control character U+{ord(bad.group()):04X}, which no "
                    "target query can hold as a literal",
                    "remove it; match around it with a wildcard, or with |re and an escape such as \\t",
                )
            )
    for index, keyword in _values(detection.get("keywords") if isinstance(detection, dict) else None):
        if isinstance(keyword, str) and UNSAFE.search(keyword):
            where = ("detection", "keywords") if index is None else ("detection", "keywords", index)
            findings.append(
                Finding(
                    rule.path,
                    rule.line(*where),
                    "detection-value",
                    "a keyword holds a control character, which no target query can hold as a literal",
                    "remove it",
                )
            )
    return findings
