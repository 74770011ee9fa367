"""Reports for people and machines: text, json, junit, GitHub Actions annotations, and the progress line."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from detpack.findings import Finding, Severity
from detpack.output import Progress, escape_data, escape_property, finding_annotation, workflow_command
from tests.conftest import PackCopy
from tests.helpers import line_of, plant_validator_warning, rule_containing

# --- GitHub workflow commands, as @actions/core escapes them -----------------------------------------


def test_escaping_follows_the_actions_toolkit() -> None:
    assert escape_data("50% done\r\nnext: a, b") == "50%25 done%0D%0Anext: a, b"
    assert escape_property("rules/a,b:c%\n") == "rules/a%2Cb%3Ac%25%0A"


def test_workflow_command_properties() -> None:
    assert workflow_command("error", "bad", "a.yml", 3, "code") == "::error file=a.yml,line=3,title=code::bad"
    assert (
        workflow_command("warning", "whole file", "a.yml", 0, "c")
        == "::warning file=a.yml,title=c::whole file"
    )
    assert workflow_command("error", "no file") == "::error::no file"


def test_finding_annotation() -> None:
    finding = Finding(
        "rules/x/x_rule_name.yml", 12, "sigma-modifier", "unknown modifier 'a:b'", "did you mean, x?"
    )
    assert finding_annotation(finding) == (
        "::error file=rules/x/x_rule_name.yml,line=12,title=sigma-modifier::"
        "unknown modifier 'a:b' (fix: did you mean, x?)"
    )
    warning = Finding("ads/a.md", 0, "w", "multi\nline", severity=Severity.WARNING)
    assert finding_annotation(warning, "pack/") == "::warning file=pack/ads/a.md,title=w::multi%0Aline"


# --- validate -----------------------------------------------------------------------------------------


def test_validate_github_annotates_a_broken_rule_on_its_line(pack_copy: PackCopy) -> None:
    rule = rule_containing(pack_copy, "|contains")
    pack_copy.replace(rule, "|contains", "|contians")
    line = line_of(pack_copy, rule, "|contians")
    warned, warned_line = plant_validator_warning(pack_copy)
    result = pack_copy.run("validate", "--format", "github")
    assert result.exit_code == 1
    assert (
        f"::error file={rule},line={line},title=sigma-modifier::unknown modifier 'contians'" in result.stdout
    )
    assert "(fix: did you mean 'contains'?)" in result.stdout
    # Warnings are annotations too, and the summary stays a plain line for the log.
    assert f"::warning file={warned},line={warned_line},title=sigma-validator::" in result.stdout
    assert result.stdout.splitlines()[-1].endswith("warnings")


def test_validate_json_lists_every_finding(pack_copy: PackCopy) -> None:
    rule = rule_containing(pack_copy, "|contains")
    pack_copy.replace(rule, "|contains", "|contians")
    result = pack_copy.run("validate", "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert {
        "path": rule,
        "line": line_of(pack_copy, rule, "|contians"),
        "code": "sigma-modifier",
    }.items() <= (errors[0].items())
    assert report["summary"]["errors"] == len(errors)
    assert report["summary"]["rules"] == len(list((pack_copy.root / "rules").rglob("*.yml")))


def test_validate_junit_has_a_case_per_file_to_a_file(pack_copy: PackCopy, tmp_path: Path) -> None:
    rule = rule_containing(pack_copy, "|contains")
    pack_copy.replace(rule, "|contains", "|contians")
    report = tmp_path / "reports" / "validate.xml"
    result = pack_copy.run("validate", "--format", "junit", "--output", str(report))
    assert result.exit_code == 1
    assert result.stdout == ""
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert rule in cases
    assert cases[rule].find("failure") is not None
    clean = [name for name in cases if name and name.startswith("ads/")]
    assert clean and all(cases[name].find("failure") is None for name in clean)
    assert suite.get("failures") == "1"
    assert int(suite.get("tests", "0")) == len(cases)


def test_validate_text_is_unchanged(pack_copy: PackCopy) -> None:
    result = pack_copy.run("validate")
    assert result.exit_code == 0
    *findings, last = result.stdout.splitlines()
    rules = len(list((pack_copy.root / "rules").rglob("*.yml")))
    assert re.fullmatch(rf"{rules} rules, \d+ ADS, \d+ fixtures: 0 errors, {len(findings)} warnings", last)
    assert all(re.match(r"^[\w./-]+:\d+: warning: \[[\w-]+\] .+", line) for line in findings)


# --- test ---------------------------------------------------------------------------------------------


def _break_expectation(pack: PackCopy) -> tuple[str, int]:
    """Make the first attack event of a fixture expect nothing: a MISSED rule on that event's line."""
    expect = "tests/fixtures/docker_events/exec_download_and_run.expect.yml"
    text = pack.read(expect)
    pack.write(
        expect,
        text.replace(
            "  - line: 1\n    kind: attack\n    fires: [docker_events_exec_download_and_run]\n",
            "  - line: 1\n    kind: benign\n    fires: []\n",
            1,
        ),
    )
    assert pack.read(expect) != text
    return "tests/fixtures/docker_events/exec_download_and_run.jsonl", 1


def test_test_github_annotates_the_fixture_line(pack_copy: PackCopy) -> None:
    fixture, line = _break_expectation(pack_copy)
    result = pack_copy.run("test", "--format", "github", "--engine", "sqlite")
    assert result.exit_code == 1
    assert (
        f"::error file={fixture},line={line},title=UNEXPECTED HIT docker_events_exec_download_and_run::"
        "rule docker_events_exec_download_and_run fired but the expectation does not list it on "
        f"{fixture}:{line}"
    ) in result.stdout
    # The matrix and the summary follow as plain lines for the log.
    assert re.search(r"^rule +sqlite$", result.stdout, flags=re.MULTILINE)
    assert re.fullmatch(
        r"\d+ rules x \d+ events x 1 engines: .*1 failures, 0 content errors", result.stdout.splitlines()[-1]
    )


def test_test_json_and_junit(pack_copy: PackCopy, tmp_path: Path) -> None:
    fixture, line = _break_expectation(pack_copy)
    result = pack_copy.run("test", "--format", "json", "--engine", "sqlite")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["summary"]["failures"] == 1
    (failure,) = report["failures"]
    assert failure["event"] == f"{fixture}:{line}"
    assert failure["fired"] is True and failure["expected"] is False
    junit = tmp_path / "test.xml"
    result = pack_copy.run("test", "--format", "junit", "--engine", "sqlite", "--output", str(junit))
    assert result.exit_code == 1
    root = ET.parse(junit).getroot()
    failed = [
        case.get("name")
        for suite in root.iter("testsuite")
        if suite.get("name") == "sqlite"
        for case in suite.iter("testcase")
        if case.find("failure") is not None
    ]
    assert failed == ["docker_events_exec_download_and_run"]


# --- progress -----------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_counts_per_engine_on_a_terminal_only() -> None:
    terminal = _Terminal()
    progress = Progress(["sqlite", "spl"], 2, terminal)
    progress.step("sqlite", "rule_a")
    progress.step("spl", "rule_a")
    progress.step("sqlite", "rule_b")
    shown = terminal.getvalue()
    assert "\rtesting: sqlite 1/2  spl 0/2" in shown
    assert "\rtesting: sqlite 2/2  spl 1/2" in shown
    progress.close()
    assert terminal.getvalue().endswith("\r")

    pipe = io.StringIO()
    quiet = Progress(["sqlite"], 1, pipe)
    quiet.step("sqlite", "rule_a")
    quiet.close()
    assert pipe.getvalue() == ""
