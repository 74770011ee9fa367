"""The ATT&CK Navigator layer (format 4.5) and the SVG heat map of the pack's coverage."""

from __future__ import annotations

import json

from defusedxml import ElementTree

from detpack.attack import load_attack
from detpack.content.pack import load_pack
from detpack.content.rules import RuleFile
from detpack.correlation import building_blocks
from detpack.publish.navigator import TACTIC_ORDER
from tests.conftest import PackCopy

SVG_NS = "{http://www.w3.org/2000/svg}"


def shipped_rules(pack: PackCopy) -> list[RuleFile]:
    """The rules dist/ publishes: every rule but the building blocks of correlations."""
    loaded = load_pack(pack.root)
    blocks = building_blocks(loaded)
    return [rule for rule in loaded.rules if rule.name not in blocks]


def tagged(rules: list[RuleFile], tactic: str, technique: str) -> set[str]:
    """The rules tagged with the tactic and the technique (the score the layer must give the pair)."""
    wanted = {f"attack.{tactic}", f"attack.{technique.lower()}"}
    return {rule.name for rule in rules if wanted <= set(rule.tags)}


def test_tactic_order_covers_the_snapshot() -> None:
    assert sorted(TACTIC_ORDER) == sorted(load_attack().tactics)
    assert TACTIC_ORDER[0] == "reconnaissance" and TACTIC_ORDER[-1] == "impact"


def test_layer_format_and_scores(built_pack: PackCopy) -> None:
    layer = json.loads(built_pack.read("dist/navigator/detpack-layer.json"))
    rules = shipped_rules(built_pack)
    assert layer["versions"] == {"attack": "18", "navigator": "5.2.0", "layer": "4.5"}
    assert layer["domain"] == "enterprise-attack"
    scored = {(t["techniqueID"], t["tactic"]): t for t in layer["techniques"] if "score" in t}
    # Score = the rules tagged with the tactic and the technique; the comment and the metadata name them.
    for technique, tactic in (
        ("T1609", "execution"),
        ("T1572", "command-and-control"),
        ("T1611", "privilege-escalation"),
    ):
        expected = tagged(rules, tactic, technique)
        entry = scored[(technique, tactic)]
        assert entry["score"] == len(expected) > 1, (technique, expected)
        assert {m["value"] for m in entry["metadata"]} == expected
        assert all(f"({name})" in entry["comment"] for name in expected)
    t1609 = scored[("T1609", "execution")]["comment"]
    assert "kubernetes_audit_exec_shell_download" in t1609 and "docker_events_exec_download_and_run" in t1609
    # A building block (generate: false) is not a detection of its own: only its correlation counts.
    blocks = building_blocks(load_pack(built_pack.root))
    assert blocks
    for entry in scored.values():
        assert not {m["value"] for m in entry["metadata"]} & set(blocks), entry
    # T1059.004 is covered, T1059 itself is not: the parent is listed to show its sub-techniques.
    assert {"techniqueID": "T1059", "tactic": "execution", "showSubtechniques": True} in layer["techniques"]
    assert layer["gradient"]["maxValue"] == max(t["score"] for t in scored.values())
    for technique in layer["techniques"]:
        assert technique["techniqueID"] in load_attack().techniques


def test_heatmap_is_an_svg_with_a_column_per_tactic(built_pack: PackCopy) -> None:
    text = built_pack.read("dist/navigator/coverage.svg")
    rules = shipped_rules(built_pack)
    root = ElementTree.fromstring(text)
    assert root.tag == f"{SVG_NS}svg"
    columns = [g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "tactic"]
    assert [c.get("data-tactic") for c in columns] == [load_attack().tactics[t].id for t in TACTIC_ORDER]
    attack = load_attack()
    tactics = {attack.tactics[t].id: t for t in TACTIC_ORDER}
    cells = {
        (tactics[str(column.get("data-tactic"))], g.get("data-technique")): int(g.get("data-score", "0"))
        for column in columns
        for g in column.iter(f"{SVG_NS}g")
        if g.get("class") == "technique"
    }
    assert cells[("execution", "T1609")] == len(tagged(rules, "execution", "T1609")) > 1
    assert cells[("privilege-escalation", "T1611")] == len(tagged(rules, "privilege-escalation", "T1611")) > 1
    # The Containers techniques no rule covers are shown, unscored, under each of their tactics.
    tags = {tag for rule in rules for tag in rule.tags}
    uncovered = [
        t
        for t in attack.techniques.values()
        if t.current
        and "Containers" in t.platforms
        and not t.is_subtechnique
        and f"attack.{t.id.lower()}" not in tags
    ]
    assert uncovered, "every Containers technique is covered: pick another check"
    for technique in uncovered:
        for tactic in technique.tactics:
            assert cells[(tactic, technique.id)] == 0, technique.id
    assert built_pack.read("dist/catalog/coverage.svg") == text
