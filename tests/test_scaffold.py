"""`detpack new`: what it writes, that validation accepts it, and that tests reject it until real events."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from detpack.cli import main
from tests.conftest import BYPASS_RULE, EXEC_RULE, REPO_ROOT, PackCopy, small_pack

ADS_SECTIONS = (
    "Goal",
    "Categorization",
    "Strategy Abstract",
    "Technical Context",
    "Blind Spots and Assumptions",
    "False Positives",
    "Validation",
    "Priority",
    "Response",
    "Additional Resources",
)


@pytest.fixture
def pack_copy(tmp_path: Path) -> PackCopy:
    """Here: the small pack of DP-ADS-0001 and DP-ADS-0002 (rules of Kubernetes audit, Sysmon for Linux
    and Docker events), the ADS documents these tests extend; every data source is there."""
    return small_pack(tmp_path / "pack", [EXEC_RULE, BYPASS_RULE])


def _front_matter(text: str) -> dict[str, Any]:
    assert text.startswith("---\n")
    block = text.split("\n---\n", 1)[0][4:]
    data = yaml.safe_load(block)
    assert isinstance(data, dict)
    return data


def _new(pack: PackCopy, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["new", *args, "--root", str(pack.root)], catch_exceptions=False)
    return result.exit_code, result.output


def _git_main_and_branch(pack: PackCopy) -> None:
    """Commit the pack on main and start a branch, so `detpack test --changed` runs what the scaffold adds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t")
    env.update(GIT_COMMITTER_EMAIL="t@example.com", GIT_CONFIG_NOSYSTEM="1", HOME=str(pack.root.parent))
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["commit", "-q", "-m", "base"],
        ["switch", "-q", "-c", "new"],
    ):
        subprocess.run(["git", *args], cwd=pack.root, env=env, check=True, capture_output=True)


def _ads_path(pack: PackCopy, ads_id: str) -> str:
    for file in sorted((pack.root / "ads").glob("*.md")):
        if _front_matter(file.read_text(encoding="utf-8")).get("id") == ads_id:
            return file.relative_to(pack.root).as_posix()
    raise AssertionError(f"no ADS {ads_id}")


# (data source, technique, its first tactic in ATT&CK v18.1, rule prefix, fixture suffix, ADS option)
CASES = [
    ("kubernetes_audit", "T1610", "defense-evasion", "kubernetes_audit_", ".jsonl", "--new-ads"),
    ("linux_process_creation", "T1611", "privilege-escalation", "proc_creation_lnx_", ".log", "--new-ads"),
    ("docker_events", "T1572", "command-and-control", "docker_events_", ".jsonl", "--ads=dp-ads-0002"),
]


