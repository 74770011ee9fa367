"""`--changed [REF]`: which files changed since a ref, what that selects, what validate and test report."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from detpack.changes import ChangesError, ChangeSet, changed_files, relevant_findings, select
from detpack.content.pack import load_pack
from detpack.findings import Finding, Severity
from tests.conftest import BYPASS_RULE, EXEC_RULE, PackCopy, small_pack
from tests.helpers import plant_validator_warning

# The ADS documents these tests change or read (DP-ADS-0001, DP-ADS-0002) and a correlation with its base
# rule (DP-ADS-0021): a small pack, so that each `test --changed` runs a few rules.
RULES = (EXEC_RULE, BYPASS_RULE, "zeek_conn_pod_periodic_beacon_to_public")


@pytest.fixture
def pack_copy(tmp_path: Path) -> PackCopy:
    """Here: the small pack of RULES."""
    return small_pack(tmp_path / "pack", RULES)


def docker_rules(pack: PackCopy) -> set[str]:
    """Every rule of the docker_events data source: the files of rules/docker_events/."""
    return {path.stem for path in (pack.root / "rules" / "docker_events").glob("*.yml")}


def git(root: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_AUTHOR_NAME="Jane Doe",
        GIT_AUTHOR_EMAIL="jane@example.com",
        GIT_COMMITTER_NAME="Jane Doe",
        GIT_COMMITTER_EMAIL="jane@example.com",
        GIT_CONFIG_NOSYSTEM="1",
        HOME=str(root.parent),
    )
    done = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture
def repo(pack_copy: PackCopy) -> PackCopy:
    """The pack copy as a git repository: everything committed on main, then a feature branch."""
    pack_copy.write(".gitignore", "dist/\n*.log.tmp\n")
    git(pack_copy.root, "init", "-q", "-b", "main")
    git(pack_copy.root, "add", "-A")
    git(pack_copy.root, "commit", "-q", "-m", "base")
    git(pack_copy.root, "switch", "-q", "-c", "feature")
    return pack_copy


def _rule_file(pack: PackCopy, name: str) -> str:
    (path,) = (pack.root / "rules").rglob(f"{name}.yml")
    return path.relative_to(pack.root).as_posix()


def _touch(pack: PackCopy, relative: str) -> None:
    """A change that keeps the file valid: a YAML comment at the end."""
    pack.write(relative, pack.read(relative) + "# tuned after review\n")


def test_committed_staged_unstaged_and_untracked_changes_count(repo: PackCopy) -> None:
    root = repo.root
    committed = _rule_file(repo, "docker_events_exec_download_and_run")
    _touch(repo, committed)
    git(root, "commit", "-q", "-am", "on the branch")
    staged = "tests/fixtures/docker_events/exec_download_and_run.expect.yml"
    repo.replace(staged, "kind: attack", "kind: attack ")
    git(root, "add", staged)
    unstaged = "datasources/docker_events.yml"
    repo.write(unstaged, repo.read(unstaged) + "# a comment\n")
    repo.write("rules/docker_events/docker_events_new_rule_here.yml", "title: x\n")
    repo.write("x.log.tmp", "ignored\n")
    deleted = "tests/fixtures/linux_process_creation/tunnel_tool_client.log"
    (root / deleted).unlink()

    changes = changed_files(root)
    assert changes.files == {
        committed,
        staged,
        unstaged,
        "rules/docker_events/docker_events_new_rule_here.yml",
        deleted,
    }
    assert not changes.everything
    assert "merge base of HEAD and main" in changes.description


def test_default_base_is_the_merge_base_not_mains_tip(repo: PackCopy) -> None:
    root = repo.root
    branch_rule = _rule_file(repo, "docker_events_exec_download_and_run")
    _touch(repo, branch_rule)
    git(root, "commit", "-q", "-am", "branch work")
    git(root, "switch", "-q", "main")
    main_rule = _rule_file(repo, "kubernetes_audit_exec_shell_download")
    _touch(repo, main_rule)
    git(root, "commit", "-q", "-am", "someone else's work on main")
    git(root, "switch", "-q", "feature")
    assert changed_files(root).files == {branch_rule}
    # Against main's tip the other change shows up too (reverted, seen from the branch).
    assert changed_files(root, "main").files == {branch_rule, main_rule}


def test_origin_main_is_the_fallback_and_no_base_means_everything(repo: PackCopy) -> None:
    root = repo.root
    base = git(root, "rev-parse", "main").strip()
    git(root, "update-ref", "refs/remotes/origin/main", base)
    git(root, "branch", "-q", "-D", "main")
    rule = _rule_file(repo, "docker_events_exec_download_and_run")
    _touch(repo, rule)
    changes = changed_files(root)
    assert changes.files == {rule}
    assert "origin/main" in changes.description
    git(root, "update-ref", "-d", "refs/remotes/origin/main")
    changes = changed_files(root)
    assert changes.everything
    assert "no main or origin/main" in changes.notice


def test_outside_git_everything_is_checked(pack_copy: PackCopy) -> None:
    changes = changed_files(pack_copy.root)
    assert changes.everything
    assert "not in a git repository" in changes.notice
    result = pack_copy.run("validate", "--changed")
    assert result.exit_code == 0
    assert "not in a git repository: checking everything" in result.output


def test_an_unknown_ref_is_a_usage_error(repo: PackCopy) -> None:
    with pytest.raises(ChangesError):
        changed_files(repo.root, "no-such-branch")
    with pytest.raises(ChangesError):
        changed_files(repo.root, "--output=/tmp/x")
    result = repo.run("validate", "--changed", "no-such-branch")
    assert result.exit_code == 2
    assert "no commit 'no-such-branch'" in result.output


def _selection(pack: PackCopy, *files: str) -> tuple[set[str], set[str], bool]:
    loaded = load_pack(pack.root)
    chosen = select(loaded, ChangeSet(frozenset(files), "0" * 40, "test"))
    return set(chosen.rules), set(chosen.fixtures), chosen.everything


def test_what_each_kind_of_change_selects(pack_copy: PackCopy) -> None:
    rule = _rule_file(pack_copy, "kubernetes_audit_exec_shell_download")
    assert _selection(pack_copy, rule) == ({"kubernetes_audit_exec_shell_download"}, set(), False)
    assert _selection(pack_copy, "pipelines/ecs/docker_events.yml") == (docker_rules(pack_copy), set(), False)
    assert _selection(pack_copy, "datasources/docker_events.yml") == (docker_rules(pack_copy), set(), False)
    fixture = "tests/fixtures/docker_events/exec_download_and_run.jsonl"
    assert _selection(pack_copy, fixture) == (set(), {fixture}, False)
    expect = "tests/fixtures/docker_events/exec_download_and_run.expect.yml"
    assert _selection(pack_copy, expect) == (set(), {fixture}, False)
    assert _selection(pack_copy, "README.md", "docs/formats.md") == (set(), set(), False)
    for everything in (
        "schemas/ads.schema.json",
        "detpack/replay.py",
        "pyproject.toml",
        "pipelines/ecs/common.yml",
    ):
        assert _selection(pack_copy, everything)[2], everything


def test_a_changed_ads_selects_its_rules(pack_copy: PackCopy) -> None:
    path = next((pack_copy.root / "ads").glob("dp-ads-0002-*.md"))
    front = yaml.safe_load(path.read_text(encoding="utf-8").split("\n---\n", 1)[0].removeprefix("---\n"))
    listed = set(front["rules"])
    assert "docker_events_security_agent_container_paused_or_killed" in listed
    assert _selection(pack_copy, path.relative_to(pack_copy.root).as_posix()) == (listed, set(), False)


def test_a_changed_differences_file_selects_the_rules_it_names(pack_copy: PackCopy) -> None:
    rules, _, _ = _selection(pack_copy, "tests/engine-differences.yml")
    assert "kubernetes_audit_privileged_workload_created" in rules
    assert "docker_events_security_agent_container_paused_or_killed" in rules
    assert "proc_creation_lnx_tunnel_tool_reverse_socks" not in rules


def test_a_changed_base_rule_selects_its_correlation(pack_copy: PackCopy) -> None:
    correlations = []
    for path in sorted((pack_copy.root / "rules").rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("correlation"), dict):
            correlations.append((path.stem, data["correlation"]["rules"]))
    if not correlations:
        pytest.skip("the pack has no correlation rule")
    name, bases = correlations[0]
    base = _rule_file(pack_copy, bases[0])
    rules, _, _ = _selection(pack_copy, base)
    assert {bases[0], name} <= rules


def test_relevant_findings_keep_changed_files_and_every_error() -> None:
    changes = ChangeSet(frozenset({"rules/a/a_changed_rule.yml"}), "0" * 40, "test")
    in_changed = Finding("rules/a/a_changed_rule.yml", 3, "x", "warning here", severity=Severity.WARNING)
    error_elsewhere = Finding("ads/dp-ads-0001-x.md", 9, "ads-rule-unknown", "no rule file")
    warning_elsewhere = Finding("rules/b/b_other_rule.yml", 4, "y", "old warning", severity=Severity.WARNING)
    shown, hidden = relevant_findings([in_changed, error_elsewhere, warning_elsewhere], changes)
    assert shown == [in_changed, error_elsewhere]
    assert hidden == 1


def test_validate_changed_shows_errors_a_change_causes_in_other_files(repo: PackCopy) -> None:
    ads = next(
        p.relative_to(repo.root).as_posix()
        for p in (repo.root / "ads").glob("*.md")
        if "kubernetes_audit_exec_shell_download" in p.read_text(encoding="utf-8")
    )
    # A warning in a rule that is already on main: counted, not shown, by --changed.
    git(repo.root, "switch", "-q", "main")
    plant_validator_warning(repo)
    git(repo.root, "commit", "-q", "-am", "a rule with a validator warning")
    git(repo.root, "switch", "-q", "feature")
    git(repo.root, "merge", "-q", "--ff-only", "main")
    repo.replace(ads, "  - kubernetes_audit_exec_shell_download\n", "")
    result = repo.run("validate", "--changed")
    assert result.exit_code == 1
    rule = _rule_file(repo, "kubernetes_audit_exec_shell_download")
    assert f"{rule}:1: error: [rule-without-ads]" in result.output  # located in a file that did not change
    # The warning of an untouched rule is counted, not shown.
    assert "DoubleWildcardIssue" not in result.output
    assert "1 warnings in unchanged files not shown" in result.output
    assert "DoubleWildcardIssue" in repo.run("validate").output


def _test_json(pack: PackCopy, *args: str) -> tuple[int, dict[str, object]]:
    result = pack.run("test", "--format", "json", *args)
    return result.exit_code, json.loads(result.stdout)


def test_test_changed_runs_a_changed_rule_over_every_fixture(repo: PackCopy) -> None:
    rule = _rule_file(repo, "kubernetes_audit_exec_shell_download")
    _touch(repo, rule)
    code, report = _test_json(repo, "--changed", "--engine", "sqlite")
    assert code == 0
    changed = report["changed"]
    assert isinstance(changed, dict)
    assert changed["rules"] == ["kubernetes_audit_exec_shell_download"]
    assert changed["fixtures"] == []
    summary = report["summary"]
    assert isinstance(summary, dict)
    loaded = load_pack(repo.root)
    every_event = sum(len(f.events) for f in loaded.fixtures)
    assert summary["verdicts"] == every_event  # one rule x every event x the reference engine


def test_test_changed_runs_every_rule_over_a_changed_fixture(repo: PackCopy) -> None:
    # A new look-alike that is really an attack: an unchanged rule fires on it, and --changed catches that.
    fixture = "tests/fixtures/docker_events/exec_download_and_run.jsonl"
    first_line = repo.read(fixture).splitlines()[0]
    lines = repo.read(fixture).splitlines()
    repo.write(fixture, "\n".join([*lines, first_line]) + "\n")
    expect = "tests/fixtures/docker_events/exec_download_and_run.expect.yml"
    repo.write(
        expect,
        repo.read(expect)
        + f"""  - line: {len(lines) + 1}
    kind: benign
    fires: []
    lookalike_for: [docker_events_exec_download_and_run]
    note: mislabelled copy of line 1, to prove the unchanged rule runs over the changed fixture
