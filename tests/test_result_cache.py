"""The result cache (detpack/result_cache.py): a run that reads results from it reports exactly what a run
without it reports, and a change to anything a result depends on is a miss."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detpack.cache_file import CACHE_DIR
from detpack.content import ads as ads_module
from detpack.content import yamlfile
from detpack.content.ads import ads_from_json, ads_to_json, load_ads
from detpack.content.pack import load_pack
from detpack.result_cache import CACHE_FILE, ResultCache, decode_data, encode_data
from detpack.validate import ads as validate_ads_module
from detpack.validate import rules as validate_rules_module
from detpack.validate.pack import ValidationResult, validate_pack
from tests.conftest import PackCopy, copy_pack
from tests.helpers import line_of, plant_validator_warning, rule_containing


def _validate(root: Path, cache: ResultCache | None) -> ValidationResult:
    return validate_pack(load_pack(root, cache), cache)


def _break(pack: PackCopy) -> dict[str, tuple[str, int]]:
    """Plant an error and a warning in rules and an error in an ADS, so the results to cache are not empty."""
    unknown = rule_containing(pack, "        Action: commit\n")
    pack.replace(unknown, "        Action: commit\n", "        Actoin: commit\n")
    warned = plant_validator_warning(pack)
    ads = sorted((pack.root / "ads").glob("*.md"))[0].relative_to(pack.root).as_posix()
    pack.replace(ads, "\npriority: ", "\npriority: urgent\nx_priority: ")
    return {
        "field-unknown": (unknown, line_of(pack, unknown, "Actoin")),
        "sigma-validator": warned,
        "ads": (ads, line_of(pack, ads, "x_priority")),
    }


@pytest.fixture
def broken_pack(tmp_path: Path) -> tuple[PackCopy, dict[str, tuple[str, int]]]:
    pack = copy_pack(tmp_path / "pack")
    return pack, _break(pack)


def test_cached_runs_report_what_an_uncached_run_reports(
    broken_pack: tuple[PackCopy, dict[str, tuple[str, int]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pack, planted = broken_pack
    uncached = _validate(pack.root, None)
    located = {(f.code, f.path, f.line) for f in uncached.findings}
    assert ("field-unknown", *planted["field-unknown"]) in located
    assert ("sigma-validator", *planted["sigma-validator"]) in located
    assert any(f.path == planted["ads"][0] and f.code == "ads-schema" for f in uncached.findings)

    cold = ResultCache.for_pack(pack.root)
    assert cold is not None
    first = _validate(pack.root, cold)
    assert cold.hits == 0 and not cold.problem
    assert (pack.root / CACHE_DIR / CACHE_FILE).is_file()

    loaded = load_pack(pack.root)
    rules = sum(1 for r in loaded.rules if not r.is_correlation)
    expectations = sum(1 for f in loaded.fixtures if f.expect_doc is not None)
    documents = len(list((pack.root / "ads").glob("*.md")))

    def not_again(*_args: object, **_kwargs: object) -> Any:
        raise AssertionError("computed again although the result is in the cache")

    monkeypatch.setattr(validate_rules_module, "single_rule_findings", not_again)
    monkeypatch.setattr(validate_ads_module, "check_structure", not_again)
    monkeypatch.setattr(ads_module, "parse_ads", not_again)
    parse_yaml = yamlfile.parse_yaml

    def parse_other_yaml(text: str, path: str, line_offset: int = 0) -> Any:
        if path.startswith(("rules/", "tests/fixtures/")):  # data sources etc. are not cached
            not_again()
        return parse_yaml(text, path, line_offset)

    monkeypatch.setattr(yamlfile, "parse_yaml", parse_other_yaml)
    warm = ResultCache.for_pack(pack.root)
    assert warm is not None
    second = _validate(pack.root, warm)
    # rule files parsed and, but for correlations, checked; ADS and expectation files parsed and checked
    assert warm.hits == len(loaded.rules) + rules + 2 * documents + 2 * expectations
    assert first.findings == uncached.findings == second.findings
    assert first.parsed == uncached.parsed == second.parsed


def test_a_changed_file_is_checked_again(broken_pack: tuple[PackCopy, dict[str, tuple[str, int]]]) -> None:
    pack, planted = broken_pack
    _validate(pack.root, ResultCache.for_pack(pack.root))
    rule, _ = planted["field-unknown"]
    pack.replace(rule, "        Actoin: commit\n", "        Action: commit\n")
    again = _validate(pack.root, ResultCache.for_pack(pack.root))
    assert not any(f.code == "field-unknown" and f.path == rule for f in again.findings)
    assert again.findings == _validate(pack.root, None).findings


def test_a_change_outside_the_file_is_a_miss_for_every_file(tmp_path: Path) -> None:
    """The data source's field list is not part of any rule file, yet the field checks read it."""
    pack = copy_pack(tmp_path / "pack")
    before = _validate(pack.root, ResultCache.for_pack(pack.root))
    assert not any(f.code == "field-unknown" for f in before.findings)
    pack.replace("datasources/docker_events.yml", "  - Action\n", "")
    cache = ResultCache.for_pack(pack.root)
    after = _validate(pack.root, cache)
    assert cache is not None and cache.hits == 0
    users = {
        f"rules/docker_events/{p.name}"
        for p in (pack.root / "rules" / "docker_events").glob("*.yml")
        if "Action" in p.read_text(encoding="utf-8")
    }
    assert users and users <= {f.path for f in after.findings if f.code == "field-unknown"}


