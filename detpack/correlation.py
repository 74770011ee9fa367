"""Sigma correlation rules: validation, conversion, execution and what each target can express.

A correlation rule is its own file in `rules/<data source>/` with `correlation:` (type, rules, group-by,
timespan, condition) and the pack's usual metadata (`schemas/sigma-correlation.schema.json`). Its base
rules are detection rules of the pack, named by their Sigma `name` (which equals their file stem) or by
their `id`, and must all read one data source: a SIEM search is scoped by one macro or index pattern, so
the pack cannot run a correlation across data sources (docs/formats.md, "Correlation rules").

`generate` (inside `correlation:`, where pySigma reads it; default false as in the specification) says
whether the base rules are also stand-alone detections. When it is false they are *building blocks*: not
converted on their own, not shipped, not run alone, and they need neither their own fixtures nor their
own ADS (the ADS listing the correlation owns them).

Everything below goes through pySigma: a correlation is converted and executed together with its base
rules as one `SigmaCollection`, which resolves the references.

Verdicts: the correlation fires on every base-rule event of an occurrence, i.e. of a group (equal
group-by values) inside a window of `timespan` whose count satisfies the condition. The reference engine
finds occurrences with sliding windows (pySigma's SQLite correlation SQL); Splunk (`bin _time`) and
ES|QL (`date_trunc`) with fixed windows aligned to the epoch. docs/formats.md defines this precisely.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.validators.core import validators as core_validators

from detpack.attack import load_attack
from detpack.content.datasources import DataSource
from detpack.content.pack import Pack
from detpack.content.rules import RuleFile, reference_index, resolve_reference
from detpack.content.yamlfile import load_yaml
from detpack.convert import Query, Target
from detpack.engines.sqlite import ReferenceTable
from detpack.findings import ContentError, Finding
from detpack.ingest.reference import View
from detpack.ingest.timestamps import parse_timestamp
from detpack.validate.rules import (
    SKIPPED_VALIDATORS,
    _issue_finding,
    check_attack_tags,
    check_location,
    detection_keys,
)
from detpack.validate.schema import load_validator, schema_findings

SCHEMA = "schemas/sigma-correlation.schema.json"
TYPES = ("event_count", "value_count", "temporal", "temporal_ordered")
OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")

_EQL_REASONS = {
    "event_count": (
        "pySigma's EQL backend writes `sequence by <group-by> with maxspan=<timespan> [...] with runs=N`: "
        "a sequence of exactly N events with N taken from the threshold whatever the operator (gt: 3 and "
        "lt: 3 also give runs=3), and Elasticsearch returns each sequence once, so it neither applies the "
        "condition nor flags every event of a group (pySigma-backend-elasticsearch#216); Elastic's eql "
        "library rejects `with runs` too"
    ),
    "value_count": (
        "pySigma's EQL backend writes `... by <field> with runs=N`, which asks for N events with the SAME "
        "value of the field, not N distinct values"
    ),
    "temporal": (
        "pySigma's EQL backend writes `sample by <group-by> [...] [...]` with no maxspan: the timespan is "
        "dropped, so events any time apart would match"
    ),
    "temporal_ordered": (
        "pySigma's EQL backend writes a malformed `sequence ... by  with runs=2` for temporal_ordered"
    ),
}
# (target, correlation type) -> why the target cannot express it. Every such pair of a rule must be recorded
# in tests/engine-differences.yml (event: all); detpack test fails on an unrecorded one.
UNSUPPORTED: dict[tuple[str, str], str] = {
    **{
        ("lucene", t): (
            "a Lucene query string selects single documents and cannot count or group them "
            "(pySigma's Lucene backend: 'Backend does not support correlation rules')"
        )
        for t in TYPES
    },
    **{("eql", t): reason for t, reason in _EQL_REASONS.items()},
    ("splunk", "temporal_ordered"): (
        "pysigma-backend-splunk 2.1.0 has no temporal_ordered conversion "
        "(its stats method cannot order events)"
    ),
    ("esql", "temporal_ordered"): (
        "pySigma's ES|QL backend 2.1.1 has no temporal_ordered conversion "
        "(its stats method cannot order events)"
    ),
}


def unsupported_reason(target: str, correlation_type: str) -> str | None:
    """Why the target cannot express this correlation type (None: it can, and the query is executed)."""
    return UNSUPPORTED.get((target, correlation_type))


def schedule_period(timespan: str) -> tuple[int, str] | None:
    """The timespan as (count, unit) when the published searches can run on windows aligned with the
    buckets the queries count in (`bin _time span=` in Splunk, `date_trunc` in ES|QL); None otherwise."""
    match = re.fullmatch(r"([1-9][0-9]*)([mhd])", timespan)
    if match is None:
        return None
    count, unit = int(match.group(1)), match.group(2)
    if (unit == "m" and 60 % count == 0) or (unit == "h" and 24 % count == 0) or (unit == "d" and count == 1):
        return (count // 60, "h") if (unit == "m" and count == 60) else (count, unit)
    return None


def correlation_unsupported(rule: RuleFile, target: str) -> str | None:
    """Why the target cannot express this correlation rule (None: it can, or the rule is no correlation)."""
    correlation = rule.data.get("correlation")
    if not isinstance(correlation, dict) or not isinstance(correlation.get("type"), str):
        return None
    return unsupported_reason(target, correlation["type"])


# --------------------------------------------------------------------------------------------------
# The resolved correlation
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Correlation:
    """A correlation rule that validated, with its base rules and its data source resolved."""

    rule: RuleFile
    type: str
    bases: tuple[RuleFile, ...]
    group_by: tuple[str, ...]
    timespan: str
    seconds: int
    operator: str | None  # gt, gte, ...; None for a temporal rule without condition (all base rules)
    threshold: int | None
    field: str | None  # value_count's counted field
    generate: bool
    datasource: DataSource
    time_field: str

    @property
    def name(self) -> str:
        return self.rule.name

    def collection(self) -> SigmaCollection:
        """A fresh SigmaCollection of the base rules and the correlation (pipelines change rules in place).
        The base rules produce no stand-alone query here: `generate` is applied by the pack itself."""
        correlation = copy.deepcopy(self.rule.data)
        correlation["correlation"]["generate"] = False
        collection = SigmaCollection.from_dicts([copy.deepcopy(b.data) for b in self.bases] + [correlation])
        collection.resolve_rule_references()
        return collection

    def fields(self) -> set[str]:
        """Every field the correlation and its base rules read (for the reference table)."""
        names = {key.split("|")[0] for base in self.bases for _, key in detection_keys(base)}
        names.update(self.group_by)
        if self.field:
            names.add(self.field)
        return names - {""}


@cache
def _timestamp_field(datasource_file: Path, _mtime_ns: int, _size: int) -> str | None:
    try:
        doc = load_yaml(datasource_file, datasource_file.name)
    except ContentError:
        return None
    value = doc.data.get("timestamp_field") if isinstance(doc.data, dict) else None
    return str(value) if isinstance(value, str) and value else None


def timestamp_field(root: Path, datasource: DataSource) -> str | None:
    """`timestamp_field` of datasources/<name>.yml: the event field holding the event's time."""
    path = (root / datasource.path).resolve()
    try:
        stat = path.stat()
    except OSError:
        return None
    return _timestamp_field(path, stat.st_mtime_ns, stat.st_size)  # re-read when the file changes


