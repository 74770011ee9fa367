"""`detpack coverage`: techniques by tactic, and every behaviour covered, explained or missing."""

from __future__ import annotations

import re

from tests.conftest import PackCopy

ADS = "ads/dp-ads-0001-container-command-and-control.md"


def test_coverage_lists_techniques_and_behaviours_with_their_rules(pack_copy: PackCopy) -> None:
    result = pack_copy.run("coverage")
    assert "T1609      Container Administration Command" in result.output
    block = re.search(r"  A2   covered .*\n((?:         - .*\n)+)", result.output)
    assert block is not None and "kubernetes_audit_exec_shell_download" in block.group(1)
    assert re.search(r"\d+ covered by rules, \d+ explained, \d+ missing of 30 behaviours", result.output)


def test_an_unknown_behaviour_claim_is_a_located_finding(pack_copy: PackCopy) -> None:
    pack_copy.replace(
        ADS, "  A9: [docker_events_exec_download_and_run]", "  A99: [docker_events_exec_download_and_run]"
    )
    result = pack_copy.run("validate")
    assert result.exit_code == 1
    line = next(n for n, text in enumerate(pack_copy.read(ADS).splitlines(), 1) if "A99" in text)
    assert (
        f"{ADS}:{line}: error: [behaviour-unknown] A99 is not a behaviour of coverage/behaviours.yml"
        in result.output
    )


def test_an_explained_behaviour_counts_as_accounted_for(pack_copy: PackCopy) -> None:
    reason = "No data source in this pack carries managed-cluster control-plane logs."
    pack_copy.replace(ADS, "\nrules:", f'\nuncovered:\n  B12: "{reason}"\nrules:')
    result = pack_copy.run("coverage")
    assert re.search(r"B12  explained .*\[DP-ADS-0001\]: No data source in this pack", result.output)