@pytest.mark.parametrize("damage", ["directory", "garbage"])
def test_an_unusable_cache_is_reported_and_the_results_are_still_right(
    tmp_path: Path, damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pack = copy_pack(tmp_path / "pack")
    _break(pack)
    target = pack.root / CACHE_DIR / CACHE_FILE
    target.parent.mkdir()
    if damage == "directory":
        target.mkdir()
    else:
        target.write_bytes(b"not a database\0" * 100)
    cache = ResultCache.for_pack(pack.root)
    assert cache is not None
    result = _validate(pack.root, cache)
    assert "not used" in cache.problem and "DETPACK_CACHE=0" in cache.problem
    assert result.findings == _validate(pack.root, None).findings
    monkeypatch.chdir(pack.root)  # the note names the cache as seen from here
    done = pack.run("validate")
    assert done.exit_code == 1
    assert "note: result cache .detpack-cache/results.sqlite3 not used" in done.stderr


def test_detpack_cache_0_turns_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pack = copy_pack(tmp_path / "pack")
    monkeypatch.setenv("DETPACK_CACHE", "0")
    assert ResultCache.for_pack(pack.root) is None
    assert pack.run("validate").exit_code == 0
    assert not (pack.root / CACHE_DIR / CACHE_FILE).exists()


def test_a_foreign_value_under_a_key_is_refused_as_unusable(tmp_path: Path) -> None:
    """The cache holds JSON only: a value that is not JSON (a pickle, say) is a problem, not code to run."""
    pack = copy_pack(tmp_path / "pack")
    cache = ResultCache.for_pack(pack.root)
    assert cache is not None
    _validate(pack.root, cache)
    with sqlite3.connect(pack.root / CACHE_DIR / CACHE_FILE) as connection:
        connection.execute("UPDATE entries SET value = ?", (b"\x80\x04\x95cos\nsystem\n".decode("latin-1"),))
    again = ResultCache.for_pack(pack.root)
    assert again is not None
    assert _validate(pack.root, again).findings == _validate(pack.root, None).findings
    assert "not used" in again.problem


# --- the JSON form restores exactly what was parsed -------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
KEYS = st.one_of(st.text(max_size=10), st.integers(), st.booleans(), st.floats(allow_nan=False))
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=20,
)


def _typed(value: Any) -> Any:
    """A form that == compares with types and order: True is not 1, 1.0 is not 1, nan equals nan."""
    if isinstance(value, dict):
        return ("map", [(_typed(k), _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    return (type(value).__name__, value)


@settings(max_examples=300, deadline=None)
@given(DATA)
def test_yaml_data_survives_the_json_form_with_its_types(data: Any) -> None:
    restored = decode_data(json.loads(json.dumps(encode_data(data))))
    assert _typed(restored) == _typed(data)


def test_every_ads_document_of_the_pack_survives_the_json_form() -> None:
    root = Path(__file__).resolve().parent.parent
    documents, findings = load_ads(root)
    assert documents and not findings
    for doc in documents:
        restored = ads_from_json(doc.path, json.loads(json.dumps(ads_to_json(doc))))
        assert restored == doc
        assert restored.digest == doc.digest != ""
        assert doc.front is not None and restored.front is not None
        assert restored.front.lines == doc.front.lines
        assert _typed(restored.front.data) == _typed(doc.front.data)