def event_time(view: Mapping[str, Any], field: str) -> float | None:
    """The event's time in epoch seconds, read from its reference view."""
    return parse_timestamp(view.get(field))


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


def _close(word: str, choices: Sequence[str]) -> str:
    match = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"did you mean {match[0]!r}?" if match else ""


def check_rule_name(rule: RuleFile) -> list[Finding]:
    """A rule's Sigma `name`, when set, is its file stem: the one name ADS, fixtures and correlations use."""
    name = rule.data.get("name")
    if isinstance(name, str) and name != rule.name:
        return [
            Finding(
                rule.path,
                rule.line("name"),
                "rule-name",
                f"the Sigma name {name!r} differs from the file name {rule.name!r}",
                f"set name: {rule.name} (the pack refers to rules by file name)",
            )
        ]
    return []


def _reference_findings(rule: RuleFile, pack: Pack) -> tuple[list[RuleFile], list[Finding]]:
    findings: list[Finding] = []
    bases: list[RuleFile] = []
    detection_rules = [r for r in pack.rules if not r.is_correlation]
    known = sorted({str(r.data.get("name") or r.name) for r in detection_rules})
    for index, reference in enumerate(rule.references):
        line = rule.line("correlation", "rules", index)
        base = resolve_reference(pack.rules, reference)
        if base is None:
            chained = next(
                (r for r in pack.rules if r.is_correlation and reference in (r.name, r.rule_id)), None
            )
            if chained is not None:
                findings.append(
                    Finding(
                        rule.path,
                        line,
                        "correlation-chain",
                        f"{reference!r} is the correlation rule {chained.path}; the pack does not chain "
                        "correlations",
                        "refer to detection rules only, or fold the other correlation's logic into this one",
                    )
                )
                continue
            hint = _close(reference, known)
            findings.append(
                Finding(
                    rule.path,
                    line,
                    "correlation-unknown-rule",
                    f"no detection rule has the Sigma name or id {reference!r}",
                    hint or "use the `name:` (= file name) or the id of a rule in rules/",
                )
            )
            continue
        if reference not in (base.data.get("name"), base.rule_id):
            findings.append(
                Finding(
                    rule.path,
                    line,
                    "correlation-unnamed-rule",
                    f"{base.path} has no Sigma name {reference!r}, so pySigma cannot resolve the reference",
                    f"add 'name: {base.name}' to {base.path}",
                )
            )
            continue
        if base.name in {b.name for b in bases}:
            findings.append(
                Finding(rule.path, line, "correlation-rules", f"{base.name} is listed twice", "list it once")
            )
            continue
        bases.append(base)
    return bases, findings


