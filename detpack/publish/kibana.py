"""Kibana detection rules as NDJSON for the Detection Engine's import (Security > Rules > Import rules).

One line per rule and Elastic language the pack ships: Lucene (``type: query``), EQL and ES|QL. A
(rule, language) the engine differences say the target cannot run at all (``event: all`` in
tests/engine-differences.yml) is skipped, and the reason goes into the manifest.

Each line is checked twice before anything is written: against ``schemas/kibana-rule.schema.json`` (the
pack's own schema, written from Kibana's create-rule API documentation) and by parsing its query with the
engine for its language, with the data stream's field mapping, so a rule that Kibana would refuse or that
names a field the integration does not map never reaches dist/.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from detpack.attack import Technique, load_attack
from detpack.findings import Finding
from detpack.ingest.fields import field_type, load_field_types
from detpack.publish.context import PublishedRule, tactic_url, technique_url

SCHEMA_FILE = "schemas/kibana-rule.schema.json"
NDJSON_FILE = "kibana/detpack-rules.ndjson"
# rule_id = uuid5(this namespace, "<sigma id>/<language>"): stable across builds and releases.
RULE_ID_NAMESPACE = uuid.UUID("6f1c0b6e-2f43-5a8e-9d4e-6c1f0a7d3b25")

RISK_SCORE = {"informational": 0, "low": 21, "medium": 47, "high": 73, "critical": 99}
# Kibana's severity has no "informational": such rules are low severity with risk score 0.
SEVERITY = {"informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}


@dataclass(frozen=True)
class Language:
    target: str  # the pack's conversion target
    rule_type: str  # Kibana rule type
    language: str  # Kibana query language
    label: str


LANGUAGES = (
    Language("lucene", "query", "lucene", "Lucene"),
    Language("eql", "eql", "eql", "EQL"),
    Language("esql", "esql", "esql", "ES|QL"),
)

# The Elastic integration packages the data sources come from, with the version range whose data streams
# have the fields the queries use. Facts from elastic/integrations packages/<name>/manifest.yml:
# kubernetes 1.66.3 (commit 00aca203e354), sysmon_linux 1.5.0 (02e28058ab11), docker 2.7.1 (019d33c19d39).
INTEGRATION_VERSIONS = {"kubernetes": "^1.66.0", "sysmon_linux": "^1.5.0", "docker": "^2.7.0"}

INTERVAL, LOOKBACK, MAX_SIGNALS = "5m", "now-9m", 100
DATA_SOURCE_TAGS = {
    "kubernetes_audit": "Data Source: Kubernetes",
    "linux_process_creation": "Data Source: Sysmon",
    "docker_events": "Data Source: Docker",
}
_ESQL_METADATA = frozenset(
    {"_id", "_index", "_version", "_ignored", "_index_mode", "_score", "_size", "_source"}
)


def kibana_rule_id(sigma_id: str, language: str) -> str:
    return str(uuid.uuid5(RULE_ID_NAMESPACE, f"{sigma_id}/{language}"))


# --- fields a query names --------------------------------------------------------------------------------

_LUCENE_BREAK = set(' \t\r\n()[]{}^~"')


def lucene_fields(query: str) -> list[str]:
    """The field names of a Lucene query string (``field:value``, ``_exists_:field``), unescaped, in order."""
    fields: list[str] = []
    token: list[str] = []
    i, n = 0, len(query)
    expect_exists = False
    while i < n:
        char = query[i]
        if char == "\\" and i + 1 < n:
            token.append(query[i + 1])
            i += 2
            continue
        if char == '"':  # a phrase: skip to its closing quote
            i += 1
            while i < n and query[i] != '"':
                i += 2 if query[i] == "\\" else 1
            token = []
        elif char == "/" and not token:  # a regular expression term
            i += 1
            while i < n and query[i] != "/":
                i += 2 if query[i] == "\\" else 1
        elif char == ":" and token:
            name = "".join(token).lstrip("+-!")
            if name == "_exists_":
                expect_exists = True
            elif name:
                fields.append(name)
            token = []
        elif char in _LUCENE_BREAK:
            if expect_exists and token:
                fields.append("".join(token))
                expect_exists = False
            token = []
        else:
            token.append(char)
        i += 1
    if expect_exists and token:
        fields.append("".join(token))
    return fields


def query_fields(language: str, query: str) -> list[str]:
    """Parse the query with the pack's engine for its language; return the fields it names (sorted).

    Raises the engine's error when the query does not parse."""
    if language == "eql":
        import eql  # type: ignore[import-untyped]

        from detpack.engines.eql_engine import EqlQuery

        parsed = EqlQuery.parse(query)
        found = {
            ".".join(str(p) for p in node.full_path)
            for node in parsed._condition
            if isinstance(node, eql.ast.Field)
        }
        return sorted(found)
    if language == "esql":
        from detpack.engines.esql import EsqlQuery, _Field

        parsed_esql = EsqlQuery.parse(query)
        names: set[str] = set()

        def walk(node: Any) -> None:
            if isinstance(node, _Field):
                names.add(node.name)
            elif isinstance(node, tuple):
                for item in node:
                    walk(item)
            elif hasattr(node, "__dataclass_fields__"):
                for key in node.__dataclass_fields__:
                    if key != "src":
                        walk(getattr(node, key))

        walk(parsed_esql._conditions)
        return sorted(names - _ESQL_METADATA)
    return sorted(set(lucene_fields(query)))


