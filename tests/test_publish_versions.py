"""The version lock: a changed rule must be bumped, `detpack build --bump` bumps exactly the changed
rules, and CHANGELOG.md is generated from the lock."""

from __future__ import annotations

import json
from pathlib import Path

from detpack.content.pack import load_pack
from detpack.correlation import building_blocks
from detpack.publish.versions import (
    RuleContent,
    VersionLock,
    bump_lock,
    check_lock,
    load_lock,
    render_changelog,
)
from tests.conftest import EXEC_RULE, REPO_ROOT, PackCopy, SharedBuild, small_pack

RULE = "rules/kubernetes_audit/kubernetes_audit_exec_shell_download.yml"
RULE_ID = "3bc25a95-b3bb-4910-ab8f-9df22e054769"


def with_lock(pack: PackCopy, current: bool = False) -> int:
    """The small pack holds the repository's lock entries of its rules; current=True also bumps them to the
    pack's content (so a test of one change does not depend on the repository lock being current). The
    test rule's version."""
    if current:
        result = pack.run("build", "--bump", "--output", str(pack.path("bumped-dist")))
        assert result.exit_code == 0, result.output
    return int(json.loads(pack.read("versions.lock.json"))["rules"][RULE_ID]["version"])


def content(sha: str, parts: dict[str, str], rule_id: str = "r1", name: str = "rule_one") -> RuleContent:
    return RuleContent(rule_id, name, "Rule One", f"rules/x/{name}.yml", 2, sha, parts)


