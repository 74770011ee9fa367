"""Every rule is proven by at least two attack variants and two benign look-alikes (docs/formats.md):
`detpack validate` reports a rule with fewer on the rule's file, with the count it found."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXEC_RULE, PackCopy, small_pack

RULE = "docker_events_exec_download_and_run"  # 4 attack events and 4 look-alikes, all in one fixture
RULE_PATH = f"rules/docker_events/{RULE}.yml"
EXPECT = "tests/fixtures/docker_events/exec_download_and_run.expect.yml"


@pytest.fixture
def pack(tmp_path: Path) -> PackCopy:
    """The small pack of DP-ADS-0001, which holds RULE and its fixture."""
    return small_pack(tmp_path / "pack", [EXEC_RULE])


def _keep(pack: PackCopy, attacks: int, lookalikes: int) -> None:
    """Leave RULE with only the first `attacks` attack events and `lookalikes` look-alikes: the other
    events stay in the fixture, as benign events that imitate nothing."""
    data: dict[str, Any] = yaml.safe_load(pack.read(EXPECT))
    seen_attacks = seen_lookalikes = 0
    for event in data["events"]:
        if event["kind"] == "attack" and RULE in event["fires"]:
            seen_attacks += 1
            if seen_attacks > attacks:
                event["kind"], event["fires"] = "benign", []
        if RULE in event.get("lookalike_for", []):
            seen_lookalikes += 1
            if seen_lookalikes > lookalikes:
                del event["lookalike_for"]
    assert (seen_attacks, seen_lookalikes) == (4, 4), f"{EXPECT} changed: the test no longer matches it"
    pack.write(EXPECT, yaml.safe_dump(data, sort_keys=False, width=200))


def _finding(code: str, count: int) -> re.Pattern[str]:
    return re.compile(
        rf"^{re.escape(RULE_PATH)}:1: error: \[{code}\] {count} fixture events .*"
        r"requires at least 2\b.*\(fix: .*\)$",
        re.MULTILINE,
    )


def test_two_attack_variants_and_two_lookalikes_are_enough(pack: PackCopy) -> None:
    _keep(pack, attacks=2, lookalikes=2)
    result = pack.run("validate")
    assert result.exit_code == 0, result.output
    assert "[rule-without-attack-fixture]" not in result.output
    assert "[rule-without-lookalike]" not in result.output


def test_one_lookalike_is_reported_on_the_rule_with_the_count(pack: PackCopy) -> None:
    _keep(pack, attacks=4, lookalikes=1)
    result = pack.run("validate")
    assert result.exit_code == 1, result.output
    assert len(_finding("rule-without-lookalike", 1).findall(result.output)) == 1, result.output
    assert "look-alikes of this rule" in result.output and "lookalike_for" in result.output
    assert "[rule-without-attack-fixture]" not in result.output


def test_one_attack_event_is_reported_on_the_rule_with_the_count(pack: PackCopy) -> None:
    _keep(pack, attacks=1, lookalikes=4)
    result = pack.run("validate")
    assert result.exit_code == 1, result.output
    assert len(_finding("rule-without-attack-fixture", 1).findall(result.output)) == 1, result.output
    assert "attacks this rule must fire on" in result.output
    assert "[rule-without-lookalike]" not in result.output


def test_no_events_at_all_gives_both_findings_with_zero(pack: PackCopy) -> None:
    _keep(pack, attacks=0, lookalikes=0)
    result = pack.run("validate")
    assert result.exit_code == 1, result.output
    assert _finding("rule-without-attack-fixture", 0).search(result.output), result.output
    assert _finding("rule-without-lookalike", 0).search(result.output), result.output
    # Only the rule that lost its events is reported: the other rules of the pack keep theirs.
    assert result.output.count("[rule-without-attack-fixture]") == 1
    assert result.output.count("[rule-without-lookalike]") == 1
