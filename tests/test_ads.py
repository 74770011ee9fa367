"""ADS parsing: sections come from the Markdown structure, not from text that looks like a heading."""

from __future__ import annotations

from detpack.content.ads import ADS_SECTIONS, parse_ads

DOC = """---
id: DP-ADS-9999
title: Example strategy for parsing tests
---
# Example strategy for parsing tests

## Goal
Detect things.

```bash
## Validation
# a comment inside a code block is not a section
kubectl get pods
```

## Validation
Run `tests/fixtures/kubernetes_audit/x.jsonl`.
"""


def test_headings_inside_code_blocks_are_not_sections() -> None:
    doc = parse_ads(DOC, "ads/x.md")
    assert [s.title for s in doc.sections] == ["Goal", "Validation"]
    goal = doc.sections[0]
    assert goal.code_blocks and "kubectl get pods" in goal.code_blocks[0][2]
    validation = doc.section("Validation")
    assert validation is not None and validation.line == 16
    assert validation.inline_code == [(17, "tests/fixtures/kubernetes_audit/x.jsonl")]


def test_front_matter_lines_are_file_lines() -> None:
    doc = parse_ads(DOC, "ads/x.md")
    assert doc.front is not None
    assert doc.front.line_of(("title",)) == 3
    assert doc.title == "Example strategy for parsing tests" and doc.title_line == 5


def test_the_ten_sections_in_palantirs_order() -> None:
    assert (
        ADS_SECTIONS[0] == "Goal" and ADS_SECTIONS[-1] == "Additional Resources" and len(ADS_SECTIONS) == 10
    )
