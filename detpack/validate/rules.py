"""Sigma rule checks: the pack's JSON Schema, the pack's conventions, pySigma's parser and validators."""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from sigma.exceptions import SigmaError
from sigma.modifiers import modifier_mapping
from sigma.rule import SigmaRule
from sigma.validators.base import SigmaRuleValidator, SigmaValidationIssue, SigmaValidationIssueSeverity
from sigma.validators.core import validators as core_validators

from detpack.attack import AttackSnapshot, load_attack, tactic_for_tag, technique_for_tag
from detpack.content.pack import Pack
from detpack.content.rules import RuleFile
from detpack.findings import Finding, Severity, finding_from_json, finding_to_json
from detpack.result_cache import ResultCache
from detpack.validate.regexes import check_regexes
from detpack.validate.schema import load_validator, schema_findings
from detpack.validate.values import check_detection_values

FILE_NAME = re.compile(r"^[a-z0-9_]{10,70}$")
# pySigma core validators that do not apply: TLP v1/v2 validators contradict each other by design (a pack
# picks one; it uses none); custom_attributes flags the pack's own `detpack:` key, and the pack's JSON
# Schema already refuses every other unknown top-level key with its line. number_as_string: the pack's
# targets type their fields (ECS keyword, Docker's string-valued Actor.Attributes), and a quoted number is
# how a rule says "compare as text"; an unquoted number on a keyword field is an ES|QL type error.
# identifier_uniqueness, duplicate_title, duplicate_filename compare rules with each other, which
# check_uniqueness does over the whole pack (titles case-insensitively) on every run, also for the rules whose
# single-rule checks come from the cache; every validator left reads one rule.
SKIPPED_VALIDATORS = {
    "tlpv1_tag",
    "tlpv2_tag",
    "custom_attributes",
    "number_as_string",
    "identifier_uniqueness",
    "duplicate_title",
    "duplicate_filename",
}


def detection_keys(rule: RuleFile) -> list[tuple[tuple[str | int, ...], str]]:
    """Every field key in the detection, with its JSON path: (('detection', 'sel', 'Image|endswith'), key)."""
    detection = rule.data.get("detection")
    keys: list[tuple[tuple[str | int, ...], str]] = []
    if not isinstance(detection, dict):
        return keys
    for ident, body in detection.items():
        if ident == "condition":
            continue
        maps = (
            [(("detection", ident), body)]
            if isinstance(body, dict)
            else (
                [(("detection", ident, i), item) for i, item in enumerate(body) if isinstance(item, dict)]
                if isinstance(body, list)
                else []
            )
        )
        for path, mapping in maps:
            keys.extend(((*path, str(key)), str(key)) for key in mapping)
    return keys


def check_modifiers(rule: RuleFile) -> list[Finding]:
    findings = []
    known = sorted(modifier_mapping)
    for path, key in detection_keys(rule):
        for modifier in key.split("|")[1:]:
            if modifier not in modifier_mapping:
                close = difflib.get_close_matches(modifier, known, n=1, cutoff=0.5)
                fix = f"did you mean '{close[0]}'?" if close else f"known modifiers: {', '.join(known)}"
                findings.append(
                    Finding(
                        rule.path,
                        rule.line(*path),
                        "sigma-modifier",
                        f"unknown modifier {modifier!r} in {key!r}",
                        fix,
                    )
                )
    return findings


def check_fields(rule: RuleFile, pack: Pack) -> list[Finding]:
    ds = pack.datasource_of(rule)
    if ds is None:
        return []
    findings = []
    for path, key in detection_keys(rule):
        field = key.split("|")[0]
        if field and not ds.knows_field(field):
            close = difflib.get_close_matches(field, sorted(ds.fields), n=1, cutoff=0.6)
            fix = f"did you mean {close[0]!r}?" if close else f"use a field listed in {ds.path}"
            findings.append(
                Finding(
                    rule.path,
                    rule.line(*path),
                    "field-unknown",
                    f"{field!r} is not a field of data source {ds.name}",
                    fix,
                )
            )
    return findings


