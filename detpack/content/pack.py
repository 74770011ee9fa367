"""The whole pack, loaded: data sources, rules, ADS documents and fixtures, plus what failed to load."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from detpack.content.ads import AdsDocument, load_ads
from detpack.content.datasources import DataSource, datasource_for_logsource, load_datasources
from detpack.content.fixtures import FixtureFile, load_fixtures
from detpack.content.rules import RuleFile, load_rules
from detpack.findings import Finding


@dataclass
class Pack:
    root: Path
    datasources: dict[str, DataSource]
    rules: list[RuleFile]
    ads: list[AdsDocument]
    fixtures: list[FixtureFile]
    load_findings: list[Finding] = field(default_factory=list)

    def rule_by_name(self, name: str) -> RuleFile | None:
        return next((r for r in self.rules if r.name == name), None)

    def datasource_of(self, rule: RuleFile) -> DataSource | None:
        return datasource_for_logsource(self.datasources, rule.logsource)


def find_root(start: Path) -> Path | None:
    """The pack root: the nearest directory at or above start that has rules/ and datasources/."""
    for candidate in (start, *start.parents):
        if (candidate / "rules").is_dir() and (candidate / "datasources").is_dir():
            return candidate
    return None


def load_pack(root: Path) -> Pack:
    """Load everything; content problems become findings, never exceptions (except unusable data sources)."""
    datasources = load_datasources(root)
    rules, rule_findings = load_rules(root)
    ads, ads_findings = load_ads(root)
    fixtures, fixture_findings = load_fixtures(root, datasources)
    return Pack(root, datasources, rules, ads, fixtures, [*rule_findings, *ads_findings, *fixture_findings])
