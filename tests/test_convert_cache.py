"""The conversion cache (detpack/convert_cache.py): it returns what converting again would, and nothing else.

A hit skips conversion; a changed rule, pipeline or tool is a miss; an unusable cache is ignored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from detpack import convert
from detpack.cache_file import CACHE_DIR
from detpack.content.pack import Pack, load_pack
from detpack.content.rules import RuleFile
from detpack.content.yamlfile import parse_yaml
from detpack.convert import TARGETS, _load_family, convert_pack
from detpack.convert_cache import CACHE_FILE, ConvertCache
from detpack.correlation import building_blocks
from detpack.findings import Finding
from tests.conftest import PackCopy, copy_pack


@pytest.fixture
def pack_and_copy(tmp_path: Path) -> tuple[Pack, PackCopy]:
    copy = copy_pack(tmp_path / "pack")
    return load_pack(copy.root), copy


def _detections(pack: Pack) -> list[RuleFile]:
    """The rules converted on their own and cached: detection rules that are not building blocks."""
    blocks = building_blocks(pack)
    return [r for r in pack.rules if not r.is_correlation and r.name not in blocks]


def _no_conversion(*_args: object) -> object:
    raise AssertionError("converted although every result is in the cache")


def test_a_second_run_converts_nothing_and_gives_the_same_result(
    pack_and_copy: tuple[Pack, PackCopy], monkeypatch: pytest.MonkeyPatch
) -> None:
    pack, copy = pack_and_copy
    fresh = convert_pack(pack, jobs=1)
    first = ConvertCache.for_pack(pack.root)
    assert first is not None
    assert convert_pack(pack, jobs=1, cache=first) == fresh
    assert first.hits == 0
    assert first.stored == len(_detections(pack)) * len(TARGETS)
    assert (copy.root / CACHE_DIR / CACHE_FILE).is_file()
    assert (copy.root / CACHE_DIR / ".gitignore").read_text(encoding="utf-8") == "*\n"

    monkeypatch.setattr(convert, "_convert_chunk", _no_conversion)
    second = ConvertCache.for_pack(pack.root)
    assert second is not None
    assert convert_pack(pack, jobs=1, cache=second) == fresh
    assert second.hits == first.stored
    assert second.stored == 0


def test_a_changed_pipeline_invalidates_its_targets_entries(pack_and_copy: tuple[Pack, PackCopy]) -> None:
    pack, copy = pack_and_copy
    cache = ConvertCache.for_pack(pack.root)
    assert cache is not None
    before, _ = convert_pack(pack, jobs=1, cache=cache)
    stored = cache.stored
    docker = {r.name for r in _detections(pack) if r.path.startswith("rules/docker_events/")}
    assert docker
    old = {q.rule: q.text for q in before if q.target == "splunk" and q.rule in docker}
    assert all(text.startswith("`detpack_docker_events` ") for text in old.values())

    copy.replace("pipelines/splunk/docker_events.yml", "`detpack_docker_events`", "`detpack_docker_v2`")
    _load_family.cache_clear()  # the process keeps pipelines; a new `detpack test` reads them afresh
    try:
        again = ConvertCache.for_pack(pack.root)
        assert again is not None
        after, _ = convert_pack(pack, jobs=1, cache=again)
        assert after == convert_pack(pack, jobs=1)[0]  # what converting without the cache gives
        new = {q.rule: q.text for q in after if q.target == "splunk" and q.rule in docker}
        assert set(new) == set(old)
        for rule, text in new.items():
            assert text == old[rule].replace("`detpack_docker_events`", "`detpack_docker_v2`", 1)
        # Every Splunk entry is new (the family's files are one pipeline); the Elastic ones are hits.
        assert again.hits == stored - len(_detections(pack))
        assert again.stored == len(_detections(pack))
    finally:
        _load_family.cache_clear()


def test_a_changed_rule_is_the_only_one_converted_again(pack_and_copy: tuple[Pack, PackCopy]) -> None:
    pack, copy = pack_and_copy
    cache = ConvertCache.for_pack(pack.root)
    assert cache is not None
    convert_pack(pack, jobs=1, cache=cache)
    stored = cache.stored
    path = "rules/docker_events/docker_events_container_committed_to_image.yml"
    copy.replace(path, "Action: commit", "Action: recommitted")
    changed = load_pack(copy.root)
    again = ConvertCache.for_pack(changed.root)
    assert again is not None
    queries, _ = convert_pack(changed, jobs=1, cache=again)
    assert again.hits == stored - len(TARGETS)
    assert again.stored == len(TARGETS)
    mine = [q for q in queries if q.rule == "docker_events_container_committed_to_image"]
    assert len(mine) == len(TARGETS)
    assert all("recommitted" in q.text for q in mine)


def test_a_different_tool_is_a_different_key(monkeypatch: pytest.MonkeyPatch) -> None:
    data = {"title": "t", "detection": {"sel": {"a": 1}, "condition": "sel"}}
    key = ConvertCache.key("splunk", "pipes", data)
    assert key == ConvertCache.key("splunk", "pipes", dict(data))
    assert key != ConvertCache.key("lucene", "pipes", data)
    assert key != ConvertCache.key("splunk", "other pipes", data)
    reordered = {"title": "t", "detection": {"condition": "sel", "sel": {"a": 1}}}
    assert key != ConvertCache.key("splunk", "pipes", reordered)  # pySigma keeps the order in the query
    assert key != ConvertCache.key("splunk", "pipes", {**data, "detection": {"sel": {"a": "1"}}})
    monkeypatch.setattr("detpack.convert_cache.tool_fingerprint", lambda: "another pySigma")
    assert key != ConvertCache.key("splunk", "pipes", data)


def test_a_finding_comes_from_the_cache_at_the_rules_current_place(tmp_path: Path) -> None:
    """Lucene refuses a value that starts with `<` and holds a wildcard (PackLuceneBackend)."""
    text = (
        "title: t\nid: 9d2f7c4e-1b3a-4f6e-8a5d-0c1b2a3d4e5f\nlogsource: {product: docker, service: events}\n"
        "\n\ndetection:\n  sel:\n    Action: '<x*'\n  condition: sel\n"
    )
    base = load_pack(Path(__file__).resolve().parent.parent)

    def pack_with(path: str, source: str) -> Pack:
        rule = RuleFile(path, parse_yaml(source, path))
        return Pack(tmp_path, base.datasources, [rule], [], [])

    (tmp_path / "pipelines").symlink_to(base.root / "pipelines")
    first = pack_with("rules/docker_events/a.yml", text)
    cache = ConvertCache.for_pack(tmp_path)
    assert cache is not None
    _, findings = convert_pack(first, targets=["lucene"], jobs=1, cache=cache)
    assert [(f.path, f.line, f.code) for f in findings] == [("rules/docker_events/a.yml", 6, "convert")]
    assert "range" in findings[0].message

    moved = pack_with("rules/docker_events/b.yml", text.replace("\n\n\n", "\n", 1))
    again = ConvertCache.for_pack(tmp_path)
    assert again is not None
    _, cached = convert_pack(moved, targets=["lucene"], jobs=1, cache=again)
    assert again.hits == 1
    assert cached == [
        Finding("rules/docker_events/b.yml", 4, "convert", findings[0].message, findings[0].fix)
    ]


def test_an_unusable_cache_is_ignored(pack_and_copy: tuple[Pack, PackCopy]) -> None:
    pack, copy = pack_and_copy
    cache_file = copy.root / CACHE_DIR / CACHE_FILE
    cache_file.parent.mkdir()
    cache_file.write_bytes(b"not a database" * 100)
    cache = ConvertCache.for_pack(pack.root)
    assert cache is not None
    assert convert_pack(pack, jobs=1, cache=cache) == convert_pack(pack, jobs=1)
    assert cache.hits == 0
    assert str(cache_file) in cache.problem


@pytest.mark.parametrize("value", ["0", "off", "false", "no", "OFF"])
def test_detpack_cache_0_turns_it_off(value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DETPACK_CACHE", value)
    assert ConvertCache.for_pack(tmp_path) is None
    monkeypatch.setenv("DETPACK_CACHE", "1")
    assert ConvertCache.for_pack(tmp_path) is not None


FIX = " (fix: delete .detpack-cache/ or make it writable, or set DETPACK_CACHE=0 to turn the cache off)"


def _break_with_a_folder(cache_file: Path) -> str:
    cache_file.mkdir(parents=True)
    return "unable to open database file"


def _break_with_garbage(cache_file: Path) -> str:
    cache_file.parent.mkdir()
    cache_file.write_bytes(b"not a database" * 100)
    return "file is not a database"


@pytest.mark.parametrize("breaker", [_break_with_a_folder, _break_with_garbage])
def test_detpack_test_notes_an_unusable_cache_and_passes(
    breaker: Callable[[Path], str], exec_pack: PackCopy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the fix the run converted everything and said nothing: a slow run with no reason given."""
    monkeypatch.delenv("DETPACK_CACHE", raising=False)
    monkeypatch.chdir(exec_pack.root)  # the note names the cache relative to the current folder
    reason = breaker(exec_pack.path(f"{CACHE_DIR}/{CACHE_FILE}"))
    result = exec_pack.run("test", "-q", "--engine", "spl")
    assert result.exit_code == 0, result.output
    note = (
        f"note: conversion cache .detpack-cache/convert.sqlite3 not used: {reason}; "
        f"every rule was converted{FIX}"
    )
    assert result.stderr.splitlines().count(note) == 1, result.stderr
    assert note not in result.stdout