def _condition(rule: RuleFile) -> tuple[str | None, int | None, str | None]:
    condition = rule.data["correlation"].get("condition")
    if not isinstance(condition, dict):
        condition = {}
    operator = next((op for op in OPERATORS if op in condition), None)
    threshold = condition.get(operator) if operator else None
    field = condition.get("field")
    return (
        operator,
        threshold if isinstance(threshold, int) else None,
        field if isinstance(field, str) else None,
    )


def prepare(pack: Pack, rule: RuleFile) -> tuple[Correlation | None, list[Finding]]:
    """All checks of one correlation rule; the resolved Correlation when there is no error."""
    findings = schema_findings(
        load_validator(pack.root / SCHEMA), rule.data, rule.path, "schema", rule.doc.line_of
    )
    findings += check_rule_name(rule)
    findings += check_attack_tags(rule, load_attack())
    correlation = rule.data.get("correlation")
    if not isinstance(correlation, dict):
        return None, findings
    bases, reference_findings = _reference_findings(rule, pack)
    findings += reference_findings
    timespan = correlation.get("timespan")
    if isinstance(timespan, str) and schedule_period(timespan) is None:
        findings.append(
            Finding(
                rule.path,
                rule.line("correlation", "timespan"),
                "correlation-timespan",
                f"timespan {timespan!r} cannot be scheduled on clock-aligned windows: the searches count "
                "events in buckets of the timespan, and each bucket must be searched whole by one run",
                "use minutes that divide an hour (1m, 2m, 3m, 4m, 5m, 6m, 10m, 12m, 15m, 20m, 30m), "
                "hours that divide a day (1h, 2h, 3h, 4h, 6h, 8h, 12h, 24h) or 1d",
            )
        )
    sources: dict[str, list[str]] = {}
    for base in bases:
        ds = pack.datasource_of(base)
        sources.setdefault(ds.name if ds else f"logsource {base.logsource}", []).append(base.name)
    if len(sources) > 1:
        detail = "; ".join(f"{name}: {', '.join(rules)}" for name, rules in sorted(sources.items()))
        findings.append(
            Finding(
                rule.path,
                rule.line("correlation", "rules"),
                "correlation-datasources",
                f"the base rules read different data sources ({detail})",
                "a correlation's base rules must share one data source: each SIEM search is scoped by one "
                "macro or index pattern",
            )
        )
        return None, findings
    datasource = pack.datasource_of(bases[0]) if bases else None
    if datasource is None or reference_findings:
        return None, findings
    findings += check_location(rule, pack)
    group_by = correlation.get("group-by")
    for index, field in enumerate(group_by if isinstance(group_by, list) else []):
        if isinstance(field, str) and not datasource.knows_field(field):
            findings.append(
                Finding(
                    rule.path,
                    rule.line("correlation", "group-by", index),
                    "field-unknown",
                    f"group-by field {field!r} is not a field of data source {datasource.name}",
                    _close(field, sorted(datasource.fields)) or f"use a field listed in {datasource.path}",
                )
            )
    operator, threshold, counted = _condition(rule)
    if counted is not None and not datasource.knows_field(counted):
        findings.append(
            Finding(
                rule.path,
                rule.line("correlation", "condition", "field"),
                "field-unknown",
                f"condition field {counted!r} is not a field of data source {datasource.name}",
                _close(counted, sorted(datasource.fields)) or f"use a field listed in {datasource.path}",
            )
        )
    time_field = timestamp_field(pack.root, datasource)
    if time_field is None:
        findings.append(
            Finding(
                rule.path,
                rule.line("correlation"),
                "correlation-timestamp",
                f"data source {datasource.name} declares no timestamp_field, so no window can be applied",
                f"add 'timestamp_field: <the event's time field>' to {datasource.path}",
            )
        )
    if findings or time_field is None:
        return None, findings
    try:
        collection = SigmaCollection.from_dicts(
            [copy.deepcopy(b.data) for b in bases] + [copy.deepcopy(rule.data)], collect_errors=True
        )
        errors = [error for r in collection.rules for error in r.errors]
        if not errors:
            collection.resolve_rule_references()
    except SigmaError as exc:
        errors = [exc]
    if errors:
        return None, [
            Finding(
                rule.path,
                rule.line("correlation"),
                "sigma-parse",
                f"pySigma: {error}",
                "correct the correlation as the message says",
            )
            for error in errors
        ]
    sigma_rule = collection.rules[-1]
    assert isinstance(sigma_rule, SigmaCorrelationRule)
    validators = [cls() for name, cls in sorted(core_validators.items()) if name not in SKIPPED_VALIDATORS]
    issues = [_issue_finding(rule, issue) for v in validators for issue in v.validate(sigma_rule)]
    if issues:
        return None, issues
    return (
        Correlation(
            rule=rule,
            type=str(correlation["type"]),
            bases=tuple(bases),
            group_by=tuple(str(f) for f in correlation["group-by"]),
            timespan=str(correlation["timespan"]),
            seconds=sigma_rule.timespan.seconds,
            operator=operator,
            threshold=threshold,
            field=counted,
            generate=bool(correlation.get("generate", False)),
            datasource=datasource,
            time_field=time_field,
        ),
        [],
    )


