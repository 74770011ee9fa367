"""Execute every rule over every fixture event in every engine, and compare.

Two comparisons, both must hold:
- the Sigma reference (SQLite) against the expectations: which rules must fire on which events;
- every SIEM engine against the reference (the differential check), unless the difference is a
  documented, still-occurring exception in tests/engine-differences.yml.

A rule sees the events of its own data source; events of other data sources are "no match" by
construction (in a SIEM the macro or index pattern scopes the search so).

A correlation rule fires on the events of the occurrences each engine finds (docs/formats.md,
"Correlation rules"), so its verdicts compare like any rule's; a target that cannot express it must be
recorded as `event: all` in tests/engine-differences.yml (detpack.correlation.UNSUPPORTED says why).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from sigma.rule import SigmaRule

from detpack.content.datasources import DataSource
from detpack.content.fixtures import FixtureEvent
from detpack.content.pack import Pack
from detpack.content.rules import RuleFile
from detpack.content.yamlfile import load_yaml
from detpack.correlation import (
    Correlation,
    building_blocks,
    reference_table,
    resolve_correlations,
    timestamp_field,
    unsupported_reason,
)
from detpack.correlation import run_engine as run_correlation
from detpack.engines.budget import BudgetExceeded, time_budget
from detpack.engines.runners import ENGINES, RUNNERS
from detpack.engines.sqlite import ReferenceTable, ReferenceTableError
from detpack.findings import ContentError, Finding
from detpack.ingest.timestamps import parse_timestamp
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
    """The Splunk and Elastic views of each event, built once per run by the ingest models.

    `time_fields` (data source name -> its timestamp field) gives Splunk views their `_time`."""

    def __init__(self, time_fields: Mapping[str, str] | None = None) -> None:
        self._views: dict[tuple[str, str], Any] = {}
        self._lists: dict[tuple[str, str, tuple[str, ...]], list[Any]] = {}
        self.time_fields = dict(time_fields or {})

    def view(self, kind: str, ds: DataSource, event: FixtureEvent) -> Any:
        key = (kind, event.key)
        if key not in self._views:
            if kind == "splunk":
                from detpack.ingest.splunk import splunk_event

                time_field = self.time_fields.get(ds.name)
                time = parse_timestamp(event.view.get(time_field)) if time_field else None
                self._views[key] = splunk_event(ds, event.native, event.raw, time=time)
            elif kind == "ecs":
                from detpack.ingest.ecs import ecs_document

                self._views[key] = ecs_document(ds.name, event.native)
            else:
                raise ValueError(kind)
        return self._views[key]

    def views(self, kind: str, ds: DataSource, events: list[FixtureEvent]) -> list[Any]:
        """The same list object for the same events, so engines that index a document list once
        (Lucene, ES|QL: cached by the list's identity) do so once per data source, not once per rule."""
        key = (kind, ds.name, tuple(e.key for e in events))
        cached = self._lists.get(key)
        if cached is None:
            cached = self._lists[key] = [self.view(kind, ds, e) for e in events]
        return cached


def _field_types(ds: DataSource) -> Mapping[str, str]:
    from detpack.ingest.fields import load_field_types

    return load_field_types(ds.name)


def replay(
    pack: Pack,
    parsed: Collection[str],
    queries: Mapping[tuple[str, str], str],
    rule_names: set[str] | None = None,
    engines: Iterable[str] = ENGINES,
    progress: Callable[[str, str], None] | None = None,
) -> ReplayResult:
    """Run the chosen engines over the rules named in `parsed` (the validation step's rules that parsed).
    `queries` maps (rule name, conversion target) to the converted query.

    `progress(engine, rule)` is called after each engine has run a rule (for a progress display).
    """
    engine_names = [e for e in ENGINES if e in set(engines)]
    result = ReplayResult(engines=engine_names)
    try:
        differences = load_differences(pack)
    except ContentError as exc:
        result.findings += exc.findings
        differences = []
    documented = {(d.rule, d.engine, d.event): d for d in differences}
    used: set[tuple[str, str, str]] = set()
    tried: set[tuple[str, str]] = set()  # (rule, engine) pairs with an "all" entry that this run ran
    result.documented_errors = {(d.rule, d.engine): d.reason for d in differences if d.event == "all"}
    all_events = [event for fixture in pack.fixtures for event in fixture.events]
    by_source: dict[str, list[FixtureEvent]] = defaultdict(list)
    for fixture in pack.fixtures:
        by_source[fixture.datasource.name].extend(fixture.events)
    # Correlation rules run with their base rules; building blocks (generate: false) never run alone.
    correlations, _ = resolve_correlations(pack)  # their findings are the validate step's
    blocks = building_blocks(pack)
    runnable = set(parsed) | {
        name for name, c in correlations.items() if all(b.name in parsed for b in c.bases)
    }
    rules_by_source: dict[str, list[RuleFile]] = defaultdict(list)
    for rule in pack.rules:
        ds = pack.datasource_of(rule)
        if (
            rule.name in runnable
            and rule.name not in blocks
            and ds is not None
            and (rule_names is None or rule.name in rule_names)
        ):
            rules_by_source[ds.name].append(rule)
    views = ViewCache(
        {ds.name: field for ds in pack.datasources.values() if (field := timestamp_field(pack.root, ds))}
    )
    for source, rules in sorted(rules_by_source.items()):
        ds = pack.datasources[source]
        events = by_source.get(source, [])
        reference = _run_reference(pack, ds, rules, events, result, correlations)
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
                if progress is not None:
                    progress(engine, rule.name)
                if (rule.name, engine) in result.documented_errors:
                    tried.add((rule.name, engine))
                    if hits is None:  # the documented limitation still holds
                        used.add((rule.name, engine, "all"))
                    continue
                target = ENGINES[engine].target
                correlation = correlations.get(rule.name)
                if hits is None and correlation is not None and target is not None:
                    reason = unsupported_reason(target, correlation.type)
                    if reason is not None:  # the target cannot express it, and nobody said so
                        result.findings.append(
                            Finding(
                                rule.path,
                                rule.line("correlation"),
                                "correlation-unsupported",
                                f"{ENGINES[engine].title} cannot run this {correlation.type} correlation: "
                                f"{reason}",
                                f"record it in {DIFFERENCES_FILE} (rule: {rule.name}, engine: {engine}, "
                                "event: all, reason: what the SOC must know)",
                            )
                        )
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
    ran = {(v.rule, v.engine) for v in result.verdicts} | tried  # only entries of rules this run ran
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
    pack: Pack,
    ds: DataSource,
    rules: list[RuleFile],
    events: list[FixtureEvent],
    result: ReplayResult,
    correlations: Mapping[str, Correlation] | None = None,
) -> dict[str, set[str]]:
    in_scope = [e for e in events if e.in_scope]
    referenced = {key.split("|")[0] for rule in rules for _, key in detection_keys(rule)} - {""}
    correlations = correlations or {}
    mine = [correlations[rule.name] for rule in rules if rule.name in correlations]
    try:
        if mine:  # with the event-time column and the fields of the correlations and their base rules
            table = reference_table([e.view for e in in_scope], mine, referenced)
        else:
            table = ReferenceTable.build([e.view for e in in_scope], referenced)
    except ReferenceTableError as exc:
        result.findings.append(
            Finding(ds.path, 0, "reference-table", str(exc), "rename one of the fields in the fixtures")
        )
        return {}
    hits: dict[str, set[str]] = {}
    for rule in rules:
        try:
            correlation = correlations.get(rule.name)
            if correlation is not None:
                sql = table.correlation_query(correlation.collection())
            else:
                sql = table.query_for(SigmaRule.from_dict(rule.data))
            with time_budget(None, f"the reference engine on rule {rule.name}"):
                matched = table.correlation_matches(sql) if correlation else table.matches(sql)
        except BudgetExceeded as exc:
            result.findings.append(
                Finding(
                    rule.path,
                    rule.line("detection"),
                    "engine-time",
                    str(exc),
                    "simplify the rule's regular expressions (no '.*' runs that can overlap) or shorten "
                    "the fixture values they scan",
                )
            )
            continue
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
        event_views = views.views(spec.view, ds, events)
        types = _field_types(ds) if spec.view == "ecs" else {}
        # Lucene runs in the JVM on automata (and its first call starts the JVM): no budget there.
        with nullcontext() if engine == "lucene" else time_budget(None, f"{spec.title} on rule {rule.name}"):
            if rule.is_correlation:  # a transforming search over all the events
                matched = run_correlation(engine, query, event_views, ds, types)
            else:
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
