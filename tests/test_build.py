"""`detpack build`: offline, complete, and byte-identical for the same input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from detpack.content.pack import load_pack
from detpack.convert import TARGETS
from tests.conftest import PackCopy


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.usefixtures("no_network")
def test_build_offline_populates_dist(pack_copy: PackCopy) -> None:
    result = pack_copy.run("build")
    assert result.exit_code == 0, result.output
    dist = pack_copy.root / "dist"
    pack = load_pack(pack_copy.root)
    for rule in pack.rules:
        for target in TARGETS.values():
            query = dist / "queries" / target.name / f"{rule.name}{target.extension}"
            assert query.is_file() and query.read_text().strip(), query
    manifest = json.loads((dist / "manifest.json").read_text())
    assert manifest["attack"]["version"] == "18.1"
    assert {r["name"] for r in manifest["rules"]} == {r.name for r in pack.rules}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((dist / name).read_bytes()).hexdigest() == digest


def test_two_builds_are_byte_identical(pack_copy: PackCopy, tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    assert pack_copy.run("build", "--output", str(first)).exit_code == 0
    assert pack_copy.run("build", "--output", str(second)).exit_code == 0
    assert _tree(first) == _tree(second)
    assert _tree(first)


def test_failing_content_builds_nothing(pack_copy: PackCopy) -> None:
    rule = sorted((pack_copy.root / "rules").rglob("*.yml"))[0]
    rule.write_text(rule.read_text().replace("level:", "levle:"), encoding="utf-8")
    result = pack_copy.run("build")
    assert result.exit_code == 1
    assert "build failed: nothing was written" in result.output
    assert not (pack_copy.root / "dist").exists()


def test_splunk_searches_start_with_their_macro_and_esql_reads_the_index(pack_copy: PackCopy) -> None:
    assert pack_copy.run("build").exit_code == 0
    pack = load_pack(pack_copy.root)
    for rule in pack.rules:
        ds = pack.datasource_of(rule)
        assert ds is not None
        spl = (pack_copy.root / "dist/queries/splunk" / f"{rule.name}.spl").read_text()
        assert spl.startswith(f"`{ds.splunk_macro}` ")
        esql = (pack_copy.root / "dist/queries/esql" / f"{rule.name}.esql").read_text()
        assert esql.startswith(f"from {ds.elastic_index} ")