def test_the_repository_lock_is_current_and_its_changelog_generated() -> None:
    lock, findings = load_lock(REPO_ROOT)
    assert findings == []
    assert (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8") == render_changelog(lock)


def test_the_repository_lock_matches_the_content(shared_build: SharedBuild) -> None:
    """Fails when a rule's published content changed and nobody ran `detpack build --bump`: the shared
    build of the whole pack (tests/conftest.py) runs with the repository's lock."""
    assert (
        shared_build.pack.path("versions.lock.json").read_bytes()
        == (REPO_ROOT / "versions.lock.json").read_bytes()
    )
    assert "[version-not" not in shared_build.output, shared_build.output
    assert shared_build.exit_code == 0, shared_build.output


def test_the_manifest_lists_what_ships_and_the_building_blocks_apart(built_pack: PackCopy) -> None:
    """Before the fix manifest.json's `rules` held the building blocks too (no query, not in the Splunk
    app, the Kibana NDJSON or the lock), so it disagreed with every artifact it describes."""
    manifest = json.loads(built_pack.read("dist/manifest.json"))
    names = [rule["name"] for rule in manifest["rules"]]
    blocks = manifest["building_blocks"]
    assert "zeek_conn_pod_small_egress_to_public" not in names
    assert blocks["zeek_conn_pod_small_egress_to_public"] == "zeek_conn_pod_periodic_beacon_to_public"
    assert "zeek_conn_pod_periodic_beacon_to_public" in names  # the correlation ships
    assert names == sorted(names)
    assert list(blocks) == sorted(blocks)
    assert set(names) == set(manifest["versions"])  # the rules that have a published version
    locked = json.loads(built_pack.read("versions.lock.json"))["rules"].values()
    assert set(names) == {entry["name"] for entry in locked if not entry.get("removed_in")}
    pack = load_pack(built_pack.root)
    assert blocks == building_blocks(pack)
    assert not set(names) & set(blocks)
    assert set(names) | set(blocks) == {rule.name for rule in pack.rules}


def test_changed_logic_without_a_bump_fails_the_build_naming_rule_and_fix(exec_pack: PackCopy) -> None:
    version = with_lock(exec_pack, current=True)
    exec_pack.replace(
        RULE, "            - 'wget%20'\n", "            - 'wget%20'\n            - 'fetch%20'\n"
    )
    result = exec_pack.run("build")
    assert result.exit_code == 1
    assert (
        f"{RULE}:2: error: [version-not-bumped] rule kubernetes_audit_exec_shell_download changed"
        in result.output
    )
    assert "Splunk SPL query" in result.output and "Elastic EQL query" in result.output
    assert f"run `detpack build --bump` to publish it as version {version + 1}" in result.output
    assert "build failed: nothing was written" in result.output
    assert not exec_pack.path("dist").exists()


def test_bump_locks_version_two_and_writes_the_changelog(exec_pack: PackCopy) -> None:
    version = with_lock(exec_pack, current=True)
    before = json.loads(exec_pack.read("versions.lock.json"))
    exec_pack.replace(RULE, "level: medium", "level: high")
    bumped = exec_pack.run("build", "--bump")
    assert bumped.exit_code == 0, bumped.output
    assert f"bumped kubernetes_audit_exec_shell_download to version {version + 1}" in bumped.output
    lock = json.loads(exec_pack.read("versions.lock.json"))
    entry = lock["rules"][RULE_ID]
    assert entry["version"] == version + 1
    assert entry["history"][-1] == {"version": version + 1, "pack_version": "0.1.0", "changes": ["level"]}
    unchanged = {k: v for k, v in lock["rules"].items() if k != RULE_ID}
    assert unchanged == {k: v for k, v in before["rules"].items() if k != RULE_ID}
    changelog = exec_pack.read("CHANGELOG.md")
    assert f"- `kubernetes_audit_exec_shell_download` v{version + 1}: " in changelog
    assert "(changed: level)" in changelog
    assert exec_pack.read("dist/CHANGELOG.md") == changelog
    kibana = [json.loads(line) for line in exec_pack.read("dist/kibana/detpack-rules.ndjson").splitlines()]
    versions = {r["name"]: r["version"] for r in kibana}
    assert versions["Potential Download And Execute Via Shell In Pod Exec (Lucene)"] == version + 1
    # Another rule of the pack keeps its version.
    docker = before["rules"]["55c36a3a-4b0a-4400-a29b-5102e3d81e96"]["version"]
    assert versions["Download Piped To Shell Via Container Exec - Docker (Lucene)"] == docker
    again = exec_pack.run("build")  # the bumped lock now matches: a plain build passes
    assert again.exit_code == 0, again.output


def test_a_new_rule_must_be_locked(exec_pack: PackCopy) -> None:
    with_lock(exec_pack)
    lock = json.loads(exec_pack.read("versions.lock.json"))
    del lock["rules"][RULE_ID]
    exec_pack.write("versions.lock.json", json.dumps(lock))
    result = exec_pack.run("build")
    assert result.exit_code == 1
    assert f"{RULE}:2: error: [version-not-locked]" in result.output
    assert "run `detpack build --bump` to lock it at version 1" in result.output


def test_a_broken_lock_is_a_located_finding(exec_pack: PackCopy) -> None:
    exec_pack.write("versions.lock.json", '{\n  "format": 1,\n  "rules": {\n    "x": \n}\n')
    result = exec_pack.run("build")
    assert result.exit_code == 1
    assert "versions.lock.json:5: error: [version-lock] not valid JSON" in result.output
    exec_pack.write("versions.lock.json", json.dumps({"format": 1, "rules": {"r": {"version": 0}}}, indent=1))
    result = exec_pack.run("build")
    assert (
        "versions.lock.json:4: error: [version-lock] entry 'r': version must be an integer >= 1"
        in result.output
    )


def test_bump_rules_unit() -> None:
    empty = VersionLock()
    first = bump_lock(empty, [content("a" * 64, {"query.splunk": "1", "level": "1"})], "1.0.0")
    assert first.rules["r1"]["version"] == 1
    assert check_lock(first, [content("a" * 64, {"query.splunk": "1", "level": "1"})]) == []
    changed = content("b" * 64, {"query.splunk": "2", "level": "1"})
    problems = check_lock(first, [changed])
    assert [p.code for p in problems] == ["version-not-bumped"]
    assert "(Splunk SPL query)" in problems[0].message
    second = bump_lock(first, [changed], "1.1.0")
    assert second.rules["r1"]["version"] == 2
    assert second.rules["r1"]["history"][-1] == {
        "version": 2,
        "pack_version": "1.1.0",
        "changes": ["query.splunk"],
    }
    unchanged = bump_lock(second, [changed], "1.2.0")
    assert unchanged.rules == second.rules  # same content: no new version
    removed = bump_lock(second, [], "2.0.0")
    assert removed.rules["r1"]["removed_in"] == "2.0.0"
    log = render_changelog(removed)
    assert log.index("## 2.0.0") < log.index("## 1.1.0") < log.index("## 1.0.0")
    assert "### Removed\n\n- `rule_one` v2: Rule One" in log


def test_without_a_lock_everything_is_version_one_with_a_warning(tmp_path: Path) -> None:
    pack = small_pack(tmp_path / "pack", [EXEC_RULE], lock=False)
    result = pack.run("build")
    assert result.exit_code == 0, result.output
    assert "versions.lock.json: warning: [version-lock-missing]" in result.output
    kibana = [json.loads(line) for line in pack.read("dist/kibana/detpack-rules.ndjson").splitlines()]
    assert kibana and {rule["version"] for rule in kibana} == {1}
