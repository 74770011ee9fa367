"""Shared fixtures: copies of the pack to break (the whole pack, or a small one), one shared build of the
real pack for the tests that only read dist/, and a CLI runner."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from detpack.cli import main
from detpack.offline import block_network, configure_offline

REPO_ROOT = Path(__file__).resolve().parent.parent
PACK_PARTS = (
    "datasources",
    "schemas",
    "pipelines",
    "rules",
    "ads",
    "tests/fixtures",
    "tests/engine-differences.yml",
    "coverage",
)
# The version lock and the changelog generated from it: a copy of the pack publishes the same versions.
LOCK_PARTS = ("versions.lock.json", "CHANGELOG.md")
# What every pack needs whatever its rules: these are copied whole into a small pack too.
MACHINERY = ("datasources", "schemas", "pipelines", "coverage")
DIFFERENCES = "tests/engine-differences.yml"
LOCK = "versions.lock.json"


@dataclass
class PackCopy:
    root: Path

    def path(self, relative: str) -> Path:
        return self.root / relative

    def read(self, relative: str) -> str:
        return self.path(relative).read_text(encoding="utf-8")

    def write(self, relative: str, text: str) -> None:
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def replace(self, relative: str, old: str, new: str) -> None:
        text = self.read(relative)
        assert old in text, f"{old!r} not in {relative}: the test no longer matches the content"
        self.write(relative, text.replace(old, new, 1))

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, [*args, "--root", str(self.root)], catch_exceptions=False)

    def rule_names(self) -> list[str]:
        return sorted(p.stem for p in self.path("rules").rglob("*.yml"))


def _copy(relative: str, destination: Path) -> None:
    source, target = REPO_ROOT / relative, destination / relative
    if source.is_dir():
        shutil.copytree(source, target)
    elif source.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def copy_pack(destination: Path) -> PackCopy:
    """The whole pack with its version lock (the lock must match the content: see test_publish_versions)."""
    for part in (*PACK_PARTS, *LOCK_PARTS):
        _copy(part, destination)
    return PackCopy(destination)


# --- a small pack: a few rules, so that a build takes a second or two -----------------------------------


@dataclass(frozen=True)
class Selection:
    """What a small pack keeps of the repository's pack (repository-relative paths)."""

    names: frozenset[str]  # rule names (file stems)
    rule_ids: frozenset[str]
    rules: tuple[str, ...]
    ads: tuple[str, ...]
    fixtures: tuple[tuple[str, str], ...]  # (events file, expectations file)


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@functools.cache
def _select(chosen: frozenset[str]) -> Selection:
    """The chosen rules and what validation needs around them.

    - An ADS is kept whole with all its rules: its rules must exist, its `attack:` and `data_sources:` must
      equal what its rules tag and read, and its Validation section must prove each of them.
    - A correlation comes with its base rules, a building block with its correlation.
    - A fixture is kept when one of its events names a kept rule (fires or lookalike_for), when a kept ADS's
      Validation section names it, or when tests/engine-differences.yml records a difference of a kept rule
      on one of its events. Its expectations are then restricted to the kept rules (see `_trim`).
    """
    from detpack.content.pack import load_pack
    from detpack.content.rules import resolve_reference

    pack = load_pack(REPO_ROOT)
    known = {rule.name for rule in pack.rules}
    unknown = sorted(chosen - known)
    assert not unknown, f"no rule named {', '.join(unknown)} in {REPO_ROOT / 'rules'}"
    names = set(chosen)
    kept_ads: set[str] = set()
    while True:
        before = (len(names), len(kept_ads))
        for rule in pack.rules:
            if not rule.is_correlation:
                continue
            bases = {base.name for ref in rule.references if (base := resolve_reference(pack.rules, ref))}
            if rule.name in names or bases & names:
                names |= bases | {rule.name}
        for doc in pack.ads:
            listed = {str(name) for name in doc.meta.get("rules") or []}
            if listed & names:
                names |= listed & known
                kept_ads.add(doc.path)
        if (len(names), len(kept_ads)) == before:
            break
    by_path = {fixture.path: fixture for fixture in pack.fixtures}
    fixtures: set[str] = set()
    for doc in pack.ads:
        section = doc.section("Validation") if doc.path in kept_ads else None
        fixtures.update(text for _, text in (section.inline_code if section else []) if text in by_path)
    for fixture in pack.fixtures:
        data = _yaml(REPO_ROOT / fixture.expect_path) if (REPO_ROOT / fixture.expect_path).exists() else {}
        for event in data.get("events") or []:
            if {*event.get("fires", []), *event.get("lookalike_for", [])} & names:
                fixtures.add(fixture.path)
    for entry in _yaml(REPO_ROOT / DIFFERENCES).get("differences") or []:
        if entry["rule"] in names and entry["event"].rsplit(":", 1)[0] in by_path:
            fixtures.add(entry["event"].rsplit(":", 1)[0])
    return Selection(
        names=frozenset(names),
        rule_ids=frozenset(rule.rule_id for rule in pack.rules if rule.name in names),
        rules=tuple(sorted(rule.path for rule in pack.rules if rule.name in names)),
        ads=tuple(sorted(kept_ads)),
        fixtures=tuple(sorted((path, by_path[path].expect_path) for path in fixtures)),
    )


