"""The differential check: every engine agrees with the Sigma reference, and a broken query is caught."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from detpack.content.pack import load_pack
from detpack.convert import convert_pack
from detpack.engines.runners import ENGINES
from detpack.replay import ReplayResult, replay
from detpack.validate.pack import validate_pack
from tests.conftest import REPO_ROOT, small_pack

RULE = "kubernetes_audit_privileged_workload_created"  # its NOT excludes dry runs and CNI controllers
NOT_TOKEN = {"spl": r"\bNOT ", "lucene": r"\bNOT ", "eql": r"\bnot ", "esql": r"\bnot "}


@pytest.fixture(scope="module")
def state():  # type: ignore[no-untyped-def]
    pack = load_pack(REPO_ROOT)
    validation = validate_pack(pack)
    queries, findings = convert_pack(pack)
    assert not findings
    return pack, validation, {(q.rule, q.target): q.text for q in queries}


@pytest.fixture(scope="module")
def whole_replay(state) -> ReplayResult:  # type: ignore[no-untyped-def]
    """Every rule over every fixture event in every engine, once for the module."""
    pack, validation, queries = state
    return replay(pack, validation.parsed, queries)


def test_every_engine_agrees_with_the_reference(whole_replay: ReplayResult) -> None:
    result = whole_replay
    assert not result.findings, "\n".join(f.render() for f in result.findings)
    assert not result.failures, result.failures[:5]
    assert set(result.engines) == set(ENGINES)
    for engine in ENGINES:
        assert any(v.fired for v in result.verdicts if v.engine == engine), f"{engine} never fired"


@pytest.mark.parametrize("engine", [e for e in ENGINES if e != "sqlite"])
def test_dropping_a_not_is_caught(state, engine: str) -> None:  # type: ignore[no-untyped-def]
    pack, validation, queries = state
    target = ENGINES[engine].target
    assert target is not None
    original = queries[(RULE, target)]
    mutated = re.sub(NOT_TOKEN[engine], "", original, count=1)
    assert mutated != original, f"no NOT in the {engine} query: {original}"
    result = replay(pack, validation.parsed, {**queries, (RULE, target): mutated}, {RULE}, ["sqlite", engine])
    disagreements = [v for v in result.failures if v.engine == engine and v.rule == RULE]
    assert disagreements, f"dropping NOT from the {engine} query went unnoticed: {mutated}"
    # Dropping the NOT of "not a dry run" turns the rule around: the attacks no longer fire (and, where the
    # target sees it, the dry-run look-alike does); every such verdict is a disagreement with the reference.
    assert any(v.reference and not v.fired for v in disagreements)


def test_a_pipeline_typo_is_reported_with_engine_event_and_query(tmp_path: Path) -> None:
    pack_copy = small_pack(tmp_path / "pack", [RULE])
    # Map requestURI to a name Splunk never extracts: the rule's NOT then excludes nothing in Splunk.
    pack_copy.replace(
        "pipelines/splunk/kubernetes_audit.yml",
        '      sourceIPs: "sourceIPs{}"',
        '      sourceIPs: "sourceIPs{}"\n      requestURI: requestURl',
    )
    result = pack_copy.run("test", "-q", "--engine", "spl", "--rule", RULE)
    assert result.exit_code == 1
    line = re.search(
        rf"DISAGREES: spl says match, the Sigma reference says no match: rule {RULE} on "
        r"(tests/fixtures/kubernetes_audit/\S+:\d+) -- query: (.*)$",
        result.output,
        re.M,
    )
    assert line is not None, result.output
    assert 'requestURl="*dryRun=All*"' in line.group(2)
    assert (
        "dry"
        in pack_copy.read(line.group(1).split(":")[0]).splitlines()[int(line.group(1).split(":")[1]) - 1]
    )


def test_documented_differences_are_exercised(whole_replay: ReplayResult) -> None:
    result = whole_replay
    assert any(v.documented for v in result.verdicts)  # the per-event entries still occur
    assert result.documented_errors  # and so do the documented "cannot run" entries


def test_a_difference_that_no_longer_occurs_fails(tmp_path: Path) -> None:
    stale = "proc_creation_lnx_container_log_driver_disabled"
    pack_copy = small_pack(tmp_path / "pack", [stale])
    text = pack_copy.read("tests/engine-differences.yml")
    pack_copy.write(
        "tests/engine-differences.yml",
        text + "  - rule: proc_creation_lnx_container_log_driver_disabled\n    engine: spl\n"
        "    event: tests/fixtures/linux_process_creation/container_log_driver_disabled.log:1\n"
        "    reason: invented for the test\n",
    )
    result = pack_copy.run("test", "-q", "--engine", "spl", "--rule", stale)
    assert result.exit_code == 1
    assert (
        "[difference-stale] spl now agrees with the reference for "
        "proc_creation_lnx_container_log_driver_disabled" in result.output
    )