def check_query(language: str, query: str, field_types: Mapping[str, str], index: str) -> list[str]:
    """Problems with a query, as its engine sees it with the data stream's mapping; [] when it is sound."""
    problems: list[str] = []
    try:
        fields = query_fields(language, query)
        if language == "lucene":
            from detpack.engines.runners import _lucene

            _lucene().lucene_query(query, field_types)
        elif language == "esql":
            from detpack.engines.esql import EsqlQuery

            pattern = EsqlQuery.parse(query).index_pattern
            if pattern != index:
                problems.append(f"the query reads {pattern!r}, the data source lives in {index!r}")
    except Exception as exc:  # each engine has its own error classes; all of them mean "does not parse"
        return [f"the {language} query does not parse: {exc}"]
    if not fields:
        problems.append(f"the {language} query names no field")
    for name in fields:
        if field_type(field_types, name) is None:
            problems.append(f"the {language} query names {name!r}, which the data stream does not map")
    return problems


def required_fields(fields: list[str], field_types: Mapping[str, str]) -> list[dict[str, str]]:
    result = []
    for name in fields:
        es_type = field_type(field_types, name) or "unknown"
        if es_type.startswith("object(") and es_type.endswith(")"):
            es_type = es_type[len("object(") : -1]
        result.append({"name": name, "type": es_type})
    return result


# --- the rule objects ------------------------------------------------------------------------------------


def threat(rule: PublishedRule) -> list[dict[str, Any]]:
    """Kibana's threat array: per tactic, the tagged techniques, sub-techniques under their parent."""
    attack = load_attack()
    entries = []
    for tactic, techniques in rule.tactic_techniques():
        parents: dict[str, list[Technique]] = {}
        for technique in techniques:
            parent = technique.parent_id or technique.id
            parents.setdefault(parent, [])
            if technique.is_subtechnique:
                parents[parent].append(technique)
        technique_entries = []
        for parent_id, subs in parents.items():
            known = attack.techniques.get(parent_id)
            item: dict[str, Any] = {
                "id": parent_id,
                "name": known.name if known else parent_id,
                "reference": technique_url(parent_id),
            }
            if subs:
                item["subtechnique"] = [
                    {"id": s.id, "name": s.name, "reference": technique_url(s.id)} for s in subs
                ]
            technique_entries.append(item)
        entries.append(
            {
                "framework": "MITRE ATT&CK",
                "tactic": {"id": tactic.id, "name": tactic.name, "reference": tactic_url(tactic)},
                "technique": technique_entries,
            }
        )
    return entries


