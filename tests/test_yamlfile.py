"""Untrusted YAML: located syntax errors, no aliases, no duplicate keys, bounded size."""

from __future__ import annotations

import pytest

from detpack.content.yamlfile import MAX_FILE_BYTES, parse_yaml
from detpack.findings import ContentError


def test_lines_are_remembered_for_keys_and_items() -> None:
    doc = parse_yaml("title: x\ntags:\n  - a\n  - b\ndetection:\n  sel:\n    Image|endswith: /x\n", "r.yml")
    assert doc.line_of(("tags", 1)) == 4
    assert doc.line_of(("detection", "sel", "Image|endswith")) == 7
    assert doc.line_of(("detection", "sel", "Image|endswith", 3)) == 7  # deepest known prefix


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("a: 1\nb: [1\n", 3, "invalid YAML"),
        ("a: 1\nb: 2\na: 3\n", 3, "duplicate key 'a' (first defined at line 1)"),
        ("a: &x [1, 2]\nb: *x\n", 1, "anchors and aliases are not allowed"),
        ("a:\n  <<: {b: 1}\n", 2, "merge keys"),
        ("a: !!python/object/apply:os.system [id]\n", 1, "tag"),
        ("a: !!binary aGk=\n", 1, "tag"),
    ],
)
def test_bad_yaml_is_a_located_finding(text: str, line: int, words: str) -> None:
    with pytest.raises(ContentError) as caught:
        parse_yaml(text, "rules/x/r.yml")
    finding = caught.value.findings[0]
    assert (finding.path, finding.line) == ("rules/x/r.yml", line)
    assert words in finding.message
    assert finding.fix


def test_billion_laughs_is_refused_without_expansion() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 9)}]" for i in range(1, 10)]
    with pytest.raises(ContentError, match="aliases are not allowed"):
        parse_yaml("\n".join(lines) + "\n", "bomb.yml")


def test_oversized_and_nul_content_is_refused() -> None:
    with pytest.raises(ContentError, match="larger than"):
        parse_yaml("a: " + "x" * MAX_FILE_BYTES + "\n", "big.yml")
    with pytest.raises(ContentError, match="NUL"):
        parse_yaml("a: b\x00\n", "nul.yml")


def test_unquoted_dates_stay_text() -> None:
    assert parse_yaml("date: 2026-11-23\n", "r.yml").data == {"date": "2026-11-23"}
