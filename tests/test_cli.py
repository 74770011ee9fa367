"""The commands a detection engineer runs: exit codes and file:line messages on broken content."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, PackCopy
from tests.helpers import line_of, rule_containing


def test_the_pack_validates_cleanly(pack_copy: PackCopy) -> None:
    result = pack_copy.run("validate")
    assert result.exit_code == 0, result.output
    # Counted from the files, not from the loader: every file is loaded and counted.
    rules = len(list(pack_copy.path("rules").rglob("*.yml")))
    ads = len(list(pack_copy.path("ads").glob("*.md")))
    fixture_dir = pack_copy.path("tests/fixtures")
    fixtures = sum(1 for f in fixture_dir.rglob("*") if f.is_file() and not f.name.endswith(".expect.yml"))
    summary = f"{rules} rules, {ads} ADS, {fixtures} fixtures: 0 errors, 0 warnings"
    assert summary in result.output


def test_misspelled_modifier_names_file_line_and_fix(pack_copy: PackCopy) -> None:
    rule = rule_containing(pack_copy, "|contains")
    pack_copy.replace(rule, "|contains", "|contians")
    result = pack_copy.run("validate")
    assert result.exit_code == 1
    line = line_of(pack_copy, rule, "|contians")
    assert f"{rule}:{line}: error: [sigma-modifier] unknown modifier 'contians'" in result.output
    assert "did you mean 'contains'" in result.output


def test_unknown_attack_tag_names_file_line(pack_copy: PackCopy) -> None:
    rule = rule_containing(pack_copy, "attack.t1")
    text = pack_copy.read(rule)
    tag = re.search(r"attack\.t\d{4}(\.\d{3})?", text)
    assert tag is not None
    pack_copy.replace(rule, tag.group(0), "attack.t1999")
    result = pack_copy.run("validate")
    assert result.exit_code == 1
    line = line_of(pack_copy, rule, "attack.t1999")
    assert (
        f"{rule}:{line}: error: [attack-tag-unknown] attack.t1999: T1999 is not in ATT&CK v18.1"
        in result.output
    )


def test_technique_without_its_tactic_is_reported(pack_copy: PackCopy) -> None:
    rule = rule_containing(pack_copy, "attack.execution")
    pack_copy.write(rule, re.sub(r"\n\s*- attack\.execution\n", "\n", pack_copy.read(rule)))
    result = pack_copy.run("validate")
    assert result.exit_code == 1
    assert f"{rule}:" in result.output
    assert "attack-tactic-missing" in result.output or "attack-tactic-mismatch" in result.output


def test_ads_without_validation_section(pack_copy: PackCopy) -> None:
    ads = sorted(p.relative_to(pack_copy.root).as_posix() for p in (pack_copy.root / "ads").glob("*.md"))[0]
    text = pack_copy.read(ads)
    start = text.index("## Validation")
    end = text.index("## Priority")
    pack_copy.write(ads, text[:start] + text[end:])
    result = pack_copy.run("validate")
    assert result.exit_code == 1
    assert re.search(
        rf"{re.escape(ads)}:\d+: error: \[ads-section-missing\] the ADS has no '## Validation'", result.output
    )


def test_rule_with_unknown_field_names_the_data_source(pack_copy: PackCopy) -> None:
    rule = rule_containing(pack_copy, "objectRef.subresource")
    pack_copy.replace(rule, "objectRef.subresource", "objectRef.subresorce")
    result = pack_copy.run("validate")
    assert result.exit_code == 1
    line = line_of(pack_copy, rule, "objectRef.subresorce")
    assert (
        f"{rule}:{line}: error: [field-unknown] 'objectRef.subresorce' is not a field of data source"
        in result.output
    )
    assert "did you mean 'objectRef.subresource'" in result.output


def test_broken_yaml_is_reported_not_raised(pack_copy: PackCopy) -> None:
    rule = rule_containing(pack_copy, "detection:")
    pack_copy.replace(rule, "detection:", "detection: [")
    result = pack_copy.run("validate")
    assert result.exit_code == 1
    assert f"{rule}:" in result.output and "invalid YAML" in result.output
    assert "Traceback" not in result.output


def test_usage_errors_exit_2(pack_copy: PackCopy, tmp_path: Path) -> None:
    assert pack_copy.run("test", "--rule", "no_such_rule_anywhere").exit_code == 2
    assert pack_copy.run("convert", "--target", "kql").exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    from click.testing import CliRunner

    from detpack.cli import main

    assert CliRunner().invoke(main, ["validate", "--root", str(empty)]).exit_code == 2


@pytest.mark.parametrize("command", ["validate", "convert", "test", "build"])
def test_every_command_has_help(command: str) -> None:
    from click.testing import CliRunner

    from detpack.cli import main

    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and "--root" in result.output


def test_repo_root_is_a_pack() -> None:
    assert (REPO_ROOT / "rules").is_dir() and (REPO_ROOT / "datasources").is_dir()