@pytest.mark.parametrize(("datasource", "technique", "tactic", "prefix", "suffix", "ads_option"), CASES)
def test_scaffold_validates_and_test_rejects_it_until_real_events(
    pack_copy: PackCopy,
    datasource: str,
    technique: str,
    tactic: str,
    prefix: str,
    suffix: str,
    ads_option: str,
) -> None:
    _git_main_and_branch(pack_copy)
    ads = _ads_path(pack_copy, "DP-ADS-0002")
    ads_before = pack_copy.read(ads)
    code, output = _new(
        pack_copy,
        "--behaviour",
        "Suspicious helper container started",
        "--datasource",
        datasource,
        "--technique",
        technique.lower(),
        ads_option,
        "--author",
        "Jane Doe",
    )
    assert code == 0, output
    name = f"{prefix}suspicious_helper_container_started"
    rule_path = f"rules/{datasource}/{name}.yml"
    fixture = f"tests/fixtures/{datasource}/suspicious_helper_container_started{suffix}"
    expect = f"tests/fixtures/{datasource}/suspicious_helper_container_started.expect.yml"
    for path in (rule_path, fixture, expect):
        assert f"created {path}" in output
        assert pack_copy.path(path).is_file()

    rule = yaml.safe_load(pack_copy.read(rule_path))
    assert rule["title"] == "Suspicious helper container started"
    assert uuid.UUID(rule["id"]).version == 4
    assert str(rule["date"]) == datetime.date.today().isoformat()
    assert rule["author"] == "Jane Doe"
    assert rule["tags"] == [f"attack.{tactic}", f"attack.{technique.lower()}"]
    datasource_def = yaml.safe_load(pack_copy.read(f"datasources/{datasource}.yml"))
    assert rule["logsource"] == datasource_def["logsource"]
    (field,) = rule["detection"]["selection"]
    assert field in datasource_def["fields"]
    assert rule["detection"]["selection"][field] == "detpack-placeholder"

    # Two attack variants and two look-alikes, one event a line: the least `detpack validate` accepts.
    assert len(pack_copy.read(fixture).splitlines()) == 4
    expectations = yaml.safe_load(pack_copy.read(expect))["events"]
    assert [(e["line"], e["kind"], e["fires"], e.get("lookalike_for")) for e in expectations] == [
        (1, "attack", [name], None),
        (2, "attack", [name], None),
        (3, "benign", [], [name]),
        (4, "benign", [], [name]),
    ]
    assert "second attack variant" in expectations[1]["note"]
    assert "second benign look-alike" in expectations[3]["note"]

    if ads_option == "--new-ads":
        (created,) = [
            line[len("created ") :] for line in output.splitlines() if line.startswith("created ads/")
        ]
        ads, ads_before = created, "---\n---\n"
    meta = _front_matter(pack_copy.read(ads))
    assert name in meta["rules"]
    assert technique in meta["attack"]
    assert datasource in meta["data_sources"]
    # Below the front matter the update only adds lines: every line of the document is still there, in order.
    body_before = ads_before.split("\n---\n", 1)[1].splitlines()
    remaining = iter(pack_copy.read(ads).split("\n---\n", 1)[1].splitlines())
    assert all(any(line == other for other in remaining) for line in body_before)

    validation = pack_copy.run("validate")
    assert validation.exit_code == 0, validation.output
    assert re.search(r"fixtures: 0 errors", validation.output)
    for line in (1, 2, 3, 4):
        assert f"{fixture}:{line}: warning: [placeholder-event]" in validation.output
    # The scaffold meets the requirement of two attack variants and two look-alikes on its own.
    assert f"{rule_path}:1: error" not in validation.output
    assert "[rule-without-attack-fixture]" not in validation.output
    assert "[rule-without-lookalike]" not in validation.output

    # --changed: the new rule over every fixture, and every rule of the data source over the new fixture.
    test = pack_copy.run("test", "--changed", "-q")
    assert test.exit_code == 1
    assert f"MISSED: rule {name} did not fire but must on {fixture}:1 [sqlite]" in test.output
    assert f"MISSED: rule {name} did not fire but must on {fixture}:2 [sqlite]" in test.output
    assert "replace the event on line 1 with a recorded attack event" in test.output
    assert "replace the event on line 2 with a second attack variant" in test.output
    assert f"{fixture}:1: error: [placeholder-event]" in test.output
    assert f"{rule_path}:" in test.output and "error: [placeholder-detection]" in test.output
    # The placeholder events are plain events for every other rule and every engine: nothing else fails.
    assert "UNEXPECTED HIT" not in test.output
    assert "DISAGREES" not in test.output
    assert "engine-error" not in test.output
    assert re.search(r": \d+ reference hits, 2 failures,", test.output)  # the two attack placeholders


