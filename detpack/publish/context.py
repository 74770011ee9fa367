"""What every publisher needs about one rule, gathered once: the rule, its data source and ADS, its
converted queries, its ATT&CK mapping, the fixture events that prove it, and the targets it is not shipped to.

Every artifact in dist/ is written from these objects, so the Splunk app, the Kibana rules, the coverage
layer and the catalog cannot disagree about a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from detpack.attack import Tactic, Technique, load_attack, tactic_for_tag, technique_for_tag
from detpack.content.ads import AdsDocument
from detpack.content.datasources import DataSource
from detpack.content.pack import Pack
from detpack.content.rules import RuleFile
from detpack.convert import TARGETS, Query
from detpack.engines.runners import ENGINES

LEVELS = ("informational", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Evidence:
    """A fixture event that proves a rule: an attack it must fire on, or a look-alike it must not."""

    fixture: str  # fixture file path
    line: int
    kind: str  # attack | benign
    note: str
    raw: str


@dataclass
class PublishedRule:
    rule: RuleFile
    datasource: DataSource
    ads: AdsDocument | None
    queries: dict[str, str]  # target name -> query text
    techniques: list[Technique]  # in the rule's tag order, known techniques only
    tactics: list[Tactic]  # in the rule's tag order
    unsupported: dict[str, str] = field(default_factory=dict)  # target -> why it is not shipped there
    evidence: list[Evidence] = field(default_factory=list)
    version: int = 1

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def rule_id(self) -> str:
        return self.rule.rule_id

    @property
    def title(self) -> str:
        return self.rule.title

    @property
    def schedule(self) -> CorrelationSchedule | None:
        """The bucket-aligned schedule of a correlation rule; None for a single-event rule."""
        from detpack.correlation import schedule_period  # imports the converters, which import this

        correlation = self.rule.data.get("correlation")
        timespan = correlation.get("timespan") if isinstance(correlation, dict) else None
        period = schedule_period(timespan) if isinstance(timespan, str) else None
        return correlation_schedule(*period) if period else None

    def text(self, key: str) -> str:
        value = self.rule.data.get(key)
        return value.strip() if isinstance(value, str) else ""

    def strings(self, key: str) -> list[str]:
        value = self.rule.data.get(key)
        return [str(item) for item in value] if isinstance(value, list) else []

    @property
    def level(self) -> str:
        level = self.text("level")
        return level if level in LEVELS else "medium"

    @property
    def ads_id(self) -> str:
        return str(self.ads.meta.get("id", "")) if self.ads else ""

    def ads_section(self, title: str) -> str:
        if self.ads is None:
            return ""
        section = self.ads.section(title)
        return section.text.strip() if section else ""

    def tactic_techniques(self) -> list[tuple[Tactic, list[Technique]]]:
        """Each tactic the rule tags, with the tagged techniques that belong to it (ATT&CK's own mapping)."""
        result = []
        for tactic in self.tactics:
            result.append((tactic, [t for t in self.techniques if tactic.shortname in t.tactics]))
        return result


def _ads_by_rule(pack: Pack) -> dict[str, AdsDocument]:
    owners: dict[str, AdsDocument] = {}
    for ads in sorted(pack.ads, key=lambda a: a.path):
        rules = ads.meta.get("rules")
        for name in rules if isinstance(rules, list) else []:
            owners.setdefault(str(name), ads)
    return owners


def _evidence(pack: Pack, rule: str) -> list[Evidence]:
    found = []
    for fixture in pack.fixtures:
        for event in fixture.events:
            expectation = event.expectation
            if expectation is None:
                continue
            if rule in expectation.fires or rule in expectation.lookalike_for:
                found.append(
                    Evidence(fixture.path, event.line, expectation.kind, expectation.note, event.raw)
                )
    return sorted(found, key=lambda e: (e.kind != "attack", e.fixture, e.line))


def unsupported_targets(documented_errors: Mapping[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """(rule, target) -> reason, from the engine differences that say a target cannot run a rule at all."""
    result = {}
    for (rule, engine), reason in documented_errors.items():
        spec = ENGINES.get(engine)
        if spec is not None and spec.target is not None:
            result[(rule, spec.target)] = " ".join(reason.split())
    return result


def published_rules(
    pack: Pack, queries: list[Query], documented_errors: Mapping[tuple[str, str], str] | None = None
) -> list[PublishedRule]:
    """The rules that converted for at least one target, sorted by name. A target without a query is
    recorded in `unsupported` (with the documented reason when tests/engine-differences.yml has one)."""
    attack = load_attack()
    by_rule: dict[str, dict[str, str]] = {}
    for query in queries:
        by_rule.setdefault(query.rule, {})[query.target] = query.text
    skipped = unsupported_targets(documented_errors or {})
    owners = _ads_by_rule(pack)
    result = []
    for rule in sorted(pack.rules, key=lambda r: r.name):
        ds = pack.datasource_of(rule)
        rule_queries = by_rule.get(rule.name, {})
        if ds is None or not rule_queries:
            continue
        unsupported = {t: r for (n, t), r in sorted(skipped.items()) if n == rule.name}
        for target in TARGETS:
            if target not in rule_queries:
                unsupported.setdefault(target, f"the rule does not convert to {TARGETS[target].title}")
        techniques: list[Technique] = []
        tactics: list[Tactic] = []
        for tag in rule.tags:
            technique_id = technique_for_tag(tag)
            tactic = tactic_for_tag(tag)
            if technique_id and technique_id in attack.techniques:
                techniques.append(attack.techniques[technique_id])
            elif tactic and tactic in attack.tactics:
                tactics.append(attack.tactics[tactic])
        result.append(
            PublishedRule(
                rule=rule,
                datasource=ds,
                ads=owners.get(rule.name),
                queries={t: rule_queries[t] for t in TARGETS if t in rule_queries},
                techniques=techniques,
                tactics=tactics,
                unsupported=unsupported,
                evidence=_evidence(pack, rule.name),
            )
        )
    return result


def technique_url(technique_id: str) -> str:
    """attack.mitre.org page of a technique or sub-technique (T1059.004 -> .../techniques/T1059/004/)."""
    known = load_attack().techniques.get(technique_id)
    if known is not None and known.url:
        return known.url.rstrip("/") + "/"
    return "https://attack.mitre.org/techniques/" + technique_id.replace(".", "/") + "/"


def tactic_url(tactic: Tactic) -> str:
    return f"https://attack.mitre.org/tactics/{tactic.id}/"


def as_json_value(value: Any) -> Any:
    """Rule content as plain JSON values (YAML dates and other scalars become strings)."""
    if isinstance(value, dict):
        return {str(k): as_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@dataclass(frozen=True)
class CorrelationSchedule:
    """When and over what a correlation search runs, so that each bucket it counts in is searched whole.

    The searches count events per bucket of the timespan (`bin _time span=1h` in SPL, `date_trunc` in
    ES|QL), and buckets start at clock boundaries. A search over "the last 65 minutes, every hour" would
    see parts of two buckets and count neither whole, missing beacons. So Splunk runs right after each
    bucket closes and searches exactly the bucket that closed (Splunk resolves a scheduled search's
    relative times from its scheduled time); Kibana's rules are not clock-aligned, so each run looks
    back two timespans, which holds every bucket whole in at least one run."""

    cron: str
    earliest: str
    latest: str
    kibana_interval: str
    kibana_from: str


def correlation_schedule(count: int, unit: str) -> CorrelationSchedule:
    """The schedule of a correlation whose timespan is `count` `unit` (m, h or d), as validated by
    detpack.correlation.schedule_period."""
    span = f"{count}{unit}"
    kibana = (span, f"now-{2 * count}{unit}")
    if unit == "m":  # run at each multiple of the span; search the bucket before the one just closed
        return CorrelationSchedule(f"*/{count} * * * *", f"-{2 * count}m@m", f"-{count}m@m", *kibana)
    if unit == "h":  # five minutes after the bucket closes, for indexing lag
        return CorrelationSchedule(f"5 */{count} * * *", f"-{count}h@h", "@h", *kibana)
    return CorrelationSchedule("5 0 * * *", "-1d@d", "@d", *kibana)
