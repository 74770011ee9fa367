"""Query cost: a leading wildcard on a field the SIEM indexes as an exact keyword.

The searches run every few minutes over a SOC's whole data. On an Elasticsearch `keyword` field a
pattern that starts with `*` cannot use the terms index and must test every distinct value; ECS
`wildcard` fields (process.command_line) and text fields are built for it. The pack reports every such
condition unless the rule justifies it under `detpack: leading_wildcards: {<detection key>: <reason>}`.
"""

from __future__ import annotations

from typing import Any

from sigma.rule import SigmaRule

from detpack.content.pack import Pack
from detpack.content.rules import RuleFile
from detpack.convert import TARGETS, pipeline_for
from detpack.findings import Finding
from detpack.ingest.fields import field_type, load_field_types
from detpack.validate.rules import detection_keys, value_at

EXACT_TYPES = {"keyword", "constant_keyword"}
LEADING_MODIFIERS = {"contains", "endswith"}


def ecs_field(pack: Pack, logsource: dict[str, str], field: str) -> str | None:
    """The ECS name the pack's ECS pipeline gives a Sigma field (None when it drops the condition),
    found by letting pySigma apply the pipeline to a one-condition rule of the same logsource."""
    rule = SigmaRule.from_dict(
        {
            "title": "field probe",
            "logsource": logsource,
            "detection": {"probe": {field: "x"}, "condition": "probe"},
        }
    )
    pipeline_for(pack, TARGETS["lucene"]).apply(rule)
    items = rule.detection.detections["probe"].detection_items
    if not items:
        return None
    mapped = getattr(items[0], "field", None)
    return str(mapped) if mapped else None


def _leading(key: str, values: list[Any]) -> bool:
    modifiers = set(key.split("|")[1:])
    if modifiers & {"re", "cidr", "exists", "fieldref"}:
        return False
    if modifiers & LEADING_MODIFIERS:
        return True
    return any(isinstance(v, str) and v.startswith("*") for v in values)


def leading_wildcard_findings(pack: Pack, rule: RuleFile) -> list[Finding]:
    ds = pack.datasource_of(rule)
    if ds is None or not (pack.root / "pipelines" / "ecs" / f"{ds.name}.yml").exists():
        return []
    types = load_field_types(ds.name)
    justified = (
        ((rule.data.get("detpack") or {}).get("leading_wildcards") or {})
        if isinstance(rule.data.get("detpack"), dict)
        else {}
    )
    findings = []
    for path, key in detection_keys(rule):
        values = value_at(rule, path)
        if not _leading(key, values) or key in justified:
            continue
        field = key.split("|")[0]
        ecs = ecs_field(pack, ds.logsource_dict(), field)
        if ecs is None:
            continue
        kind = field_type(types, ecs)
        if kind in EXACT_TYPES:
            findings.append(
                Finding(
                    rule.path,
                    rule.line(*path),
                    "leading-wildcard",
                    f"{key!r} puts a leading wildcard on {ecs}, a {kind} field in the "
                    f"{ds.elastic_integration} integration: Elasticsearch must test every distinct value "
                    "on every run",
                    "match an exact value or a wildcard-typed field, or justify it in the rule under "
                    f"detpack: leading_wildcards: {{'{key}': <reason>}}",
                )
            )
    for key in justified:
        if key not in {k for _, k in detection_keys(rule)}:
            findings.append(
                Finding(
                    rule.path,
                    rule.line("detpack", "leading_wildcards", key),
                    "leading-wildcard",
                    f"justification for {key!r}, which is not a detection key of this rule",
                    "use the detection key exactly as written, or remove the entry",
                )
            )
    return findings