@pytest.mark.parametrize("datasource", sorted(p.stem for p in (REPO_ROOT / "datasources").glob("*.yml")))
def test_every_data_source_can_be_scaffolded(tmp_path: Path, datasource: str) -> None:
    """Data sources without a template get copies of recorded look-alikes: still only the new rule fails.
    On a small pack with the recorded events of the data source (the ADS of its first rule)."""
    first = sorted((REPO_ROOT / "rules" / datasource).glob("*.yml"))[0].stem
    pack_copy = small_pack(tmp_path / "pack", [first])
    _git_main_and_branch(pack_copy)
    code, output = _new(
        pack_copy,
        "--behaviour",
        "Scaffolded behaviour for this source",
        "--datasource",
        datasource,
        "--technique",
        "T1610",
        "--new-ads",
    )
    assert code == 0, output
    definition = yaml.safe_load(pack_copy.read(f"datasources/{datasource}.yml"))
    name = f"{definition['rule_file_prefix']}scaffolded_behaviour_for_this_source"
    expect = pack_copy.path(f"tests/fixtures/{datasource}/scaffolded_behaviour_for_this_source.expect.yml")
    (fixture,) = [p for p in expect.parent.glob("scaffolded_behaviour_for_this_source.*") if p != expect]
    events = yaml.safe_load(expect.read_text(encoding="utf-8"))["events"]
    attacks = [e["line"] for e in events if e["kind"] == "attack" and e["fires"] == [name]]
    lookalikes = [e["line"] for e in events if e["kind"] == "benign" and e.get("lookalike_for") == [name]]
    assert len(events) == 4 and len(attacks) == 2 and len(lookalikes) == 2, events
    assert len({*attacks, *lookalikes}) == 4  # four events, not one line named twice
    validation = pack_copy.run("validate", "--changed")
    assert validation.exit_code == 0, validation.output
    assert "[rule-without-attack-fixture]" not in validation.output
    assert "[rule-without-lookalike]" not in validation.output
    test = pack_copy.run("test", "--changed", "--engine", "sqlite", "-q")
    assert test.exit_code == 1
    failures = [
        line for line in test.output.splitlines() if line.startswith(("MISSED", "UNEXPECTED", "DISAGREES"))
    ]
    shown = fixture.relative_to(pack_copy.root).as_posix()
    # The two attack placeholders are missed (the message goes on with the note): nothing else fails.
    assert sorted(f.split(" -- ")[0] for f in failures) == sorted(
        f"MISSED: rule {name} did not fire but must on {shown}:{line} [sqlite]" for line in attacks
    ), failures


def test_new_ads_has_every_section_and_validates(pack_copy: PackCopy) -> None:
    numbers = [
        int(m.group(1))
        for file in (pack_copy.root / "ads").glob("*.md")
        if (m := re.match(r"dp-ads-(\d{4})-", file.name))
    ]
    expected_id = f"DP-ADS-{max(numbers) + 1:04d}"
    code, output = _new(
        pack_copy,
        "--behaviour",
        "Kubelet read-only port queried from a pod",
        "--datasource",
        "kubernetes_audit",
        "--technique",
        "T1613",
        "--new-ads",
    )
    assert code == 0, output
    ads = f"ads/{expected_id.lower()}-kubelet-read-only-port-queried-from-a-pod.md"
    assert f"created {ads}" in output
    text = pack_copy.read(ads)
    meta = _front_matter(text)
    assert meta["id"] == expected_id
    assert meta["title"] == "Kubelet read-only port queried from a pod"
    assert meta["rules"] == ["kubernetes_audit_kubelet_read_only_port_queried_from_a_pod"]
    assert meta["attack"] == ["T1613"]
    assert meta["data_sources"] == ["kubernetes_audit"]
    assert meta["status"] == "draft"
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headings == list(ADS_SECTIONS)
    assert "# Kubelet read-only port queried from a pod\n" in text
    assert "`tests/fixtures/kubernetes_audit/kubelet_read_only_port_queried_from_a_pod.jsonl`" in text
    result = pack_copy.run("validate")
    assert result.exit_code == 0, result.output
    assert f"{ads}:" in result.output and "[placeholder-text]" in result.output


def test_odd_characters_in_the_behaviour_stay_valid_yaml(pack_copy: PackCopy) -> None:
    code, output = _new(
        pack_copy,
        "--behaviour",
        "container 'escape': nsenter #1 into host, pid 1",
        "--datasource",
        "linux_process_creation",
        "--technique",
        "attack.t1611",
        "--ads",
        "DP-ADS-0002",
    )
    assert code == 0, output
    rule = yaml.safe_load(
        pack_copy.read(
            "rules/linux_process_creation/proc_creation_lnx_container_escape_nsenter_1_into_host_pid_1.yml"
        )
    )
    assert rule["title"] == "Container 'escape': nsenter #1 into host, pid 1"
    result = pack_copy.run("validate")
    assert result.exit_code == 0, result.output


def test_long_behaviour_gives_a_file_name_within_limits(pack_copy: PackCopy) -> None:
    behaviour = (
        "Privileged workload created with host namespaces and a host path mount of the node root file system"
    )
    code, output = _new(
        pack_copy,
        "--behaviour",
        behaviour,
        "--datasource",
        "kubernetes_audit",
        "--technique",
        "T1611",
        "--new-ads",
    )
    assert code == 0, output
    (created,) = [line.split(" ", 1)[1] for line in output.splitlines() if line.startswith("created rules/")]
    stem = Path(created).stem
    assert stem.startswith("kubernetes_audit_privileged_workload_created_with")
    assert len(stem) <= 70 and not stem.endswith("_")
    assert pack_copy.run("validate").exit_code == 0