def resolve_correlations(pack: Pack) -> tuple[dict[str, Correlation], list[Finding]]:
    """Every correlation rule of the pack: the valid ones by name, and the findings of the others.
    Resolved once per loaded pack (selection, validation and replay all ask; pySigma parses each)."""
    if "correlations" not in pack.derived:
        pack.derived["correlations"] = _resolve_correlations(pack)
    valid, findings = pack.derived["correlations"]
    return dict(valid), list(findings)


def _resolve_correlations(pack: Pack) -> tuple[dict[str, Correlation], list[Finding]]:
    valid: dict[str, Correlation] = {}
    findings: list[Finding] = []
    for rule in pack.rules:
        if not rule.is_correlation:
            continue
        correlation, own = prepare(pack, rule)
        findings += own
        if correlation is not None:
            valid[rule.name] = correlation
    return valid, findings


def building_blocks(pack: Pack) -> dict[str, str]:
    """Base rule name -> the correlation it is a building block of (`generate: false`, the default).

    A rule that any correlation generates (`generate: true`) is a stand-alone rule as well."""
    blocks: dict[str, str] = {}
    generated: set[str] = set()
    index = reference_index(pack.rules)
    for rule in pack.rules:
        if not rule.is_correlation:
            continue
        correlation = rule.data.get("correlation")
        generate = isinstance(correlation, dict) and correlation.get("generate") is True
        for reference in rule.references:
            base = index.get(reference)
            if base is None:
                continue
            if generate:
                generated.add(base.name)
            else:
                blocks.setdefault(base.name, rule.name)
    return {name: owner for name, owner in blocks.items() if name not in generated}


