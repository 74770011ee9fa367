"""Validate the whole pack: every check, every file, in a stable order."""

from __future__ import annotations

from dataclasses import dataclass

from sigma.rule import SigmaRule

from detpack.content.pack import Pack
from detpack.coverage import compute_coverage
from detpack.findings import ContentError, Finding, Severity
from detpack.offline import configure_offline
from detpack.validate.ads import validate_ads
from detpack.validate.cost import leading_wildcard_findings
from detpack.validate.fixtures import validate_fixtures
from detpack.validate.rules import validate_rules


@dataclass
class ValidationResult:
    findings: list[Finding]
    parsed: dict[str, SigmaRule]  # rule name -> pySigma rule, for the rules that parsed

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]


def validate_pack(pack: Pack) -> ValidationResult:
    configure_offline()  # pySigma's ATT&CK validator would otherwise download MITRE data
    rule_findings, parsed = validate_rules(pack)
    fixture_findings = validate_fixtures(pack)  # binds expectations, which the ADS checks read
    cost_findings = [
        f for rule in pack.rules if rule.name in parsed for f in leading_wildcard_findings(pack, rule)
    ]
    try:
        coverage_findings = compute_coverage(pack).findings
    except ContentError as exc:
        coverage_findings = exc.findings
    findings = [
        *pack.load_findings,
        *rule_findings,
        *cost_findings,
        *fixture_findings,
        *validate_ads(pack),
        *coverage_findings,
    ]
    return ValidationResult(sorted(set(findings)), parsed)