def test_detpack_test_notes_a_cache_it_could_not_write(
    exec_pack: PackCopy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache was read (nothing in it), then broke before this run's conversions could be stored."""
    monkeypatch.delenv("DETPACK_CACHE", raising=False)
    monkeypatch.chdir(exec_pack.root)
    cache_file = exec_pack.path(f"{CACHE_DIR}/{CACHE_FILE}")
    convert_jobs = convert._convert_jobs

    def convert_then_break(*args: Any) -> Any:
        assert cache_file.is_file()  # the lookup made it
        cache_file.write_bytes(b"not a database" * 100)
        return convert_jobs(*args)

    monkeypatch.setattr(convert, "_convert_jobs", convert_then_break)
    result = exec_pack.run("test", "-q", "--engine", "spl")
    assert result.exit_code == 0, result.output
    note = (
        "note: conversion cache .detpack-cache/convert.sqlite3 not written: file is not a database; "
        f"the rules converted in this run will be converted again next time{FIX}"
    )
    assert result.stderr.splitlines().count(note) == 1, result.stderr


def test_detpack_test_says_nothing_about_a_working_cache(
    exec_pack: PackCopy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DETPACK_CACHE", raising=False)
    for _ in range(2):  # the first run fills the cache, the second reads it
        result = exec_pack.run("test", "-q", "--engine", "spl")
        assert result.exit_code == 0, result.output
        assert "conversion cache" not in result.stderr
    assert exec_pack.path(f"{CACHE_DIR}/{CACHE_FILE}").is_file()
