"""Validate the whole pack: every check, every file, in a stable order."""

from __future__ import annotations

from dataclasses import dataclass

from detpack.content.pack import Pack
from detpack.coverage import compute_coverage
from detpack.findings import ContentError, Finding, Severity
from detpack.offline import configure_offline
from detpack.result_cache import ResultCache
from detpack.validate.ads import validate_ads
from detpack.validate.fixtures import validate_fixtures
from detpack.validate.rules import validate_rules


@dataclass
class ValidationResult:
    findings: list[Finding]
    parsed: set[str]  # names of the detection rules pySigma parsed cleanly (the ones that convert and run)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]


def validate_pack(pack: Pack, cache: ResultCache | None = None) -> ValidationResult:
    """Every check. With a cache (detpack/result_cache.py), the single-rule checks of a rule file read
    before from the same bytes are not run again; the checks across files always run."""
    configure_offline()  # pySigma's ATT&CK validator would otherwise download MITRE data
    rule_findings, parsed = validate_rules(pack, cache)
    fixture_findings = validate_fixtures(pack, cache)  # binds expectations, which the ADS checks read
    ads_findings = validate_ads(pack, cache)
    if cache is not None:
        cache.flush()
    try:
        coverage_findings = compute_coverage(pack).findings
    except ContentError as exc:
        coverage_findings = exc.findings
    findings = [
        *pack.load_findings,
        *rule_findings,
        *fixture_findings,
        *ads_findings,
        *coverage_findings,
    ]
    return ValidationResult(sorted(set(findings)), parsed)
