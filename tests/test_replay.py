"""`detpack test`: every rule over every fixture event, failing on any unexpected hit or miss."""

from __future__ import annotations

import re

from detpack.content.pack import load_pack
from detpack.replay import replay
from detpack.validate.pack import validate_pack
from tests.conftest import REPO_ROOT, PackCopy


def test_the_pack_passes_and_prints_hits(pack_copy: PackCopy) -> None:
    result = pack_copy.run("test")
    assert result.exit_code == 0, result.output
    assert re.search(r"^fired     \w+ on tests/fixtures/\w+/[\w.-]+:\d+ \(sqlite\)$", result.output, re.M)
    assert re.search(
        r"\d+ rules x \d+ events x 5 engines: \d+ reference hits, 0 failures, 0 content errors", result.output
    )


def test_every_rule_fires_on_an_attack_and_not_on_its_lookalike() -> None:
    pack = load_pack(REPO_ROOT)
    validation = validate_pack(pack)
    result = replay(pack, validation.parsed, {}, engines=["sqlite"])
    assert not result.failures
    fired = {(v.rule, v.event) for v in result.verdicts if v.fired}
    for rule in pack.rules:
        attacks = [
            e for f in pack.fixtures for e in f.events if e.expectation and rule.name in e.expectation.fires
        ]
        lookalikes = [
            e
            for f in pack.fixtures
            for e in f.events
            if e.expectation and rule.name in e.expectation.lookalike_for
        ]
        assert attacks and lookalikes, rule.name
        assert all((rule.name, e.key) in fired for e in attacks)
        assert not any((rule.name, e.key) in fired for e in lookalikes)


def _first_attack(pack_copy: PackCopy) -> tuple[str, str, int]:
    """(rule name, fixture path, line) of the first attack event in the pack."""
    pack = load_pack(pack_copy.root)
    validate_pack(pack)
    for fixture in pack.fixtures:
        for event in fixture.events:
            if event.expectation and event.expectation.kind == "attack":
                return event.expectation.fires[0], fixture.path, event.line
    raise AssertionError("the pack has no attack event")


def test_breaking_a_rule_makes_test_fail_naming_rule_and_event(pack_copy: PackCopy) -> None:
    rule_name, fixture, line = _first_attack(pack_copy)
    rule_path = next(p for p in (pack_copy.root / "rules").rglob(f"{rule_name}.yml"))
    text = rule_path.read_text(encoding="utf-8")
    # Invert the logic: the rule now stays silent on exactly the events it must fire on.
    broken = re.sub(r"\n(\s+)condition: (.+)\n", r"\n\1condition: not (\2)\n", text)
    assert broken != text
    rule_path.write_text(broken, encoding="utf-8")
    result = pack_copy.run("test")
    assert result.exit_code == 1
    assert f"MISSED: rule {rule_name} did not fire but must on {fixture}:{line}" in result.output


def test_an_unexpected_hit_names_rule_and_event(pack_copy: PackCopy) -> None:
    rule_name, fixture, line = _first_attack(pack_copy)
    expect = fixture.rsplit(".", 1)[0] + ".expect.yml"
    text = pack_copy.read(expect)
    # Declare the attack event benign: the rule still fires on it, which is now unexpected.
    pattern = re.compile(rf"(- line: {line}\n\s+kind: )attack(\n\s+fires: )\[[^\]]*\]")
    assert pattern.search(text), text
    pack_copy.write(expect, pattern.sub(r"\1benign\2[]", text, count=1))
    result = pack_copy.run("test")
    assert result.exit_code == 1
    assert (
        f"UNEXPECTED HIT: rule {rule_name} fired but the expectation does not list it on {fixture}:{line}"
        in result.output
    )


def test_an_event_without_expectation_fails(pack_copy: PackCopy) -> None:
    _, fixture, _ = _first_attack(pack_copy)
    lines = pack_copy.read(fixture).splitlines()
    pack_copy.write(fixture, "\n".join([*lines, lines[0]]) + "\n")
    result = pack_copy.run("validate")
    assert result.exit_code == 1
    assert f"{fixture}:{len(lines) + 1}: error: [fixture-unexplained]" in result.output