def check_location(rule: RuleFile, pack: Pack) -> list[Finding]:
    findings = []
    path = Path(rule.path)
    ds = pack.datasource_of(rule)
    ls = {k: v for k, v in rule.logsource.items() if k in ("category", "product", "service")}
    if ds is None:
        known = "; ".join(f"{d.name}: {d.logsource_dict()}" for d in pack.datasources.values())
        findings.append(
            Finding(
                rule.path,
                rule.line("logsource"),
                "logsource-unknown",
                f"no data source has logsource {ls}",
                f"use one of {known}, or add datasources/",
            )
        )
        return findings
    if len(path.parts) != 3 or path.parts[1] != ds.name:
        findings.append(
            Finding(
                rule.path,
                0,
                "rule-location",
                f"a rule for {ds.name} belongs in rules/{ds.name}/",
                f"move it to rules/{ds.name}/{path.name}",
            )
        )
    if not FILE_NAME.match(path.stem):
        findings.append(
            Finding(
                rule.path,
                0,
                "rule-filename",
                "file names are lowercase letters, digits and underscores, 10 to 70 characters",
                "rename the file (SigmaHQ file-name convention)",
            )
        )
    if not path.stem.startswith(ds.rule_file_prefix):
        findings.append(
            Finding(
                rule.path,
                0,
                "rule-filename",
                f"{ds.name} rule file names start with {ds.rule_file_prefix!r}",
                f"rename it to {ds.rule_file_prefix}<behaviour>.yml",
            )
        )
    return findings


def check_attack_tags(rule: RuleFile, attack: AttackSnapshot) -> list[Finding]:
    findings = []
    techniques: dict[str, int] = {}
    tactics: dict[str, int] = {}
    for index, tag in enumerate(rule.tags):
        if not tag.startswith("attack."):
            continue
        line = rule.line("tags", index)
        technique_id = technique_for_tag(tag)
        if technique_id is not None:
            technique = attack.techniques.get(technique_id)
            if technique is None:
                findings.append(
                    Finding(
                        rule.path,
                        line,
                        "attack-tag-unknown",
                        f"{tag}: {technique_id} is not in ATT&CK v{attack.version}",
                        "use a technique ID from the pinned snapshot (https://attack.mitre.org)",
                    )
                )
            elif technique.revoked or technique.deprecated:
                state = "revoked" if technique.revoked else "deprecated"
                findings.append(
                    Finding(
                        rule.path,
                        line,
                        "attack-tag-deprecated",
                        f"{tag}: {technique_id} {technique.name} is {state} in ATT&CK v{attack.version}",
                        "tag the technique that replaced it",
                    )
                )
            else:
                techniques[technique_id] = line
            continue
        tactic = tactic_for_tag(tag)
        if tactic is None or tactic not in attack.tactics:
            findings.append(
                Finding(
                    rule.path,
                    line,
                    "attack-tag-unknown",
                    f"{tag} is neither an ATT&CK technique nor a tactic",
                    f"tactics: {', '.join('attack.' + t for t in sorted(attack.tactics))}",
                )
            )
            continue
        tactics[tactic] = line
    for technique_id, line in techniques.items():
        own = attack.techniques[technique_id].tactics
        if not any(t in tactics for t in own):
            findings.append(
                Finding(
                    rule.path,
                    line,
                    "attack-tactic-missing",
                    f"{technique_id} has no tactic tag of its own",
                    f"add one of: {', '.join('attack.' + t for t in own)}",
                )
            )
    for tactic, line in tactics.items():
        if techniques and not any(tactic in attack.techniques[t].tactics for t in techniques):
            findings.append(
                Finding(
                    rule.path,
                    line,
                    "attack-tactic-mismatch",
                    f"attack.{tactic} is not a tactic of any technique the rule is tagged with",
                    "remove the tactic or tag a technique of that tactic",
                )
            )
    return findings


