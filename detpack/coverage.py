"""What the pack covers: ATT&CK techniques by tactic, and the behaviours of coverage/behaviours.yml.

A behaviour is covered when an ADS claims it (`behaviours:`) and names rules; it is accounted for
when an ADS explains instead why no Sigma rule can express it on the available data (`uncovered:`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from detpack.attack import load_attack, technique_for_tag
from detpack.content.pack import Pack
from detpack.content.yamlfile import load_yaml
from detpack.findings import ContentError, Finding

BEHAVIOURS_FILE = "coverage/behaviours.yml"


@dataclass
class Coverage:
    behaviours: dict[str, str]  # id -> title
    rules_by_behaviour: dict[str, list[str]] = field(default_factory=dict)
    ads_by_behaviour: dict[str, list[str]] = field(default_factory=dict)
    reasons: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # id -> [(ads id, reason)]
    rules_by_technique: dict[str, list[str]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def unaccounted(self) -> list[str]:
        return [b for b in self.behaviours if b not in self.rules_by_behaviour and b not in self.reasons]


def load_behaviours(pack: Pack) -> dict[str, str]:
    path = pack.root / BEHAVIOURS_FILE
    doc = load_yaml(path, BEHAVIOURS_FILE)
    items = doc.data.get("behaviours") if isinstance(doc.data, dict) else None
    if not isinstance(items, dict):
        raise ContentError(
            [
                Finding(
                    BEHAVIOURS_FILE,
                    1,
                    "behaviours",
                    "expected 'behaviours:' mapping id -> title",
                    "see the comment at the top of the file",
                )
            ]
        )
    return {str(k): str(v) for k, v in items.items()}


def compute_coverage(pack: Pack) -> Coverage:
    coverage = Coverage(load_behaviours(pack))
    rules_by_behaviour: dict[str, set[str]] = defaultdict(set)
    ads_by_behaviour: dict[str, set[str]] = defaultdict(set)
    for doc in pack.ads:
        meta = doc.meta
        ads_id = str(meta.get("id", doc.path))
        uncovered = meta.get("uncovered") or {}
        claimed_raw = meta.get("behaviours") or []
        all_rules = [str(r) for r in meta.get("rules") or []]
        if isinstance(claimed_raw, dict):  # behaviour -> the rules that detect it
            claims = [
                (("behaviours", b), str(b), [str(r) for r in rules or []]) for b, rules in claimed_raw.items()
            ]
        else:  # a list: every rule of the ADS
            claims = [(("behaviours", i), str(b), all_rules) for i, b in enumerate(claimed_raw)]
        for key, value, rules in claims:
            line = doc.front.line_of(key) if doc.front else 1
            if value not in coverage.behaviours:
                coverage.findings.append(
                    Finding(
                        doc.path,
                        line,
                        "behaviour-unknown",
                        f"{value} is not a behaviour of {BEHAVIOURS_FILE}",
                        f"use one of {', '.join(coverage.behaviours)}",
                    )
                )
                continue
            for rule in rules:
                if rule not in all_rules:
                    coverage.findings.append(
                        Finding(
                            doc.path,
                            line,
                            "behaviour-rule",
                            f"{value} names {rule}, which is not a rule of this ADS",
                            "list the rule under rules: first, or fix the name",
                        )
                    )
            ads_by_behaviour[value].add(ads_id)
            rules_by_behaviour[value].update(r for r in rules if r in all_rules)
        if isinstance(uncovered, dict):
            for behaviour, reason in uncovered.items():
                if str(behaviour) not in coverage.behaviours:
                    line = doc.front.line_of(("uncovered", behaviour)) if doc.front else 1
                    coverage.findings.append(
                        Finding(
                            doc.path,
                            line,
                            "behaviour-unknown",
                            f"{behaviour} is not a behaviour of {BEHAVIOURS_FILE}",
                            f"use one of {', '.join(coverage.behaviours)}",
                        )
                    )
                    continue
                coverage.reasons.setdefault(str(behaviour), []).append((ads_id, str(reason)))
    coverage.rules_by_behaviour = {b: sorted(r) for b, r in rules_by_behaviour.items()}
    coverage.ads_by_behaviour = {b: sorted(a) for b, a in ads_by_behaviour.items()}
    by_technique: dict[str, set[str]] = defaultdict(set)
    for rule_file in pack.rules:
        for tag in rule_file.tags:
            technique = technique_for_tag(tag)
            if technique:
                by_technique[technique].add(rule_file.name)
    coverage.rules_by_technique = {t: sorted(r) for t, r in sorted(by_technique.items())}
    return coverage


def render(coverage: Coverage) -> str:
    attack = load_attack()
    lines = [f"ATT&CK v{attack.version} techniques covered, by tactic:"]
    by_tactic: dict[str, list[str]] = defaultdict(list)
    for technique_id in coverage.rules_by_technique:
        technique = attack.techniques.get(technique_id)
        for tactic in technique.tactics if technique else ("unknown",):
            by_tactic[tactic].append(technique_id)
    order = list(attack.tactics)
    for tactic in sorted(by_tactic, key=lambda t: order.index(t) if t in order else len(order)):
        name = attack.tactics[tactic].name if tactic in attack.tactics else tactic
        lines.append(f"  {name}")
        for technique_id in sorted(by_tactic[tactic]):
            technique = attack.techniques.get(technique_id)
            rules = coverage.rules_by_technique[technique_id]
            lines.append(
                f"    {technique_id:<10} {technique.name if technique else '?':<45} {len(rules)} rule(s)"
            )
    lines.append("")
    lines.append(f"Behaviours ({len(coverage.behaviours)}):")
    for behaviour, title in coverage.behaviours.items():
        rules = coverage.rules_by_behaviour.get(behaviour, [])
        if rules:
            ads = ", ".join(coverage.ads_by_behaviour.get(behaviour, []))
            lines.append(f"  {behaviour:<4} covered     {title} [{ads}]")
            lines.extend(f"         - {rule}" for rule in rules)
        elif behaviour in coverage.reasons:
            for ads_id, reason in coverage.reasons[behaviour]:
                lines.append(f"  {behaviour:<4} explained   {title} [{ads_id}]: {reason}")
        else:
            lines.append(f"  {behaviour:<4} MISSING     {title}")
    covered = sum(1 for b in coverage.behaviours if b in coverage.rules_by_behaviour)
    explained = sum(
        1 for b in coverage.behaviours if b not in coverage.rules_by_behaviour and b in coverage.reasons
    )
    lines.append("")
    lines.append(
        f"{covered} covered by rules, {explained} explained, {len(coverage.unaccounted)} missing "
        f"of {len(coverage.behaviours)} behaviours; {len(coverage.rules_by_technique)} techniques"
    )
    return "\n".join(lines)
