"""Sigma rule files: one rule per file under rules/<data source>/."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from detpack.content.yamlfile import YamlDocument, load_yaml_files
from detpack.findings import ContentError, Finding, relpath
from detpack.result_cache import ResultCache


@dataclass
class RuleFile:
    path: str  # repository-relative
    doc: YamlDocument
    # A correlation rule has no logsource of its own: it reads its base rules' (see link_correlations).
    inherited_logsource: dict[str, Any] | None = None

    @cached_property
    def name(self) -> str:
        """The file stem: how fixtures and ADS documents refer to the rule."""
        return Path(self.path).stem

    @property
    def data(self) -> dict[str, Any]:
        return self.doc.data if isinstance(self.doc.data, dict) else {}

    @property
    def rule_id(self) -> str:
        return str(self.data.get("id", ""))

    @property
    def title(self) -> str:
        return str(self.data.get("title", ""))

    @property
    def tags(self) -> list[str]:
        tags = self.data.get("tags")
        return [str(t) for t in tags] if isinstance(tags, list) else []

    @property
    def logsource(self) -> dict[str, Any]:
        ls = self.data.get("logsource")
        if isinstance(ls, dict):
            return ls
        return self.inherited_logsource or {}

    @property
    def is_correlation(self) -> bool:
        """A Sigma correlation rule (`correlation:`), whose base rules are other rule files."""
        return "correlation" in self.data

    @property
    def references(self) -> list[str]:
        """A correlation's `correlation.rules`: base rules by Sigma name or id."""
        correlation = self.data.get("correlation")
        refs = correlation.get("rules") if isinstance(correlation, dict) else None
        return [str(r) for r in refs] if isinstance(refs, list) else []

    def data_at(self, path: tuple[str | int, ...]) -> Any:
        """The node at a JSON path of the rule's data, or None where the path does not exist."""
        node: Any = self.data
        for part in path:
            if isinstance(node, dict):
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                return None
        return node

    def line(self, *json_path: str | int) -> int:
        return self.doc.line_of(json_path)


def load_rules(root: Path, cache: ResultCache | None = None) -> tuple[list[RuleFile], list[Finding]]:
    """Every rule file under rules/ (with a cache, those read before from the same bytes come from it)."""
    rules: list[RuleFile] = []
    findings: list[Finding] = []
    files: list[tuple[Path, str]] = []
    for file in sorted((root / "rules").rglob("*")):
        if file.is_dir():
            continue
        shown = relpath(file, root)
        if file.suffix != ".yml":
            findings.append(
                Finding(
                    shown,
                    0,
                    "rule-file",
                    "files under rules/ must be Sigma rules ending in .yml",
                    "rename it to .yml or move it out of rules/",
                )
            )
            continue
        files.append((file, shown))
    for (_, shown), doc in zip(files, load_yaml_files(files, cache), strict=True):
        if isinstance(doc, ContentError):
            findings.extend(doc.findings)
            continue
        if not isinstance(doc.data, dict):
            findings.append(
                Finding(
                    shown,
                    1,
                    "rule-file",
                    "a rule file must hold one YAML mapping (one rule)",
                    "write the rule as 'title: ...' etc. at the top level",
                )
            )
            continue
        rules.append(RuleFile(shown, doc))
    link_correlations(rules)
    return rules, findings


def reference_index(rules: list[RuleFile]) -> dict[str, RuleFile]:
    """Every reference a correlation may use -> the detection rule it names: by Sigma `name`, by `id`, or
    (for a finding's sake) by file stem, in that order of precedence, the first such rule in file order.
    Correlations are not indexed: the pack does not chain them."""
    by_key: dict[str, dict[str, RuleFile]] = {"name": {}, "id": {}, "stem": {}}
    for rule in rules:
        if rule.is_correlation:
            continue
        name = rule.data.get("name")
        if isinstance(name, str):
            by_key["name"].setdefault(name, rule)
        by_key["id"].setdefault(rule.rule_id, rule)
        by_key["stem"].setdefault(rule.name, rule)
    return {**by_key["stem"], **by_key["id"], **by_key["name"]}


def resolve_reference(rules: list[RuleFile], reference: str) -> RuleFile | None:
    """The detection rule a correlation names (see reference_index)."""
    return reference_index(rules).get(reference)


def link_correlations(rules: list[RuleFile]) -> None:
    """Give each correlation the logsource its base rules share (none when they disagree or are unknown)."""
    index = reference_index(rules)
    for rule in rules:
        if not rule.is_correlation:
            continue
        sources: set[tuple[tuple[str, str], ...] | None] = set()
        for reference in rule.references:
            base = index.get(reference)
            if base is None:
                sources.add(None)
                continue
            ls = base.data.get("logsource")
            sources.add(
                tuple(sorted((str(k), str(v)) for k, v in ls.items())) if isinstance(ls, dict) else None
            )
        only = next(iter(sources)) if len(sources) == 1 else None
        rule.inherited_logsource = dict(only) if only else None
