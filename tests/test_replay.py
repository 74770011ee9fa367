"""`detpack test`: every rule over every fixture event, failing on any unexpected hit or miss."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from detpack.content.pack import load_pack
from detpack.correlation import building_blocks
from detpack.replay import replay
from detpack.validate.pack import validate_pack
from tests.conftest import BYPASS_RULE, EXEC_RULE, REPO_ROOT, PackCopy, small_pack


def test_the_pack_passes_and_prints_hits(tmp_path: Path) -> None:
    """`detpack test` on the small pack of DP-ADS-0001 and DP-ADS-0002, in all five engines. That the whole
    pack passes is checked by the shared build (tests/conftest.py, which fails on any failure) and by
    tests/test_differential.py::test_every_engine_agrees_with_the_reference."""
    pack = small_pack(tmp_path / "pack", [EXEC_RULE, BYPASS_RULE])
    result = pack.run("test")
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
    # A building block (a correlation's base rule with generate: false) never runs alone and no fixture
    # names it: the events that prove it are its correlation's attack events and look-alikes.
    blocks = building_blocks(pack)
    assert blocks, "the pack has no building block: this test no longer checks them"
    named = {
        name
        for f in pack.fixtures
        for e in f.events
        if e.expectation
        for name in (*e.expectation.fires, *e.expectation.lookalike_for)
    }
    assert not set(blocks) & named
    assert not set(blocks) & {v.rule for v in result.verdicts}
    assert set(blocks.values()) <= named
    for rule in pack.rules:
        if rule.name in blocks:
            continue
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


@pytest.fixture
def pack(exec_pack: PackCopy) -> PackCopy:
    """The small pack of DP-ADS-0001."""
    return exec_pack


def _first_attack(pack: PackCopy) -> tuple[str, str, int]:
    """(rule name, fixture path, line) of the first attack event in the pack."""
    loaded = load_pack(pack.root)
    validate_pack(loaded)
    for fixture in loaded.fixtures:
        for event in fixture.events:
            if event.expectation and event.expectation.kind == "attack":
                return event.expectation.fires[0], fixture.path, event.line
    raise AssertionError("the pack has no attack event")


def test_breaking_a_rule_makes_test_fail_naming_rule_and_event(pack: PackCopy) -> None:
    rule_name, fixture, line = _first_attack(pack)
    rule_path = next(p for p in (pack.root / "rules").rglob(f"{rule_name}.yml"))
    text = rule_path.read_text(encoding="utf-8")
    # Invert the logic: the rule now stays silent on exactly the events it must fire on.
    broken = re.sub(r"\n(\s+)condition: (.+)\n", r"\n\1condition: not (\2)\n", text)
    assert broken != text
    rule_path.write_text(broken, encoding="utf-8")
    result = pack.run("test", "--engine", "sqlite", "--rule", rule_name)
    assert result.exit_code == 1
    assert f"MISSED: rule {rule_name} did not fire but must on {fixture}:{line}" in result.output


def test_an_unexpected_hit_names_rule_and_event(pack: PackCopy) -> None:
    rule_name, fixture, line = _first_attack(pack)
    expect = fixture.rsplit(".", 1)[0] + ".expect.yml"
    text = pack.read(expect)
    # Declare the attack event benign: the rule still fires on it, which is now unexpected.
    pattern = re.compile(rf"(- line: {line}\n\s+kind: )attack(\n\s+fires: )\[[^\]]*\]")
    assert pattern.search(text), text
    pack.write(expect, pattern.sub(r"\1benign\2[]", text, count=1))
    result = pack.run("test", "--engine", "sqlite", "--rule", rule_name)
    assert result.exit_code == 1
    assert (
        f"UNEXPECTED HIT: rule {rule_name} fired but the expectation does not list it on {fixture}:{line}"
        in result.output
    )


def test_an_event_without_expectation_fails(pack: PackCopy) -> None:
    _, fixture, _ = _first_attack(pack)
    lines = pack.read(fixture).splitlines()
    pack.write(fixture, "\n".join([*lines, lines[0]]) + "\n")
    result = pack.run("validate")
    assert result.exit_code == 1
    assert f"{fixture}:{len(lines) + 1}: error: [fixture-unexplained]" in result.output


def test_the_reference_engine_alone_converts_nothing(pack: PackCopy, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: `--engine sqlite` passed no target to conversion, which read an empty list as 'every
    target' and converted the pack four times for engines that did not run."""
    import detpack.convert

    def no_conversion(*_args: object) -> object:
        raise AssertionError("converted a rule although no engine runs a converted query")

    monkeypatch.setattr(detpack.convert, "_convert_jobs", no_conversion)
    monkeypatch.setenv("DETPACK_CACHE", "0")
    result = pack.run("test", "--engine", "sqlite")
    assert result.exit_code == 0, result.output
    assert re.search(r"\d+ rules x \d+ events x 1 engines: \d+ reference hits, 0 failures", result.output)