def _trim(expectations: dict[str, Any], names: frozenset[str]) -> bool:
    """Restrict a fixture's expectations to the kept rules: the pack is as if the other rules had never
    existed. An attack event that only absent rules fire on fires no rule any more, so it becomes benign
    (the schema wants an attack to fire a rule). True when something changed."""
    changed = False
    for event in expectations["events"]:
        fires = [name for name in event["fires"] if name in names]
        lookalike = [name for name in event.get("lookalike_for", []) if name in names]
        if fires != event["fires"] or lookalike != event.get("lookalike_for", []):
            changed = True
            event["fires"] = fires
            event.pop("lookalike_for", None)
            if lookalike:  # keep the key order of the file: line, kind, fires, lookalike_for, note
                note = event.pop("note")
                event["lookalike_for"] = lookalike
                event["note"] = note
            if event["kind"] == "attack" and not fires:
                event["kind"] = "benign"
    return changed


class _Dumper(yaml.SafeDumper):
    """The pack's YAML style (tests edit these files as text): block mappings, lists indented under their
    key, lists of plain values on one line (`fires: [a, b]`)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(item, dict | list) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


def small_pack(destination: Path, rules: Iterable[str], lock: bool = True) -> PackCopy:
    """A copy of the pack that keeps only these rules and what validation needs around them (their ADS with
    its other rules, correlations and base rules, the fixtures that prove them, the data sources, pipelines,
    schemas and coverage behaviours, their engine differences and, with `lock`, their version lock entries
    and the changelog of those). It validates, tests and builds cleanly, like the whole pack."""
    selection = _select(frozenset(rules))
    for part in MACHINERY:
        _copy(part, destination)
    for path in (*selection.rules, *selection.ads):
        _copy(path, destination)
    for events, expect in selection.fixtures:
        _copy(events, destination)
        data = _yaml(REPO_ROOT / expect)
        target = destination / expect
        if _trim(data, selection.names):
            target.write_text(_dump(data), encoding="utf-8")
        else:
            shutil.copyfile(REPO_ROOT / expect, target)
    differences = _yaml(REPO_ROOT / DIFFERENCES)
    differences["differences"] = [d for d in differences["differences"] if d["rule"] in selection.names]
    (destination / DIFFERENCES).write_text(_dump(differences), encoding="utf-8")
    if lock:
        from detpack.publish.versions import VersionLock, render_changelog

        document = json.loads((REPO_ROOT / LOCK).read_text(encoding="utf-8"))
        document["rules"] = {k: v for k, v in document["rules"].items() if k in selection.rule_ids}
        text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        (destination / LOCK).write_text(text, encoding="utf-8")
        changelog = render_changelog(VersionLock(document["rules"]))
        (destination / "CHANGELOG.md").write_text(changelog, encoding="utf-8")
    return PackCopy(destination)


# The small packs the tests use: the ADS whose rules a test changes, or what a test needs to see.
EXEC_RULE = "kubernetes_audit_exec_shell_download"  # DP-ADS-0001: Kubernetes, Docker and Sysmon rules
BYPASS_RULE = "kubernetes_audit_privileged_workload_created"  # DP-ADS-0002


@pytest.fixture
def pack_copy(tmp_path: Path) -> PackCopy:
    return copy_pack(tmp_path / "pack")


@pytest.fixture
def exec_pack(tmp_path: Path) -> PackCopy:
    """The small pack of DP-ADS-0001 (kubernetes_audit_exec_shell_download and its sibling rules)."""
    return small_pack(tmp_path / "pack", [EXEC_RULE])


# --- one build of the real pack, shared by every test that only reads dist/ -----------------------------


@dataclass(frozen=True)
class SharedBuild:
    pack: PackCopy
    exit_code: int
    output: str


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@pytest.fixture(scope="session")
def shared_build(
    tmp_path_factory: pytest.TempPathFactory, _suite_has_no_network: None
) -> Iterator[SharedBuild]:
    """`detpack build` of a copy of the real pack with the repository's lock (not --bump: the lock must
    match the content), with sockets blocked. Tests read it and must not change it: checked at the end."""
    configure_offline()
    pack = copy_pack(tmp_path_factory.mktemp("built") / "pack")
    result = pack.run("build")
    before = _digest(pack.root)
    yield SharedBuild(pack, result.exit_code, result.output)
    assert _digest(pack.root) == before, f"a test changed the shared build in {pack.root}"


@pytest.fixture(scope="session")
def built_pack(shared_build: SharedBuild) -> PackCopy:
    """The shared build, which must have succeeded (dist/ holds every artifact)."""
    assert shared_build.exit_code == 0, (
        "the build of the whole pack failed (a stale versions.lock.json fails it too: run "
        f"`detpack build --bump`):\n{shared_build.output}"
    )
    return shared_build.pack


@pytest.fixture(autouse=True, scope="session")
def _suite_has_no_network() -> Iterator[None]:
    """The whole suite runs with sockets blocked: nothing in detpack may reach the network."""
    with block_network():
        yield


@pytest.fixture
def no_network() -> Iterator[None]:
    configure_offline()
    with block_network():
        yield
