"""`detpack build`: offline, complete, and byte-identical for the same input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from detpack.content.pack import Pack, load_pack
from detpack.convert import TARGETS
from detpack.correlation import building_blocks, unsupported_reason
from tests.conftest import BYPASS_RULE, EXEC_RULE, REPO_ROOT, PackCopy, small_pack


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def shipped_queries(pack: Pack) -> set[tuple[str, str]]:
    """(rule, target) of every query the build must write: every rule for every target, except building
    blocks (generate: false: no query of their own) and the targets a correlation's type cannot be
    expressed in."""
    blocks = building_blocks(pack)
    expected = set()
    for rule in pack.rules:
        correlation = rule.data.get("correlation")
        for target in TARGETS:
            if rule.name in blocks:
                continue
            if isinstance(correlation, dict) and unsupported_reason(target, correlation["type"]):
                continue
            expected.add((rule.name, target))
    return expected


def test_build_offline_populates_dist(built_pack: PackCopy) -> None:
    """The shared build ran with sockets blocked (tests/conftest.py)."""
    dist = built_pack.root / "dist"
    pack = load_pack(built_pack.root)
    blocks = building_blocks(pack)
    assert blocks, "the pack has no building block: this test no longer checks them"
    expected = shipped_queries(pack)
    for rule in pack.rules:
        for target in TARGETS.values():
            query = dist / "queries" / target.name / f"{rule.name}{target.extension}"
            if (rule.name, target.name) in expected:
                assert query.is_file() and query.read_text().strip(), query
            else:
                assert not query.exists(), query
    written = {p.stem for p in (dist / "queries").rglob("*") if p.is_file()}
    assert written == {rule for rule, _ in expected}
    manifest = json.loads((dist / "manifest.json").read_text())
    assert manifest["attack"]["version"] == "18.1"
    assert {r["name"] for r in manifest["rules"]} == {r.name for r in pack.rules} - set(blocks)
    assert manifest["building_blocks"] == blocks
    assert set(manifest["versions"]) == {r.name for r in pack.rules} - set(blocks)  # what ships
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((dist / name).read_bytes()).hexdigest() == digest


PUBLISHED = (
    "splunk/detpack-0.1.0.tgz",
    "kibana/detpack-rules.ndjson",
    "navigator/detpack-layer.json",
    "navigator/coverage.svg",
    "catalog/index.html",
    "catalog/ads/dp-ads-0001.html",
    "catalog/ads/dp-ads-0002.html",
    "catalog/style.css",
    "catalog/coverage.svg",
    "CHANGELOG.md",
    "manifest.json",
)


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    """On the small pack of DP-ADS-0001 and DP-ADS-0002 (the whole pack: tests/test_determinism.py)."""
    pack = small_pack(tmp_path / "pack", [EXEC_RULE, BYPASS_RULE])
    first, second = tmp_path / "one", tmp_path / "two"
    bumped = pack.run("build", "--bump", "--output", str(first))  # the lock's currency: test_publish_versions
    assert bumped.exit_code == 0, bumped.output
    again = pack.run("build", "--output", str(second))
    assert again.exit_code == 0, again.output
    tree = _tree(first)
    assert set(PUBLISHED) <= set(tree), sorted(set(PUBLISHED) - set(tree))
    assert tree == _tree(second)
    manifest = json.loads(tree["manifest.json"])
    assert set(PUBLISHED) - {"manifest.json"} <= set(manifest["files"])


def test_failing_content_builds_nothing(exec_pack: PackCopy) -> None:
    rule = sorted((exec_pack.root / "rules").rglob("*.yml"))[0]
    rule.write_text(rule.read_text().replace("level:", "levle:"), encoding="utf-8")
    result = exec_pack.run("build")
    assert result.exit_code == 1
    assert "build failed: nothing was written" in result.output
    assert not (exec_pack.root / "dist").exists()


def test_splunk_searches_start_with_their_macro_and_esql_reads_the_index(built_pack: PackCopy) -> None:
    pack = load_pack(built_pack.root)
    expected = shipped_queries(pack)
    for rule in pack.rules:
        ds = pack.datasource_of(rule)
        assert ds is not None, rule.name  # a correlation reads its base rules' data source
        if (rule.name, "splunk") in expected:
            spl = built_pack.read(f"dist/queries/splunk/{rule.name}.spl")
            assert spl.startswith(f"`{ds.splunk_macro}` "), rule.name
        if (rule.name, "esql") in expected:
            esql = built_pack.read(f"dist/queries/esql/{rule.name}.esql")
            assert esql.startswith(f"from {ds.elastic_index} "), rule.name


def test_a_small_pack_is_a_clean_pack_of_its_rules(tmp_path: Path) -> None:
    """tests/conftest.py's small packs, which most build tests use, are legitimate packs: they validate with
    neither error nor warning, and their expectations are the repository's restricted to their rules."""
    pack = small_pack(tmp_path / "pack", [BYPASS_RULE, "zeek_conn_pod_periodic_beacon_to_public"])
    result = pack.run("validate")
    assert result.exit_code == 0, result.output
    assert ": 0 errors, 0 warnings" in result.output, result.output
    kept = set(pack.rule_names())
    assert {
        BYPASS_RULE,
        "zeek_conn_pod_periodic_beacon_to_public",
        "zeek_conn_pod_small_egress_to_public",
    } <= kept
    assert kept < {p.stem for p in (REPO_ROOT / "rules").rglob("*.yml")}
    trimmed = 0
    for expect in sorted(pack.path("tests/fixtures").rglob("*.expect.yml")):
        relative = expect.relative_to(pack.root).as_posix()
        ours = yaml.safe_load(expect.read_text(encoding="utf-8"))["events"]
        theirs = yaml.safe_load((REPO_ROOT / relative).read_text(encoding="utf-8"))["events"]
        assert [e["line"] for e in ours] == [e["line"] for e in theirs], relative
        for mine, full in zip(ours, theirs, strict=True):
            assert mine["fires"] == [name for name in full["fires"] if name in kept]
            lookalike = [name for name in full.get("lookalike_for", []) if name in kept]
            assert mine.get("lookalike_for", []) == lookalike
            assert mine["kind"] == (full["kind"] if mine["fires"] or full["kind"] == "benign" else "benign")
            assert mine["note"] == full["note"]
            trimmed += mine != full
    assert trimmed, "no expectation names a rule outside the small pack: this test checks nothing"
    lock = json.loads(pack.read("versions.lock.json"))["rules"]
    assert {entry["name"] for entry in lock.values()} <= kept