def check_fixture_times(pack: Pack, correlations: Mapping[str, Correlation]) -> list[Finding]:
    """Every in-scope fixture event of a data source a correlation reads has a usable timestamp."""
    findings: list[Finding] = []
    fields = {c.datasource.name: c.time_field for c in correlations.values()}
    for fixture in pack.fixtures:
        field = fields.get(fixture.datasource.name)
        if field is None:
            continue
        for event in fixture.events:
            if event.in_scope and event_time(event.view, field) is None:
                findings.append(
                    Finding(
                        fixture.path,
                        event.line,
                        "fixture-timestamp",
                        f"the event has no usable {field!r} (epoch seconds or an RFC 3339 date-time), "
                        "which correlation rules of this data source need",
                        f"record the event with its {field} as the data source writes it",
                    )
                )
    return findings


def validate_correlations(pack: Pack) -> list[Finding]:
    """Findings of every correlation rule, and of fixtures a correlation cannot place in time."""
    correlations, findings = resolve_correlations(pack)
    return findings + check_fixture_times(pack, correlations)


# --------------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------------


def convert_correlation(
    pack: Pack, rule: RuleFile, target: Target, pipeline: ProcessingPipeline
) -> tuple[Query | None, Finding | None]:
    """The correlation's query for one target: (None, None) when the target cannot express the type
    (recorded in tests/engine-differences.yml, see `UNSUPPORTED`), a finding when it fails to convert."""
    correlation, findings = prepare(pack, rule)
    if correlation is None:
        first = findings[0].message if findings else "it does not validate"
        return None, Finding(
            rule.path,
            rule.line("correlation"),
            "convert",
            f"cannot convert the correlation to {target.title}: {first}",
            "run detpack validate and correct the correlation",
        )
    if unsupported_reason(target.name, correlation.type) is not None:
        return None, None
    try:
        queries = target.backend(processing_pipeline=pipeline).convert(correlation.collection())
    except (SigmaError, NotImplementedError) as exc:
        return None, Finding(
            rule.path,
            rule.line("correlation"),
            "convert",
            f"cannot convert the correlation to {target.title}: {exc}",
            "change the correlation, or record the target in UNSUPPORTED (detpack/correlation.py) and "
            "tests/engine-differences.yml",
        )
    if len(queries) != 1 or not isinstance(queries[0], str):
        return None, Finding(
            rule.path,
            rule.line("correlation"),
            "convert",
            f"{target.title} conversion gave {len(queries)} queries for the correlation, expected one",
            "report this as a detpack bug",
        )
    return Query(rule.name, target.name, queries[0]), None


# --------------------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------------------


def reference_table(
    views: list[View], correlations: Sequence[Correlation], fields: set[str]
) -> ReferenceTable:
    """The reference table of one data source's in-scope events, with the event-time column."""
    time_field = correlations[0].time_field if correlations else None
    times = [event_time(view, time_field) for view in views] if time_field else None
    names = set(fields)
    for correlation in correlations:
        names |= correlation.fields()
    return ReferenceTable.build(views, names, times)


def reference_hits(table: ReferenceTable, correlation: Correlation) -> tuple[str, set[int]]:
    """The SQLite correlation SQL and the indexes of the events in its occurrences."""
    sql = table.correlation_query(correlation.collection())
    return sql, table.correlation_matches(sql)


def run_engine(
    engine: str, query: str, events: Sequence[Any], datasource: DataSource, types: Mapping[str, str]
) -> set[int]:
    """Execute a correlation query in a SIEM engine: the indexes of the events of the occurrences it finds."""
    if engine == "spl":
        from detpack.engines.spl import SplStatsQuery

        macros = {datasource.splunk_macro: datasource.splunk_definition}
        return SplStatsQuery.parse(query, macros).matching(events)
    if engine == "esql":
        from detpack.engines.runners import run_esql

        return run_esql(query, events, datasource, types)
    raise ValueError(f"no correlation engine for {engine}")
