"""Execute every rule over every fixture event and compare with the expectations.

A rule sees the events of its own data source (in a SIEM its macro or index pattern scopes it so);
events of other data sources, and events outside the data source's scope (a Sysmon Event ID 5 in the
process-creation stream), are verdicts of "no match" by construction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sigma.rule import SigmaRule

from detpack.content.fixtures import FixtureEvent
from detpack.content.pack import Pack
from detpack.content.rules import RuleFile
from detpack.engines.sqlite import ReferenceTable, ReferenceTableError
from detpack.findings import Finding
from detpack.validate.rules import detection_keys


@dataclass(frozen=True)
class Verdict:
    rule: str
    event: str  # "<fixture path>:<line>"
    engine: str
    fired: bool
    expected: bool

    @property
    def ok(self) -> bool:
        return self.fired == self.expected


@dataclass
class ReplayResult:
    verdicts: list[Verdict] = field(default_factory=list)
    queries: dict[tuple[str, str], str] = field(default_factory=dict)  # (rule, engine) -> query
    findings: list[Finding] = field(default_factory=list)

    @property
    def failures(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.ok]


def all_events(pack: Pack) -> list[FixtureEvent]:
    return [event for fixture in pack.fixtures for event in fixture.events]


def replay_reference(
    pack: Pack, parsed: dict[str, SigmaRule], rule_names: set[str] | None = None
) -> ReplayResult:
    """Run the Sigma reference engine (SQLite) for every parsed rule over every fixture event."""
    result = ReplayResult()
    events = all_events(pack)
    by_source: dict[str, list[FixtureEvent]] = defaultdict(list)
    for fixture in pack.fixtures:
        by_source[fixture.datasource.name].extend(e for e in fixture.events if e.in_scope)
    rules_by_source: dict[str, list[RuleFile]] = defaultdict(list)
    for rule in pack.rules:
        ds = pack.datasource_of(rule)
        if rule.name in parsed and ds is not None and (rule_names is None or rule.name in rule_names):
            rules_by_source[ds.name].append(rule)
    for source, rules in sorted(rules_by_source.items()):
        source_events = by_source.get(source, [])
        referenced = {key.split("|")[0] for rule in rules for _, key in detection_keys(rule)} - {""}
        try:
            table = ReferenceTable.build([e.view for e in source_events], referenced)
        except ReferenceTableError as exc:
            result.findings.append(
                Finding(
                    pack.datasources[source].path,
                    0,
                    "reference-table",
                    str(exc),
                    "rename one of the fields in the fixtures",
                )
            )
            continue
        for rule in rules:
            name = rule.name
            try:
                sql = table.query_for(SigmaRule.from_dict(rule.data))
                hits = table.matches(sql)
            except Exception as exc:
                result.findings.append(
                    Finding(
                        rule.path,
                        rule.line("detection"),
                        "reference-engine",
                        f"the SQLite reference engine could not run the rule: {exc}",
                        "report this as a detpack bug if the rule validates",
                    )
                )
                continue
            result.queries[(name, "sqlite")] = sql
            hit_keys = {source_events[i].key for i in hits}
            for event in events:
                expected = event.expectation is not None and name in event.expectation.fires
                result.verdicts.append(Verdict(name, event.key, "sqlite", event.key in hit_keys, expected))
    return result