def parse_with_pysigma(rule: RuleFile) -> tuple[SigmaRule | None, list[Finding]]:
    try:
        sigma_rule = SigmaRule.from_dict(rule.data, collect_errors=True)
    except SigmaError as exc:  # pragma: no cover - collect_errors keeps parse errors on the rule
        return None, [
            Finding(rule.path, rule.line("detection"), "sigma-parse", str(exc), "see the Sigma spec")
        ]
    findings = []
    for error in sigma_rule.errors:
        findings.append(
            Finding(
                rule.path,
                _line_for_sigma_error(rule, str(error)),
                "sigma-parse",
                f"pySigma: {error}",
                "correct the rule as the message says",
            )
        )
    if not findings:  # pySigma parses conditions lazily: an unknown identifier surfaced only at conversion
        try:
            for condition in sigma_rule.detection.parsed_condition:
                condition.parse()
        except SigmaError as exc:
            findings.append(
                Finding(
                    rule.path,
                    rule.line("detection", "condition"),
                    "sigma-condition",
                    f"pySigma cannot parse the condition: {exc}",
                    "name only search identifiers defined under detection, joined by and/or/not/1 of/all of",
                )
            )
    return (None if findings else sigma_rule), findings


def _line_for_sigma_error(rule: RuleFile, message: str) -> int:
    for path, _key in detection_keys(rule):  # a quoted value of the key ("Regular expression '(' is invalid")
        if any(isinstance(v, str | int) and f"'{v}'" in message for v in value_at(rule, path)):
            return rule.line(*path)
    for path, key in detection_keys(rule):  # the key as a word: 'id' must not match "invalid"
        if re.search(rf"(?<![\w.|]){re.escape(key)}(?![\w.|])", message):
            return rule.line(*path)
    for key in rule.data:
        if f"'{key}'" in message or f" {key} " in message:
            return rule.line(key)
    return rule.line("detection")


def value_at(rule: RuleFile, path: tuple[str | int, ...]) -> list[Any]:
    """The values at a JSON path of the rule: the list there, or the single value (None if absent)."""
    node = rule.data_at(path)
    return node if isinstance(node, list) else [node]


def _issue_line(rule: RuleFile, issue: SigmaValidationIssue) -> int:
    tag = getattr(issue, "tag", None)
    if tag is not None:
        text = str(tag)
        for index, value in enumerate(rule.tags):
            if value == text:
                return rule.line("tags", index)
        return rule.line("tags")
    issue_value = getattr(issue, "string", None)
    if issue_value is not None:  # value issues: point at the key whose value it is
        text = str(issue_value)
        for path, _key in detection_keys(rule):
            values = value_at(rule, path)
            if any(str(v) == text for v in values):
                return rule.line(*path)
    item = getattr(issue, "detection_item", None)
    field = getattr(item, "field", None)
    if field:
        for path, key in detection_keys(rule):
            if key.split("|")[0] == field:
                return rule.line(*path)
    name = type(issue).__name__.lower()
    for key in ("title", "references", "tags", "logsource", "id"):
        if key in name:
            return rule.line(key)
    return rule.line("detection")


def pysigma_validators() -> list[SigmaRuleValidator]:
    return [cls() for name, cls in sorted(core_validators.items()) if name not in SKIPPED_VALIDATORS]


def run_pysigma_validators(
    rule: RuleFile, sigma_rule: SigmaRule, validators: list[SigmaRuleValidator]
) -> list[Finding]:
    """The issues pySigma's validators find in one rule (none of them compares rules: SKIPPED_VALIDATORS)."""
    return [_issue_finding(rule, i) for validator in validators for i in validator.validate(sigma_rule)]


def _issue_finding(rule: RuleFile, issue: SigmaValidationIssue) -> Finding:
    # Issue fields hold pySigma objects (SigmaString refuses == with most types): render, then filter.
    details = " ".join(
        f"{k}={text}" for k, v in vars(issue).items() if k != "rules" and v is not None and (text := str(v))
    )
    severity = Severity.WARNING if issue.severity == SigmaValidationIssueSeverity.LOW else Severity.ERROR
    message = f"pySigma {type(issue).__name__}: {issue.description}" + (f" ({details})" if details else "")
    return Finding(
        rule.path,
        _issue_line(rule, issue),
        "sigma-validator",
        message,
        "correct the rule as the message says",
        severity,
    )


