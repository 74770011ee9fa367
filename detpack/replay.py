"""Execute every rule over every fixture event in every engine, and compare.

Two comparisons, both must hold:
- the Sigma reference (SQLite) against the expectations: which rules must fire on which events;
- every SIEM engine against the reference (the differential check), unless the difference is a
  documented, still-occurring exception in tests/engine-differences.yml.

A rule sees the events of its own data source; events of other data sources are "no match" by
construction (in a SIEM the macro or index pattern scopes the search so).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sigma.rule import SigmaRule

from detpack.content.datasources import DataSource
from detpack.content.fixtures import FixtureEvent
from detpack.content.pack import Pack
from detpack.content.rules import RuleFile
from detpack.content.yamlfile import load_yaml
from detpack.engines.runners import ENGINES, RUNNERS
from detpack.engines.sqlite import ReferenceTable, ReferenceTableError
from detpack.findings import ContentError, Finding
from detpack.validate.rules import detection_keys

DIFFERENCES_FILE = "tests/engine-differences.yml"


@dataclass(frozen=True)
class Verdict:
    rule: str
    event: str  # "<fixture path>:<line>"
    engine: str
    fired: bool
    expected: bool  # what the expectation file says
    reference: bool  # what the Sigma reference engine said
    documented: bool = False  # a recorded, still-occurring difference from the reference

    @property
    def ok(self) -> bool:
        if self.engine == "sqlite":
            return self.fired == self.expected
        return self.fired == self.reference or self.documented


@dataclass(frozen=True)
class Difference:
    rule: str
    engine: str
    event: str
    reason: str
    line: int


@dataclass
class ReplayResult:
    engines: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    queries: dict[tuple[str, str], str] = field(default_factory=dict)  # (rule, engine) -> query text
    findings: list[Finding] = field(default_factory=list)
    documented_errors: dict[tuple[str, str], str] = field(default_factory=dict)  # (rule, engine) -> reason

    @property
    def failures(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.ok]


def load_differences(pack: Pack) -> list[Difference]:
    path = pack.root / DIFFERENCES_FILE
    if not path.exists():
        return []
    doc = load_yaml(path, DIFFERENCES_FILE)
    items = doc.data.get("differences") if isinstance(doc.data, dict) else None
    if not isinstance(items, list):
        raise ContentError(
            [
                Finding(
                    DIFFERENCES_FILE,
                    1,
                    "differences",
                    "expected 'differences:' with a list",
                    "see the comment at the top of the file",
                )
            ]
        )
    result = []
    findings = []
    for index, item in enumerate(items):
        line = doc.line_of(("differences", index))
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item.get(k) for k in ("rule", "engine", "event", "reason")
        ):
            findings.append(
                Finding(
                    DIFFERENCES_FILE,
                    line,
                    "differences",
                    "each difference needs rule, engine, event and reason (strings)",
                    "fill in all four",
                )
            )
            continue
        if item["engine"] not in ENGINES or item["engine"] == "sqlite":
            findings.append(
                Finding(
                    DIFFERENCES_FILE,
                    line,
                    "differences",
                    f"unknown engine {item['engine']!r}",
                    f"use one of {', '.join(e for e in ENGINES if e != 'sqlite')}",
                )
            )
            continue
        result.append(Difference(item["rule"], item["engine"], item["event"], item["reason"], line))
    if findings:
        raise ContentError(findings)
    return result


class ViewCache:
    """The Splunk and Elastic views of each event, built once per run by the ingest models."""

    def __init__(self) -> None:
        self._views: dict[tuple[str, str], Any] = {}

    def view(self, kind: str, ds: DataSource, event: FixtureEvent) -> Any:
        key = (kind, event.key)
        if key not in self._views:
            if kind == "splunk":
                from detpack.ingest.splunk import splunk_event

                self._views[key] = splunk_event(ds, event.native, event.raw)
            elif kind == "ecs":
                from detpack.ingest.ecs import ecs_document

                self._views[key] = ecs_document(ds.name, event.native)
            else:
                raise ValueError(kind)
        return self._views[key]


def _field_types(ds: DataSource) -> Mapping[str, str]:
    from detpack.ingest.fields import load_field_types

    return load_field_types(ds.name)


def replay(
    pack: Pack,
    parsed: dict[str, SigmaRule],
    queries: Mapping[tuple[str, str], str],
    rule_names: set[str] | None = None,
    engines: Iterable[str] = ENGINES,
) -> ReplayResult:
    """Run the chosen engines. `queries` maps (rule name, conversion target) to the converted query."""
    engine_names = [e for e in ENGINES if e in set(engines)]
    result = ReplayResult(engines=engine_names)
    try:
        differences = load_differences(pack)
    except ContentError as exc:
        result.findings += exc.findings
        differences = []
    documented = {(d.rule, d.engine, d.event): d for d in differences}
    used: set[tuple[str, str, str]] = set()
    result.documented_errors = {(d.rule, d.engine): d.reason for d in differences if d.event == "all"}
    all_events = [event for fixture in pack.fixtures for event in fixture.events]
    by_source: dict[str, list[FixtureEvent]] = defaultdict(list)
    for fixture in pack.fixtures:
        by_source[fixture.datasource.name].extend(fixture.events)
    rules_by_source: dict[str, list[RuleFile]] = defaultdict(list)
    for rule in pack.rules:
        ds = pack.datasource_of(rule)
        if rule.name in parsed and ds is not None and (rule_names is None or rule.name in rule_names):
            rules_by_source[ds.name].append(rule)
    views = ViewCache()
    for source, rules in sorted(rules_by_source.items()):
        ds = pack.datasources[source]
        events = by_source.get(source, [])
        reference = _run_reference(pack, ds, rules, events, result)
        for rule in rules:
            if rule.name not in reference:
                continue
            ref_hits = reference[rule.name]
            for engine in engine_names:
                hits = (
                    ref_hits
                    if engine == "sqlite"
                    else _run_engine(engine, rule, ds, events, queries, views, result)
                )
                if (rule.name, engine) in result.documented_errors:
                    if hits is None:  # the documented limitation still holds
                        used.add((rule.name, engine, "all"))
                    continue
                if hits is None:
                    continue
                for event in all_events:
                    expected = event.expectation is not None and rule.name in event.expectation.fires
                    fired = event.key in hits
                    is_documented = False
                    if engine != "sqlite" and fired != (event.key in ref_hits):
                        is_documented = (rule.name, engine, event.key) in documented
                        if is_documented:
                            used.add((rule.name, engine, event.key))
                    result.verdicts.append(
                        Verdict(
                            rule.name,
                            event.key,
                            engine,
                            fired,
                            expected,
                            event.key in ref_hits,
                            is_documented,
                        )
                    )
    ran = {(v.rule, v.engine) for v in result.verdicts} | set(result.documented_errors)
    for key, difference in sorted(documented.items()):
        if key not in used and (difference.rule, difference.engine) in ran:
            result.findings.append(
                Finding(
                    DIFFERENCES_FILE,
                    difference.line,
                    "difference-stale",
                    f"{difference.engine} now agrees with the reference for "
                    f"{difference.rule} on {difference.event}",
                    "delete this entry: the difference no longer occurs",
                )
            )
    return result


def _run_reference(
    pack: Pack, ds: DataSource, rules: list[RuleFile], events: list[FixtureEvent], result: ReplayResult
) -> dict[str, set[str]]:
    in_scope = [e for e in events if e.in_scope]
    referenced = {key.split("|")[0] for rule in rules for _, key in detection_keys(rule)} - {""}
    try:
        table = ReferenceTable.build([e.view for e in in_scope], referenced)
    except ReferenceTableError as exc:
        result.findings.append(
            Finding(ds.path, 0, "reference-table", str(exc), "rename one of the fields in the fixtures")
        )
        return {}
    hits: dict[str, set[str]] = {}
    for rule in rules:
        try:
            sql = table.query_for(SigmaRule.from_dict(rule.data))
            matched = table.matches(sql)
        except Exception as exc:
            result.findings.append(
                Finding(
                    rule.path,
                    rule.line("detection"),
                    "engine-error",
                    f"the SQLite reference engine could not run the rule: {exc}",
                    "report this as a detpack bug if the rule validates",
                )
            )
            continue
        result.queries[(rule.name, "sqlite")] = sql
        hits[rule.name] = {in_scope[i].key for i in matched}
    return hits


def _run_engine(
    engine: str,
    rule: RuleFile,
    ds: DataSource,
    events: list[FixtureEvent],
    queries: Mapping[tuple[str, str], str],
    views: ViewCache,
    result: ReplayResult,
) -> set[str] | None:
    spec = ENGINES[engine]
    assert spec.target is not None
    query = queries.get((rule.name, spec.target))
    if query is None:  # conversion failed: already a finding of the convert step
        return None
    result.queries[(rule.name, engine)] = query
    try:
        event_views = [views.view(spec.view, ds, e) for e in events]
        types = _field_types(ds) if spec.view == "ecs" else {}
        matched = RUNNERS[engine](query, event_views, ds, types)
    except Exception as exc:  # a query an engine rejects is a finding (or documented), never a crash
        if (rule.name, engine) in result.documented_errors:
            return None
        result.findings.append(
            Finding(
                rule.path,
                rule.line("detection"),
                "engine-error",
                f"{spec.title} rejected the {spec.target} query: {exc} -- query: {query}",
                "fix the rule or the pipeline so the target accepts the query",
            )
        )
        return None
    return {events[i].key for i in matched}
