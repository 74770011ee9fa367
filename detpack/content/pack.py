"""The whole pack, loaded: data sources, rules, ADS documents and fixtures, plus what failed to load."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from detpack.content.ads import AdsDocument, load_ads
from detpack.content.datasources import DataSource, datasource_for_logsource, load_datasources
from detpack.content.fixtures import FixtureFile, load_fixtures
from detpack.content.rules import RuleFile, load_rules
from detpack.findings import Finding
from detpack.result_cache import ResultCache


@dataclass
class Pack:
    root: Path
    datasources: dict[str, DataSource]
    rules: list[RuleFile]
    ads: list[AdsDocument]
    fixtures: list[FixtureFile]
    load_findings: list[Finding] = field(default_factory=list)
    # What commands derive from the loaded content more than once (the correlations, resolved), by name.
    # Not copied by dataclasses.replace: a view with other fixtures derives its own.
    derived: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def rule_by_name(self, name: str) -> RuleFile | None:
        return self._rules_by_name.get(name)

    @cached_property
    def _rules_by_name(self) -> dict[str, RuleFile]:
        by_name: dict[str, RuleFile] = {}
        for rule in self.rules:  # the first file of a duplicated name, as before
            by_name.setdefault(rule.name, rule)
        return by_name

    def datasource_of(self, rule: RuleFile) -> DataSource | None:
        return datasource_for_logsource(self.datasources, rule.logsource)


def find_root(start: Path) -> Path | None:
    """The pack root: the nearest directory at or above start that has rules/ and datasources/."""
    for candidate in (start, *start.parents):
        if (candidate / "rules").is_dir() and (candidate / "datasources").is_dir():
            return candidate
    return None


def load_pack(root: Path, cache: ResultCache | None = None) -> Pack:
    """Load everything; content problems become findings, never exceptions (except unusable data sources).
    With a cache, ADS documents parsed before from the same bytes are taken from it."""
    datasources = load_datasources(root)
    rules, rule_findings = load_rules(root, cache)
    ads, ads_findings = load_ads(root, cache)
    fixtures, fixture_findings = load_fixtures(root, datasources, cache)
    if cache is not None:
        cache.flush()
    return Pack(root, datasources, rules, ads, fixtures, [*rule_findings, *ads_findings, *fixture_findings])
