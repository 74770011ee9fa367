"""The malformed-content corpus (tests/malformed/cases.yml): every broken input gets a located finding.

Each case adds the corpus's own small, valid strategy (tests/malformed/base/) to a copy of the pack,
breaks it in one way, runs the CLI and checks the exit code, the file:line, the message and the fix of
each expected finding, and that nothing crashed. The expected lines are counted by hand in the case files.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PackCopy, copy_pack

CORPUS = Path(__file__).resolve().parent / "malformed"
BASE = CORPUS / "base"
CASES_DIR = CORPUS / "cases"
MANIFEST: dict[str, Any] = yaml.safe_load((CORPUS / "cases.yml").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = MANIFEST["cases"]
CRASH_MARKERS = ("Traceback", "internal error", "Error:", "Exception")


def _prepare(case: dict[str, Any], root: Path, lean: bool = True) -> PackCopy:
    """A copy of the pack with the base kit and the case applied. `lean`: the pack's own rules, ADS and
    fixtures are left out, and so are its documented engine differences (data sources, schemas and
    pipelines stay)."""
    pack = copy_pack(root)
    if lean:
        for folder in ("rules", "ads", "tests/fixtures"):
            shutil.rmtree(pack.path(folder))
            pack.path(folder).mkdir()
        pack.write("tests/engine-differences.yml", "differences: []\n")
    shutil.copytree(BASE, pack.root, dirs_exist_ok=True)
    if case.get("files"):
        shutil.copytree(CASES_DIR / case["name"], pack.root, dirs_exist_ok=True)
    for edit in case.get("edit", []):
        pack.replace(edit["file"], edit["old"], edit["new"])
    for relative in case.get("delete", []):
        pack.path(relative).unlink()
    return pack


def _finding_lines(output: str, at: str, code: str) -> list[str]:
    prefix = f"{at}: error: [{code}] "
    return [line for line in output.splitlines() if line.startswith(prefix)]


def test_the_corpus_is_large_and_every_case_is_complete() -> None:
    assert len(CASES) >= 40
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    folders = {p.name for p in CASES_DIR.iterdir() if p.is_dir()}
    with_files = {case["name"] for case in CASES if case.get("files")}
    assert folders == with_files, "every case folder is used by a case with files: true, and vice versa"
    for case in CASES:
        assert case.get("about"), case["name"]
        assert case.get("expect"), case["name"]
        for expected in case["expect"]:
            assert {"at", "code", "message", "fix"} <= set(expected), (case["name"], expected)
            assert expected["fix"].strip(), "a finding always says how to fix it"


@pytest.mark.parametrize("command", ["validate", "test"])
def test_the_base_kit_alone_is_clean(command: str, tmp_path: Path) -> None:
    """So that each case's findings come from the one thing it breaks."""
    pack = _prepare({"name": "base"}, tmp_path / "pack")
    result = pack.run(command, *(["-q"] if command == "test" else []))
    assert result.exit_code == 0, result.output
    assert ": error: " not in result.output, result.output


def test_the_base_kit_is_clean_among_the_packs_own_content(tmp_path: Path) -> None:
    pack = _prepare({"name": "base"}, tmp_path / "pack", lean=False)
    result = pack.run("validate")
    kit = [line for line in result.output.splitlines() if "hostile" in line and ": error: " in line]
    assert kit == [], "\n".join(kit)
    assert "Traceback" not in result.output


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_malformed_case(case: dict[str, Any], tmp_path: Path) -> None:
    pack = _prepare(case, tmp_path / "pack")
    command = case.get("command", "validate")
    result = pack.run(*([command] if isinstance(command, str) else command))
    output = result.output
    for marker in CRASH_MARKERS:
        assert marker not in output, f"{case['name']}: crashed\n{output}"
    assert result.exit_code == case.get("exit", 1), output
    for expected in case["expect"]:
        lines = _finding_lines(output, expected["at"], expected["code"])
        matching = [line for line in lines if expected["message"] in line.split(" (fix: ", 1)[0]]
        assert matching, (
            f"{case['name']}: no '{expected['at']}: error: [{expected['code']}] ...{expected['message']}...'"
            f" in:\n{output}"
        )
        fixes = [line.split(" (fix: ", 1)[1] for line in matching if " (fix: " in line]
        assert any(expected["fix"] in fix for fix in fixes), f"{case['name']}: fix not found in {matching}"


def test_rule_lines_in_the_corpus_point_into_the_files() -> None:
    """A guard on the manifest itself: every file:line names a line that exists in the case's files."""
    for case in CASES:
        for expected in case["expect"]:
            match = re.fullmatch(r"(.+):(\d+)", expected["at"])
            if match is None:
                continue
            assert int(match.group(2)) >= 1, (case["name"], expected["at"])
