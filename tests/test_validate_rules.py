"""Unit checks of the rule validation helpers."""

from __future__ import annotations

from sigma.rule import SigmaRule
from sigma.types import SigmaString
from sigma.validators.core.values import NumberAsStringIssue

from detpack.content.rules import RuleFile
from detpack.content.yamlfile import parse_yaml
from detpack.findings import Severity
from detpack.validate.rules import _issue_finding


def test_issue_with_sigma_string_field_is_rendered_not_crashed() -> None:
    # Regression: pySigma's SigmaString raises on == with None/"", which crashed `detpack validate`.
    doc = parse_yaml("title: t\ndetection:\n  sel:\n    Action: '9'\n  condition: sel\n", "rules/x/r.yml")
    rule = RuleFile("rules/x/r.yml", doc)
    sigma_rule = SigmaRule.from_dict(
        {"title": "t", "logsource": {"product": "x"}, "detection": doc.data["detection"]}
    )
    finding = _issue_finding(rule, NumberAsStringIssue([sigma_rule], SigmaString("9")))
    assert finding.severity is Severity.WARNING
    assert "string=9" in finding.message
    assert finding.line == 4  # the line of the key holding the value, not the detection block
