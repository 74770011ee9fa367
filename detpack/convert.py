"""Convert every rule, through the pack's pipelines (pipelines/<family>/*.yml), into each target's query."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import ClassVar

from sigma.backends.elasticsearch.elasticsearch_eql import EqlBackend
from sigma.backends.elasticsearch.elasticsearch_esql import ESQLBackend
from sigma.backends.elasticsearch.elasticsearch_lucene import LuceneBackend
from sigma.backends.splunk.splunk import SplunkBackend
from sigma.conversion.base import Backend
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from detpack.content.pack import Pack
from detpack.content.rules import RuleFile
from detpack.findings import ContentError, Finding, relpath
from detpack.offline import configure_offline


class PackLuceneBackend(LuceneBackend):  # type: ignore[misc]
    """pySigma's Lucene backend escapes only whitespace and * in field names; a query_string field name
    must escape every reserved character (`/` would start a regular expression):
    kubernetes.audit.annotations.authorization_k8s_io/decision -> ...authorization_k8s_io\\/decision."""

    field_escape_pattern: ClassVar[re.Pattern[str]] = re.compile(r"[\s*/+\-=&|><!(){}\[\]^\"~?:\\]")


class PackEqlBackend(EqlBackend):  # type: ignore[misc]
    """pySigma's EQL backend back-quotes a field name only for a leading digit, whitespace or '-'; EQL
    needs back-quotes for any character outside identifiers (`/` would be read as division)."""

    field_quote_pattern: ClassVar[re.Pattern[str]] = re.compile(
        r"^\d|.*[^A-Za-z0-9_.@]"
    )  # used with .match()


@dataclass(frozen=True)
class Target:
    name: str
    title: str
    backend: type[Backend]
    pipeline_family: str  # folder under pipelines/
    extension: str


TARGETS: dict[str, Target] = {
    "splunk": Target("splunk", "Splunk SPL", SplunkBackend, "splunk", ".spl"),
    "lucene": Target("lucene", "Elasticsearch Lucene query string", PackLuceneBackend, "ecs", ".lucene"),
    "eql": Target("eql", "Elastic EQL", PackEqlBackend, "ecs", ".eql"),
    "esql": Target("esql", "Elastic ES|QL", ESQLBackend, "ecs", ".esql"),
}


@dataclass(frozen=True)
class Query:
    rule: str  # rule name (file stem)
    target: str
    text: str


@cache
def _load_family(pipelines_dir: Path) -> ProcessingPipeline:
    findings: list[Finding] = []
    combined = ProcessingPipeline()
    files = sorted(pipelines_dir.glob("*.yml"))
    for file in files:
        shown = relpath(file, pipelines_dir.parent.parent)
        try:
            combined = combined + ProcessingPipeline.from_yaml(file.read_text(encoding="utf-8"))
        except (SigmaError, ValueError, TypeError, KeyError) as exc:
            findings.append(
                Finding(
                    shown,
                    0,
                    "pipeline",
                    f"pySigma cannot load this pipeline: {exc}",
                    "see pySigma's processing pipeline documentation",
                )
            )
    if findings:
        raise ContentError(findings)
    return combined


def pipeline_for(pack: Pack, target: Target) -> ProcessingPipeline:
    return _load_family((pack.root / "pipelines" / target.pipeline_family).resolve())


def convert_rule(
    rule: RuleFile, target: Target, pipeline: ProcessingPipeline
) -> tuple[Query | None, Finding | None]:
    """One rule to one target. The rule is parsed afresh: pipelines modify the rule object in place."""
    try:
        sigma_rule = SigmaRule.from_dict(rule.data)
        backend = target.backend(processing_pipeline=pipeline)
        queries = backend.convert_rule(sigma_rule)
    except SigmaError as exc:
        return None, Finding(
            rule.path,
            rule.line("detection"),
            "convert",
            f"cannot convert to {target.title}: {exc}",
            "change the rule to use only what this target supports, or the pipeline",
        )
    if len(queries) != 1 or not isinstance(queries[0], str):
        return None, Finding(
            rule.path,
            rule.line("detection"),
            "convert",
            f"{target.title} conversion gave {len(queries)} queries, expected one",
            "split the rule so each condition is one query",
        )
    return Query(rule.name, target.name, queries[0]), None


def convert_pack(
    pack: Pack, rule_names: set[str] | None = None, targets: list[str] | None = None
) -> tuple[list[Query], list[Finding]]:
    configure_offline()  # the Elastic backends map ATT&CK tags with pySigma's (downloaded) MITRE data
    queries: list[Query] = []
    findings: list[Finding] = []
    for target_name in targets or list(TARGETS):
        target = TARGETS[target_name]
        pipeline = pipeline_for(pack, target)
        for rule in pack.rules:
            if rule_names is not None and rule.name not in rule_names:
                continue
            query, finding = convert_rule(rule, target, pipeline)
            if query is not None:
                queries.append(query)
            if finding is not None:
                findings.append(finding)
    return queries, findings
