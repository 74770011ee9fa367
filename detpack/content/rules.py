"""Sigma rule files: one rule per file under rules/<data source>/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detpack.content.yamlfile import YamlDocument, load_yaml
from detpack.findings import ContentError, Finding, relpath


@dataclass
class RuleFile:
    path: str  # repository-relative
    doc: YamlDocument

    @property
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
        return ls if isinstance(ls, dict) else {}

    def line(self, *json_path: str | int) -> int:
        return self.doc.line_of(json_path)


def load_rules(root: Path) -> tuple[list[RuleFile], list[Finding]]:
    rules: list[RuleFile] = []
    findings: list[Finding] = []
    rules_dir = root / "rules"
    for file in sorted(rules_dir.rglob("*")):
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
        try:
            doc = load_yaml(file, shown)
        except ContentError as exc:
            findings.extend(exc.findings)
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
    return rules, findings