def test_refuses_to_overwrite_and_writes_nothing(pack_copy: PackCopy) -> None:
    args = (
        "--behaviour",
        "Tunnel client container started",
        "--datasource",
        "docker_events",
        "--technique",
        "T1572",
    )
    code, output = _new(pack_copy, *args, "--ads", "DP-ADS-0001")
    assert code == 0, output
    rule = "rules/docker_events/docker_events_tunnel_client_container_started.yml"
    first = pack_copy.read(rule)
    code, output = _new(pack_copy, *args, "--ads", "DP-ADS-0001")
    assert code == 2
    assert "exists already" in output
    assert pack_copy.read(rule) == first

    # A fixture of that name exists but no rule: nothing is written, not even the rule.
    pack_copy.write("tests/fixtures/docker_events/registry_mirror_pull_failed.jsonl", "{}\n")
    ads = _ads_path(pack_copy, "DP-ADS-0001")
    ads_before = pack_copy.read(ads)
    code, output = _new(
        pack_copy,
        "--behaviour",
        "Registry mirror pull failed",
        "--datasource",
        "docker_events",
        "--technique",
        "T1610",
        "--ads",
        "DP-ADS-0001",
    )
    assert code == 2
    assert "tests/fixtures/docker_events/registry_mirror_pull_failed.jsonl exists already" in output
    assert not pack_copy.path("rules/docker_events/docker_events_registry_mirror_pull_failed.yml").exists()
    assert pack_copy.read(ads) == ads_before


def test_non_interactive_missing_options_are_a_usage_error(pack_copy: PackCopy) -> None:
    code, output = _new(pack_copy, "--datasource", "docker_events")
    assert code == 2
    assert "missing --behaviour, --technique, --ads DP-ADS-NNNN or --new-ads" in output
    assert not list((pack_copy.root / "rules" / "docker_events").glob("*placeholder*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--datasource", "auditd", "--technique", "T1610", "--new-ads"), "no data source 'auditd'"),
        (
            ("--datasource", "docker_events", "--technique", "T1999", "--new-ads"),
            "T1999 is not in ATT&CK v18.1",
        ),
        (("--datasource", "docker_events", "--technique", "1610", "--new-ads"), "not an ATT&CK technique ID"),
        (("--datasource", "docker_events", "--technique", "T1002", "--new-ads"), "T1002"),
        (("--datasource", "docker_events", "--technique", "T1610", "--ads", "DP-ADS-0999"), "no ADS with id"),
        (
            ("--datasource", "docker_events", "--technique", "T1610", "--ads", "DP-ADS-0001", "--new-ads"),
            "exclude",
        ),
    ],
)
def test_bad_options_exit_2_with_the_reason(pack_copy: PackCopy, args: tuple[str, ...], message: str) -> None:
    code, output = _new(pack_copy, "--behaviour", "Registry mirror pull failed", *args)
    assert code == 2
    assert message in output
    assert not pack_copy.path("rules/docker_events/docker_events_registry_mirror_pull_failed.yml").exists()


def test_short_behaviour_is_refused(pack_copy: PackCopy) -> None:
    code, output = _new(
        pack_copy,
        "--behaviour",
        "shell",
        "--datasource",
        "docker_events",
        "--technique",
        "T1610",
        "--new-ads",
    )
    assert code == 2
    assert "10 to 100 characters" in output


def test_prompts_for_missing_options_on_a_terminal(
    pack_copy: PackCopy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("detpack.cli._interactive", lambda: True)
    answers = "Tunnel client container started\ndocker_events\nT9999\nT1572\nDP-ADS-0001\n"
    result = CliRunner().invoke(main, ["new", "--root", str(pack_copy.root)], input=answers)
    assert result.exit_code == 0, result.output
    assert "T9999 is not in ATT&CK v18.1" in result.output  # asked again
    assert "created rules/docker_events/docker_events_tunnel_client_container_started.yml" in result.output
    meta = _front_matter(pack_copy.read(_ads_path(pack_copy, "DP-ADS-0001")))
    assert "docker_events_tunnel_client_container_started" in meta["rules"]
    assert "T1572" in meta["attack"]