""",
    )
    result = repo.run("test", "--changed", "--engine", "sqlite", "-q")
    assert result.exit_code == 1
    assert (
        "UNEXPECTED HIT: rule docker_events_exec_download_and_run fired but the expectation does not "
        f"list it on {fixture}:{len(lines) + 1}" in result.output
    )
    # Only the rules of that data source ran, and only over that fixture.
    code, report = _test_json(repo, "--changed", "--engine", "sqlite")
    assert code == 1
    hits = report["hits"]
    assert isinstance(hits, list)
    assert {h["rule"] for h in hits} <= docker_rules(repo)
    assert {h["event"].rsplit(":", 1)[0] for h in hits} == {fixture}


def test_nothing_changed_runs_nothing_and_passes(repo: PackCopy) -> None:
    result = repo.run("test", "--changed", "--engine", "sqlite")
    assert result.exit_code == 0
    assert "0 rules x 0 events" in result.output


def test_a_partial_run_does_not_call_documented_differences_stale(repo: PackCopy) -> None:
    # Only a kubernetes_audit fixture changes: the privileged-workload rule runs over that fixture alone, so
    # its documented Elastic differences on privileged_workload.jsonl cannot be judged and are not "stale".
    expect = "tests/fixtures/kubernetes_audit/exec_into_pod.expect.yml"
    repo.replace(expect, "note: ", "note: (re-read) ")
    result = repo.run("test", "--changed", "-q")
    assert "difference-stale" not in result.output
    assert result.exit_code == 0, result.output


def test_one_rule_does_not_call_other_rules_documented_errors_stale(pack_copy: PackCopy) -> None:
    result = pack_copy.run("test", "--rule", "kubernetes_audit_exec_shell_download", "-q")
    assert result.exit_code == 0, result.output
    assert "difference-stale" not in result.output


def test_github_annotations_carry_the_path_from_the_repository_root(tmp_path: Path) -> None:
    outer = tmp_path / "repo"
    pack = small_pack(outer / "packs" / "containers", RULES)
    git(outer, "init", "-q", "-b", "main")
    git(outer, "add", "-A")
    git(outer, "commit", "-q", "-m", "base")
    rule = _rule_file(pack, "docker_events_exec_download_and_run")
    pack.replace(rule, "|contains", "|contians")
    result = pack.run("validate", "--format", "github")
    assert result.exit_code == 1
    assert f"::error file=packs/containers/{rule},line=" in result.output