def check_uniqueness(rules: list[RuleFile]) -> list[Finding]:
    findings = []
    keys: tuple[tuple[str, Callable[[RuleFile], str]], ...] = (
        ("id", lambda r: r.rule_id),
        ("title", lambda r: r.title.strip().lower()),
        ("file name", lambda r: r.name),
    )
    for label, key in keys:
        groups: dict[str, list[RuleFile]] = defaultdict(list)
        for rule in rules:
            value = key(rule)
            if value:
                groups[value].append(rule)
        for value, same in groups.items():
            for rule in same[1:]:
                field = {"id": "id", "title": "title"}.get(label)
                line = rule.line(field) if field else 0
                findings.append(
                    Finding(
                        rule.path,
                        line,
                        f"duplicate-{label.replace(' ', '-')}",
                        f"{label} {value!r} is also used by {same[0].path}",
                        f"give this rule its own {label}"
                        + (" (python3 -c 'import uuid; print(uuid.uuid4())')" if label == "id" else ""),
                    )
                )
    return findings


def single_rule_findings(
    rule: RuleFile,
    pack: Pack,
    schema: Draft202012Validator,
    attack: AttackSnapshot,
    validators: list[SigmaRuleValidator],
) -> tuple[list[Finding], bool]:
    """Every check of a detection rule that reads the rule alone (and the pack's data sources, pipelines
    and schemas), and whether pySigma parsed it: what detpack/result_cache.py may keep per file."""
    from detpack.correlation import check_rule_name  # imports this module
    from detpack.validate.cost import leading_wildcard_findings  # imports this module

    own = check_modifiers(rule)
    modifier_lines = {f.line for f in own}
    own += [
        f
        for f in schema_findings(schema, rule.data, rule.path, "schema", rule.doc.line_of)
        if f.line not in modifier_lines
    ]
    own += check_location(rule, pack)
    own += check_fields(rule, pack)
    own += check_attack_tags(rule, attack)
    own += check_regexes(rule)
    own += check_detection_values(rule)
    parsed = False
    if not own:
        sigma_rule, parse_findings = parse_with_pysigma(rule)
        own += parse_findings
        if sigma_rule is not None:
            parsed = True
            own += run_pysigma_validators(rule, sigma_rule, validators)
            own += leading_wildcard_findings(pack, rule)
    own += check_rule_name(rule)
    return own, parsed


def validate_rules(pack: Pack, cache: ResultCache | None = None) -> tuple[list[Finding], set[str]]:
    """All rule findings, and the names of the detection rules pySigma parsed cleanly.

    With a cache, a rule read from the same bytes as before (in the same context: see
    detpack/result_cache.py) gets the findings of its single-rule checks from it."""
    schema = load_validator(pack.root / "schemas" / "sigma-rule.schema.json")
    attack = load_attack()
    validators = pysigma_validators()
    findings: list[Finding] = []
    parsed: set[str] = set()
    detection_rules = [r for r in pack.rules if not r.is_correlation]  # correlations: detpack.correlation
    keys: dict[int, str] = {}
    if cache is not None:
        keys = {
            index: cache.key("rule-checks", rule.path, rule.doc.digest)
            for index, rule in enumerate(detection_rules)
            if rule.doc.digest  # a document built in memory has no bytes to key it by
        }
    cached = cache.lookup(keys.values()) if cache is not None else {}
    for index, rule in enumerate(detection_rules):
        key = keys.get(index)
        entry = cached.get(key) if key is not None else None
        if entry is not None:
            own = [finding_from_json(f) for f in entry["findings"]]
            ok = bool(entry["parsed"])
        else:
            own, ok = single_rule_findings(rule, pack, schema, attack, validators)
            if cache is not None and key is not None:
                cache.add(key, {"findings": [finding_to_json(f) for f in own], "parsed": ok})
        findings += own
        if ok:
            parsed.add(rule.name)
    findings += check_uniqueness(pack.rules)
    from detpack.correlation import validate_correlations  # imports this module

    findings += validate_correlations(pack)
    return findings, parsed


def sigma_data(rule: RuleFile) -> dict[str, Any]:
    return rule.data