def _note(rule: PublishedRule) -> str:
    parts = [f"## Triage and response ({rule.ads_id or 'detpack'})", ""]
    if rule.ads is not None:
        parts += [f"Alerting & Detection Strategy: **{rule.ads.title}** ({rule.ads_id}).", ""]
    response = rule.ads_section("Response")
    parts += [response] if response else ["No response guide: see the rule description."]
    return "\n".join(parts).strip() + "\n"


def kibana_rule(rule: PublishedRule, language: Language, fields: list[str]) -> dict[str, Any]:
    ds = rule.datasource
    types = load_field_types(ds.name)
    tactic_tags = [f"Tactic: {t.name}" for t in rule.tactics]
    tags = sorted(
        {
            "Domain: Container",
            "Use Case: Threat Detection",
            DATA_SOURCE_TAGS.get(ds.name, f"Data Source: {ds.title}"),
            f"Language: {language.label}",
            "detpack",
            *([f"ADS: {rule.ads_id}"] if rule.ads_id else []),
            *tactic_tags,
        }
    )
    body: dict[str, Any] = {
        "author": [rule.text("author") or "detpack maintainers"],
        "description": rule.text("description"),
        "enabled": False,
        "false_positives": rule.strings("falsepositives"),
        "from": rule.schedule.kibana_from if rule.schedule else LOOKBACK,
        "interval": rule.schedule.kibana_interval if rule.schedule else INTERVAL,
        "language": language.language,
        "max_signals": MAX_SIGNALS,
        "name": f"{rule.title} ({language.label})",
        "note": _note(rule),
        "query": rule.queries[language.target],
        "references": rule.strings("references"),
        "related_integrations": [
            {
                "package": ds.elastic_integration,
                "version": INTEGRATION_VERSIONS.get(ds.elastic_integration, "*"),
            }
        ],
        "required_fields": required_fields(fields, types),
        "risk_score": RISK_SCORE[rule.level],
        "rule_id": kibana_rule_id(rule.rule_id, language.language),
        "severity": SEVERITY[rule.level],
        "tags": tags,
        "threat": threat(rule),
        "type": language.rule_type,
        "version": rule.version,
    }
    if language.rule_type != "esql":
        body["index"] = [ds.elastic_index]
    return body


@dataclass(frozen=True)
class KibanaRules:
    ndjson: bytes
    rules: list[dict[str, Any]]
    skipped: dict[str, dict[str, str]]  # rule name -> language -> reason


def load_schema(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / SCHEMA_FILE).read_text(encoding="utf-8"))
    return data


def schema_problems(schema: Mapping[str, Any], body: Mapping[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(rule)'}: {error.message}"
        for error in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    ]


def build_kibana_rules(root: Path, rules: list[PublishedRule]) -> tuple[KibanaRules, list[Finding]]:
    schema = load_schema(root)
    findings: list[Finding] = []
    bodies: list[dict[str, Any]] = []
    skipped: dict[str, dict[str, str]] = {}
    for rule in rules:
        types = load_field_types(rule.datasource.name)
        for language in LANGUAGES:
            if language.target in rule.unsupported or language.target not in rule.queries:
                reason = rule.unsupported.get(language.target, "no query for this language")
                skipped.setdefault(rule.name, {})[language.language] = reason
                continue
            query = rule.queries[language.target]
            problems = check_query(language.language, query, types, rule.datasource.elastic_index)
            fields = [] if problems else query_fields(language.language, query)
            body = kibana_rule(rule, language, fields)
            problems += schema_problems(schema, body)
            for problem in problems:
                findings.append(
                    Finding(
                        rule.rule.path,
                        rule.rule.line("detection"),
                        "kibana-rule",
                        f"the Kibana {language.label} rule is not importable: {problem}",
                        "fix the rule, its pipeline or its metadata so the Kibana rule is valid",
                    )
                )
            bodies.append(body)
    lines = [json.dumps(b, sort_keys=True, ensure_ascii=True, separators=(",", ":")) for b in bodies]
    return KibanaRules(("\n".join(lines) + "\n").encode("utf-8"), bodies, skipped), findings
