"""The pinned ATT&CK v18.1 snapshot, its regeneration, and pySigma running fully offline."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sigma.rule import SigmaRule
from sigma.validators.base import SigmaValidationIssue
from sigma.validators.core.tags import (
    ATTACKTagValidator,
    D3FENDTagValidator,
    InvalidATTACKTagIssue,
    InvalidD3FENDagIssue,
)

from detpack.attack import (
    ATTACK_SNAPSHOT_FILE,
    AttackSnapshot,
    load_attack,
    tactic_for_tag,
    technique_for_tag,
)
from detpack.offline import NETWORK_DISABLED_MESSAGE, block_network, configure_offline

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "detpack" / "data"
SNAPSHOT_PATH = DATA_DIR / "attack" / ATTACK_SNAPSHOT_FILE
SHARED_BUNDLE = REPO_ROOT.parent / "shared" / "attack" / "enterprise-attack-18.1.json"


def _rule(*tags: str) -> SigmaRule:
    tag_lines = "\n".join(f"  - {tag}" for tag in tags)
    text = textwrap.dedent(
        """\
        title: detpack offline validator probe
        id: 5b7c3c1e-8f0e-4a52-9b8e-2a9d3f0c6e11
        status: test
        logsource:
          product: linux
          category: process_creation
        detection:
          selection:
            Image|endswith: /docker
          condition: selection
        tags:
        """
    )
    return SigmaRule.from_yaml(text + tag_lines + "\n")


def _tags(issues: list[SigmaValidationIssue]) -> list[str]:
    return [str(getattr(issue, "tag", None)) for issue in issues]


@pytest.fixture
def offline() -> Iterator[None]:
    """pySigma pointed at the packaged data, with every network call failing."""
    with block_network():
        configure_offline()
        yield


@pytest.fixture(scope="module")
def snapshot() -> AttackSnapshot:
    return load_attack()


# --- the snapshot itself ------------------------------------------------------------------------------


def test_snapshot_version_is_18_1(snapshot: AttackSnapshot) -> None:
    assert snapshot.version == "18.1"


def test_deploy_container(snapshot: AttackSnapshot) -> None:
    technique = snapshot.techniques["T1610"]
    assert technique.name == "Deploy Container"
    assert {"defense-evasion", "execution"} <= set(technique.tactics)
    assert "Containers" in technique.platforms
    assert technique.url == "https://attack.mitre.org/techniques/T1610"
    assert not technique.deprecated and not technique.revoked


def test_disable_or_modify_tools_is_defense_evasion(snapshot: AttackSnapshot) -> None:
    technique = snapshot.techniques["T1562.001"]
    assert technique.name == "Disable or Modify Tools"
    assert "defense-evasion" in technique.tactics
    assert technique.is_subtechnique and technique.parent_id == "T1562"
    assert snapshot.techniques["T1562"].name == "Impair Defenses"


def test_browser_session_hijacking_is_not_defense_evasion(snapshot: AttackSnapshot) -> None:
    # The seed document filed T1185 under defense-evasion; in ATT&CK v18.1 it is collection only.
    technique = snapshot.techniques["T1185"]
    assert technique.name == "Browser Session Hijacking"
    assert "defense-evasion" not in technique.tactics
    assert technique.tactics == ("collection",)


def test_v19_ids_are_unknown(snapshot: AttackSnapshot) -> None:
    # ATT&CK v19 renumbered Impair Defenses (T1562 -> T1685); the pack pins v18.1.
    assert "T1685" not in snapshot.techniques
    assert not [tid for tid in snapshot.techniques if tid.startswith(("T1685", "T1686"))]


def test_revoked_and_deprecated_techniques_are_kept(snapshot: AttackSnapshot) -> None:
    revoked = [t for t in snapshot.techniques.values() if t.revoked]
    deprecated = [t for t in snapshot.techniques.values() if t.deprecated and not t.revoked]
    assert len(revoked) == 132
    assert len(deprecated) == 12
    assert snapshot.techniques["T1066"].revoked  # "Indicator Removal from Tools"
    assert not snapshot.techniques["T1066"].current


def test_tactics(snapshot: AttackSnapshot) -> None:
    assert len(snapshot.tactics) == 14
    assert snapshot.tactics["command-and-control"].id == "TA0011"
    assert snapshot.tactics["defense-evasion"].name == "Defense Evasion"
    known = set(snapshot.tactics)
    unknown = {(t.id, p) for t in snapshot.techniques.values() for p in t.tactics if p not in known}
    assert not unknown


def test_load_attack_is_cached() -> None:
    assert load_attack() is load_attack()


def test_trimmed_file_is_small_and_trimmed() -> None:
    raw = SNAPSHOT_PATH.read_bytes()
    assert len(raw) < 1_000_000
    assert raw.endswith(b"}\n") and raw.count(b"\n") == 1
    bundle = json.loads(raw)
    assert {obj["type"] for obj in bundle["objects"]} == {
        "x-mitre-collection",
        "x-mitre-tactic",
        "attack-pattern",
    }
    assert b'"description"' not in raw
    for obj in bundle["objects"]:
        assert len(obj.get("external_references", [])) <= 1
    assert (DATA_DIR / "attack" / "LICENSE.txt").read_text(encoding="utf-8").startswith("ATT&CK")


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("attack.t1610", "T1610"),
        ("attack.t1562.001", "T1562.001"),
        ("attack.defense-evasion", None),
        ("attack.g0007", None),
        ("attack.t1562.01", None),
        ("attack.t15620", None),
        ("cve.2024-1234", None),
        ("d3fend.d3-aa", None),
    ],
)
def test_technique_for_tag(tag: str, expected: str | None) -> None:
    assert technique_for_tag(tag) == expected


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("attack.defense-evasion", "defense-evasion"),
        ("attack.command-and-control", "command-and-control"),
        ("attack.execution", "execution"),
        ("attack.t1610", None),
        ("attack.g0007", None),
        ("attack.s0154", None),
        ("attack.defense_evasion", None),
        ("attack.-evasion", None),
        ("tlp.clear", None),
        ("attack", None),
    ],
)
def test_tactic_for_tag(tag: str, expected: str | None) -> None:
    assert tactic_for_tag(tag) == expected


# --- regeneration ----------------------------------------------------------------------------------------


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    if not SHARED_BUNDLE.is_file():
        pytest.skip(f"full ATT&CK bundle not available at {SHARED_BUNDLE} (only in the build workspace)")
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "trim_attack.py"),
            str(SHARED_BUNDLE),
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in (ATTACK_SNAPSHOT_FILE, "PROVENANCE.md", "LICENSE.txt"):
        assert (tmp_path / name).read_bytes() == (DATA_DIR / "attack" / name).read_bytes(), name


# --- pySigma, offline ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("offline")
def test_pysigma_attack_validator_offline() -> None:
    validator = ATTACKTagValidator()
    assert validator.validate(_rule("attack.t1610", "attack.defense-evasion")) == []
    issues = validator.validate(_rule("attack.t9999", "attack.t1610"))
    assert len(issues) == 1
    assert isinstance(issues[0], InvalidATTACKTagIssue)
    assert _tags(issues) == ["attack.t9999"]


@pytest.mark.usefixtures("offline")
def test_pysigma_rejects_v19_and_revoked_ids() -> None:
    issues = ATTACKTagValidator().validate(_rule("attack.t1685", "attack.t1066", "attack.t1562.001"))
    assert all(isinstance(issue, InvalidATTACKTagIssue) for issue in issues)
    assert sorted(_tags(issues)) == ["attack.t1066", "attack.t1685"]


@pytest.mark.usefixtures("offline")
def test_pysigma_attack_version() -> None:
    from sigma.data import mitre_attack

    assert mitre_attack.mitre_attack_version == "18.1"
    assert mitre_attack.mitre_attack_techniques["T1610"] == "Deploy Container"
    assert mitre_attack.mitre_attack_tactics["TA0011"] == "command-and-control"


@pytest.mark.usefixtures("offline")
def test_pysigma_d3fend_validator_offline() -> None:
    validator = D3FENDTagValidator()
    issues = validator.validate(_rule("d3fend.d3-xyz", "d3fend.d3-aa", "attack.t1610"))
    assert all(isinstance(issue, InvalidD3FENDagIssue) for issue in issues)
    assert sorted(_tags(issues)) == ["d3fend.d3-aa", "d3fend.d3-xyz"]


def test_configure_offline_is_idempotent() -> None:
    from sigma.data import mitre_attack

    configure_offline()
    first = mitre_attack._custom_cache_dir
    configure_offline()
    assert mitre_attack._custom_cache_dir == first
    assert first is not None
    assert Path.home() not in first.parents


def test_stale_cache_is_never_used(tmp_path: Path) -> None:
    import diskcache
    from sigma.data import mitre_attack

    stale = diskcache.Cache(str(tmp_path / "mitre_attack"))
    stale.set("mitre_attack_data", {"mitre_attack_version": "17.0", "mitre_attack_techniques": {}})
    stale.close()
    try:
        with block_network():
            configure_offline(cache_dir=tmp_path)
            assert mitre_attack.mitre_attack_version == "18.1"
            assert "T1610" in mitre_attack.mitre_attack_techniques
    finally:
        configure_offline()  # back to the per-process default for the other tests
    assert mitre_attack._custom_cache_dir != tmp_path / "mitre_attack"


def test_offline_process_never_writes_to_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    probe = textwrap.dedent(
        """\
        from detpack.offline import block_network, configure_offline
        from sigma.data import mitre_attack, mitre_d3fend
        with block_network():
            configure_offline()
            configure_offline()
            print(mitre_attack.mitre_attack_version, len(mitre_d3fend.mitre_d3fend_techniques))
        """
    )
    env = {
        **os.environ,
        "HOME": str(home),
        "PYTHONPATH": str(REPO_ROOT),
        "XDG_CACHE_HOME": str(home / ".xdg"),
    }
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=False, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["18.1", "0"]
    assert list(home.iterdir()) == []


# --- the network guard -----------------------------------------------------------------------------------


def test_block_network_blocks_and_restores() -> None:
    originals = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.create_connection,
        socket.getaddrinfo,
    )
    with block_network():
        with pytest.raises(OSError, match="network access is disabled") as excinfo:
            socket.create_connection(("127.0.0.1", 9))
        assert str(excinfo.value) == NETWORK_DISABLED_MESSAGE
        with pytest.raises(OSError, match="network access is disabled"):
            socket.getaddrinfo("example.org", 443)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            with pytest.raises(OSError, match="network access is disabled"):
                sock.connect(("127.0.0.1", 9))
            with pytest.raises(OSError, match="network access is disabled"):
                sock.connect_ex(("127.0.0.1", 9))
    assert (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.create_connection,
        socket.getaddrinfo,
    ) == originals


def test_block_network_restores_after_an_exception() -> None:
    original = socket.create_connection
    with pytest.raises(RuntimeError), block_network():
        raise RuntimeError("boom")
    assert socket.create_connection is original


def test_urlopen_is_refused_inside_block_network() -> None:
    from urllib.request import urlopen

    with block_network(), pytest.raises(OSError, match="network access is disabled"):
        urlopen("https://github.com/mitre-attack/attack-stix-data", timeout=5)
