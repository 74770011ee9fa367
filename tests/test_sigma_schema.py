"""Tests for schemas/sigma-rule.schema.json, the pack's own JSON Schema for Sigma detection rules.

Every rejection test checks not only that the rule is invalid but that each reported error points at the
offending place (its JSON path), because that path is what turns a schema error into a located finding.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "sigma-rule.schema.json"

# The value modifiers of the Sigma Modifiers appendix v2.1.0 (generic, string, regular-expression,
# encoding, numeric, time, IP and specific modifiers), and the three regular-expression flags.
APPENDIX_MODIFIERS = [
    "contains", "startswith", "endswith", "all", "exists", "cased", "neq",
    "windash", "re", "base64", "base64offset", "utf16le", "utf16be", "utf16", "wide",
    "lt", "lte", "gt", "gte",
    "minute", "hour", "day", "week", "month", "year",
    "cidr", "expand", "fieldref",
]  # fmt: skip
RE_FLAGS = ["i", "m", "s"]

VALID_RULE: dict[str, Any] = {
    "title": "Docker Socket Mounted Into Container",
    "id": "5f0c8a2e-9b7d-4e61-a3c4-2d8e9f1b6a70",
    "status": "experimental",
    "description": "Detects a container started with the Docker daemon socket bind-mounted into it.",
    "references": [
        "https://docs.docker.com/engine/security/protect-access/",
        "http://example.org/docker-socket-abuse",
    ],
    "author": "detpack authors",
    "date": "2026-01-15",
    "modified": "2026-02-28",
    "tags": ["attack.privilege-escalation", "attack.t1611", "attack.t1059.004", "detection.threat-hunting"],
    "logsource": {"product": "docker", "service": "events", "definition": "docker events --format json"},
    "detection": {
        "selection": {
            "Type": "container",
            "Action": ["create", "start"],
            "Actor.Attributes.image|contains|all": ["docker", "cli"],
            "CommandLine|re|i": "docker\\.sock",
            "DestinationIp|cidr": "10.0.0.0/8",
            "Actor.ID|exists": True,
        },
        "selection_list": [{"Action|startswith": "exec_"}, {"Action|endswith": "_die"}],
        "keywords": ["/var/run/docker.sock", 2375],
        "keywords_all": {"|all": ["docker.sock", "--privileged"]},
        "filter_main_null": {"Actor.Attributes.name": None},
        "_helper": {"status|neq": "ok", "timeNano|gte": 0},
        "condition": "1 of selection* and not filter_main_null",
    },
    "fields": ["Actor.ID", "Actor.Attributes.image"],
    "falsepositives": ["Monitoring agents that legitimately manage containers"],
    "level": "high",
    "related": [{"id": "08fbc97d-0a2f-491c-ae21-8ffcfd3174e9", "type": "derived"}],
    "license": "Apache-2.0",
    "name": "docker_socket_mount",
    "taxonomy": "sigma",
    "scope": ["server"],
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def rule(**changes: Any) -> dict[str, Any]:
    """A deep copy of VALID_RULE with top-level attributes replaced (or removed when given as DROP)."""
    result = copy.deepcopy(VALID_RULE)
    for key, value in changes.items():
        if value is DROP:
            del result[key]
        else:
            result[key] = value
    return result


DROP = object()


def with_detection(**entries: Any) -> dict[str, Any]:
    """A rule whose detection is VALID_RULE's with search identifiers added, replaced or dropped."""
    detection = copy.deepcopy(VALID_RULE["detection"])
    for key, value in entries.items():
        if value is DROP:
            del detection[key]
        else:
            detection[key] = value
    return rule(detection=detection)


def errors(validator: Draft202012Validator, instance: Any) -> list[ValidationError]:
    return sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.message))


def subschema(error: ValidationError) -> Mapping[str, Any]:
    """The object subschema that produced an error (a boolean or unset one fails the test)."""
    assert isinstance(error.schema, Mapping), (error.schema, error.message)
    return error.schema


def leaf_errors(error_list: list[ValidationError]) -> Iterator[ValidationError]:
    for error in error_list:
        if error.context:
            yield from leaf_errors(list(error.context))
        else:
            yield error


# --- the schema itself -------------------------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://detpack.invalid/schemas/sigma-rule.schema.json"
    assert "Sigma specification v2" in schema["$comment"]
    assert "public domain" in schema["$comment"]


def test_top_level_attributes_are_exactly_the_specifications(schema: dict[str, Any]) -> None:
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {
        "title", "id", "name", "related", "taxonomy", "status", "description", "license", "author",
        "references", "date", "modified", "logsource", "detection", "fields", "falsepositives", "level",
        "tags", "scope",
        "detpack",  # the pack's own annotations (justified leading wildcards), not a Sigma attribute
    }  # fmt: skip
    assert set(schema["required"]) == {
        "title", "id", "status", "description", "references", "author", "date", "tags", "logsource",
        "detection", "falsepositives", "level",
    }  # fmt: skip


def _property_schemas(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{where}.{name}", sub
        for key, sub in node.items():
            yield from _property_schemas(sub, f"{where}/{key}")
    elif isinstance(node, list):
        for index, sub in enumerate(node):
            yield from _property_schemas(sub, f"{where}[{index}]")


def test_every_property_has_a_title_and_a_guiding_description(schema: dict[str, Any]) -> None:
    found = list(_property_schemas(schema, "$"))
    assert len(found) >= 19 + 2 + 4 + 1  # top level, related item, logsource, detection.condition
    for where, sub in found:
        assert isinstance(sub.get("title"), str) and sub["title"], f"{where} has no title"
        assert isinstance(sub.get("description"), str) and len(sub["description"]) >= 30, (
            f"{where} has no useful description"
        )


def test_modifier_pattern_lists_exactly_the_appendix_modifiers(schema: dict[str, Any]) -> None:
    pattern = schema["$defs"]["fieldMap"]["propertyNames"]["pattern"]
    alternatives = re.search(r"\\\|\(\?:(.*)\)\)\*\$$", pattern)
    assert alternatives, pattern
    names = alternatives.group(1).replace("re(?:\\|[ims])*", "re").split("|")
    assert sorted(names) == sorted(APPENDIX_MODIFIERS)


# --- a complete valid rule -----------------------------------------------------------------------------


def test_complete_valid_rule_passes(validator: Draft202012Validator) -> None:
    assert errors(validator, VALID_RULE) == []


def test_minimal_required_rule_passes(validator: Draft202012Validator) -> None:
    minimal = rule(
        modified=DROP, related=DROP, license=DROP, name=DROP, taxonomy=DROP, scope=DROP, fields=DROP
    )
    minimal["detection"] = {"selection": {"Action": "start"}, "condition": "selection"}
    assert errors(validator, minimal) == []


# --- the rejections the pack relies on, each at the offending place ------------------------------------


def _selection_with(key: str, value: Any) -> dict[str, Any]:
    return with_detection(selection={"Type": "container", key: value})


Case = tuple[str, Callable[[], dict[str, Any]], str, str]

REJECTIONS: list[Case] = [
    # id, rule factory, expected JSON path of every error, expected failing keyword
    (
        "misspelled-modifier",
        lambda: _selection_with("CommandLine|contians", "x"),
        "$.detection.selection",
        "pattern",
    ),
    ("unknown-top-level-key", lambda: rule(falsepositive=["Unknown"]), "$", "additionalProperties"),
    ("missing-falsepositives", lambda: rule(falsepositives=DROP), "$", "required"),
    ("bad-uuid", lambda: rule(id="5f0c8a2e-9b7d-4e61-a3c4-2d8e9f1b6a7"), "$.id", "pattern"),
    ("uppercase-uuid", lambda: rule(id="5F0C8A2E-9B7D-4E61-A3C4-2D8E9F1B6A70"), "$.id", "pattern"),
    ("bad-date", lambda: rule(date="2026-13-01"), "$.date", "pattern"),
    ("title-with-newline", lambda: rule(title="Docker Socket\nMounted Into Container"), "$.title", "*"),
    ("level-severe", lambda: rule(level="severe"), "$.level", "enum"),
    ("logsource-empty", lambda: rule(logsource={}), "$.logsource", "anyOf"),
    (
        "tags-without-technique",
        lambda: rule(tags=["attack.execution", "cve.2019-5736"]),
        "$.tags",
        "contains",
    ),
    ("tags-without-tactic", lambda: rule(tags=["attack.t1611", "attack.t1059.004"]), "$.tags", "contains"),
    ("detection-without-condition", lambda: with_detection(condition=DROP), "$.detection", "required"),
    (
        "search-identifier-1sel",
        lambda: with_detection(**{"1sel": {"Type": "container"}}),
        "$.detection",
        "pattern",
    ),
    (
        "reference-not-http",
        lambda: rule(references=["https://docs.docker.com/", "javascript:alert(1)"]),
        "$.references[1]",
        "pattern",
    ),
]


@pytest.mark.parametrize(
    ("factory", "path", "keyword"), [c[1:] for c in REJECTIONS], ids=[c[0] for c in REJECTIONS]
)
def test_invalid_rule_fails_at_the_offending_place(
    validator: Draft202012Validator, factory: Callable[[], dict[str, Any]], path: str, keyword: str
) -> None:
    found = errors(validator, factory())
    assert found, "the rule should be invalid"
    assert {e.json_path for e in found} == {path}, [(e.json_path, e.message) for e in found]
    if keyword != "*":
        assert keyword in {e.validator for e in found}, [(e.validator, e.message) for e in found]


def test_misspelled_modifier_error_names_the_key(validator: Draft202012Validator) -> None:
    (error,) = errors(validator, _selection_with("CommandLine|contians", "x"))
    assert list(error.absolute_path) == ["detection", "selection"]
    assert error.instance == "CommandLine|contians"
    assert list(error.schema_path)[-2:] == ["propertyNames", "pattern"]
    assert "contains" in subschema(error)["description"]


def test_unknown_top_level_key_is_named(validator: Draft202012Validator) -> None:
    for typo in ("falsepositive", "referances", "Title", "timeframe"):
        (error,) = errors(validator, rule(**{typo: "x"}))
        assert error.validator == "additionalProperties"
        assert repr(typo) in error.message


def test_missing_falsepositives_is_named(validator: Draft202012Validator) -> None:
    (error,) = errors(validator, rule(falsepositives=DROP))
    assert list(error.absolute_path) == []
    assert "'falsepositives' is a required property" in error.message


def test_search_identifier_error_names_the_identifier(validator: Draft202012Validator) -> None:
    for name in ("1sel", "sel-1", "sel.1", "sel 1"):
        found = errors(validator, with_detection(**{name: {"Type": "container"}}))
        assert [(e.json_path, e.instance) for e in found] == [("$.detection", name)]


@pytest.mark.parametrize(
    ("tags", "missing"),
    [(["attack.execution"], "technique"), (["attack.t1611"], "tactic"), (["cve.2019-5736"], "both")],
)
def test_missing_attack_tags_report_which_kind(
    validator: Draft202012Validator, tags: list[str], missing: str
) -> None:
    found = errors(validator, rule(tags=tags))
    titles = {subschema(e)["title"] for e in found}
    expected = {
        "technique": {"ATT&CK technique tag required"},
        "tactic": {"ATT&CK tactic tag required"},
        "both": {"ATT&CK technique tag required", "ATT&CK tactic tag required"},
    }[missing]
    assert titles == expected
    assert {e.json_path for e in found} == {"$.tags"}


# --- the detection grammar -----------------------------------------------------------------------------


@pytest.mark.parametrize("modifier", APPENDIX_MODIFIERS)
def test_each_appendix_modifier_is_accepted(validator: Draft202012Validator, modifier: str) -> None:
    value: Any = {"exists": True, "all": ["a", "b"]}.get(modifier, "x")
    assert errors(validator, _selection_with(f"Field|{modifier}", value)) == []


@pytest.mark.parametrize(
    "key", ["Field|re|i", "Field|re|m|s", "Field|re|i|m|s", "Field|contains|all|windash"]
)
def test_chained_modifiers_are_accepted(validator: Draft202012Validator, key: str) -> None:
    value = ["a", "b"] if "|all" in key else "x"
    assert errors(validator, _selection_with(key, value)) == []


@pytest.mark.parametrize(
    "key",
    [
        "CommandLine|contians",
        "CommandLine|Contains",
        "CommandLine|contains|",
        "CommandLine||contains",
        "CommandLine|i",  # a regular-expression flag without 're'
        "CommandLine|contains|m",
        "CommandLine|ignorecase",  # pySigma alias, not in the appendix
        "CommandLine|re|x",
        "CommandLine|base64offset|contains ",
        "",
    ],
)
def test_unknown_or_misplaced_modifiers_are_rejected_at_their_map(
    validator: Draft202012Validator, key: str
) -> None:
    found = errors(validator, _selection_with(key, "x"))
    assert [(e.json_path, e.instance) for e in found] == [("$.detection.selection", key)]


def test_bad_modifier_in_a_list_of_maps_points_at_the_list_item(validator: Draft202012Validator) -> None:
    found = errors(validator, with_detection(selection_list=[{"Action": "x"}, {"Action|endwith": "y"}]))
    assert [(e.json_path, e.instance) for e in found] == [("$.detection.selection_list[1]", "Action|endwith")]


def test_keyword_all_with_empty_field_name_is_accepted(validator: Draft202012Validator) -> None:
    assert errors(validator, with_detection(keywords={"|all": ["a", "b"]}, keywords_re={"|re": "a.*b"})) == []


def test_all_modifier_needs_at_least_two_values(validator: Draft202012Validator) -> None:
    for value in ("single", ["single"]):
        found = errors(validator, _selection_with("CommandLine|contains|all", value))
        assert {e.json_path for e in found} == {"$.detection.selection['CommandLine|contains|all']"}


def test_exists_modifier_needs_a_boolean(validator: Draft202012Validator) -> None:
    assert errors(validator, _selection_with("Field|exists", False)) == []
    found = errors(validator, _selection_with("Field|exists", "yes"))
    assert [(e.json_path, e.validator) for e in found] == [("$.detection.selection['Field|exists']", "type")]


def test_null_is_a_value_but_not_a_list_item(validator: Draft202012Validator) -> None:
    assert errors(validator, _selection_with("PasswordLastSet", None)) == []
    assert errors(validator, _selection_with("PasswordLastSet", "")) == []
    found = errors(validator, _selection_with("PasswordLastSet", ["", None]))
    assert [e.json_path for e in found] == ["$.detection.selection.PasswordLastSet[1]"]


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"Type": {"nested": "map"}}, "$.detection.selection.Type"),
        ({"Type": []}, "$.detection.selection.Type"),
        ({}, "$.detection.selection"),
        ([], "$.detection.selection"),
        ("plain string", "$.detection.selection"),
        ([{"Type": "container"}, "keyword"], "$.detection.selection[1]"),
        (["keyword", {"Type": "container"}], "$.detection.selection[1]"),
        (["keyword", None], "$.detection.selection[1]"),
    ],
)
def test_malformed_search_identifiers_are_rejected(
    validator: Draft202012Validator, value: Any, path: str
) -> None:
    found = errors(validator, with_detection(selection=value))
    assert found
    assert {e.json_path for e in found} == {path}, [(e.json_path, e.message) for e in found]


def test_condition_forms(validator: Draft202012Validator) -> None:
    assert errors(validator, with_detection(condition=["selection", "keywords"])) == []
    for bad, path in (
        ("", "$.detection.condition"),
        ([], "$.detection.condition"),
        (["  "], "$.detection.condition[0]"),
    ):
        found = errors(validator, with_detection(condition=bad))
        assert found and {e.json_path for e in found} == {path}


def test_detection_needs_a_search_identifier_and_string_keys(validator: Draft202012Validator) -> None:
    found = errors(validator, rule(detection={"condition": "selection"}))
    assert [(e.json_path, e.validator) for e in found] == [("$.detection", "minProperties")]
    found = errors(validator, with_detection(**{"timeframe": "5m"}))
    assert {e.json_path for e in found} == {"$.detection.timeframe"}
    detection = copy.deepcopy(VALID_RULE["detection"])
    detection[4688] = {"EventID": 1}
    found = errors(validator, rule(detection=detection))
    assert [(e.json_path, e.instance) for e in found] == [("$.detection", 4688)]


# --- single-value attributes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "title",
    [
        "Short",  # under 10 characters
        "x" * 111,
        " Leading Space Title",
        "Trailing Space Title ",
        "Trailing Newline Title\n",  # Python's $ matches before a final newline; the schema must not
        "Tab\tInside The Title",
        "Carriage\rReturn Title",
        "Nul\u0000Character Title",
        "Escape\u001bCharacter Title",
        "Line\u2028Separator Title",
        "Paragraph\u2029Separator Title",
    ],
)
def test_bad_titles_are_rejected(validator: Draft202012Validator, title: str) -> None:
    found = errors(validator, rule(title=title))
    assert found and {e.json_path for e in found} == {"$.title"}


def test_title_length_bounds_are_inclusive(validator: Draft202012Validator) -> None:
    assert errors(validator, rule(title="x" * 10)) == []
    assert errors(validator, rule(title="A" + " b" * 54 + "c")) == []  # 110 characters
    assert len("A" + " b" * 54 + "c") == 110


@pytest.mark.parametrize(
    ("date", "valid"),
    [
        ("2026-01-31", True),
        ("2024-02-29", True),
        ("2026-04-30", True),
        ("2026-12-31", True),
        ("2026-13-01", False),
        ("2026-00-10", False),
        ("2026-04-31", False),
        ("2026-02-30", False),
        ("2026-01-00", False),
        ("2026-1-5", False),
        ("26-01-05", False),
        ("2026/01/05", False),
        ("2026-01-05T10:00:00", False),
        ("2026-01-05\n", False),
    ],
)
def test_dates(validator: Draft202012Validator, date: str, valid: bool) -> None:
    for attribute in ("date", "modified"):
        found = errors(validator, rule(**{attribute: date}))
        if valid:
            assert found == []
        else:
            assert found and {e.json_path for e in found} == {f"$.{attribute}"}


@pytest.mark.parametrize(
    "reference",
    [
        "javascript:alert(1)",
        "ftp://example.org/x",
        "https://",
        "https://example.org/a b",
        "example.org",
        "HTTPS://x.y",
    ],
)
def test_bad_references_are_rejected(validator: Draft202012Validator, reference: str) -> None:
    found = errors(validator, rule(references=["https://docs.docker.com/", reference]))
    assert found and {e.json_path for e in found} == {"$.references[1]"}


def test_references_must_be_a_non_empty_list_of_unique_urls(validator: Draft202012Validator) -> None:
    assert [e.validator for e in errors(validator, rule(references=[]))] == ["minItems"]
    twice = ["https://docs.docker.com/", "https://docs.docker.com/"]
    assert [e.validator for e in errors(validator, rule(references=twice))] == ["uniqueItems"]
    assert [e.validator for e in errors(validator, rule(references="https://docs.docker.com/"))] == ["type"]


@pytest.mark.parametrize(
    ("tag", "valid"),
    [
        ("attack.t1611", True),
        ("attack.t1059.004", True),
        ("car.2016-04-005", True),
        ("tlp.amber-strict", True),
        ("stp.3k", True),
        ("attack.T1611", False),
        ("attack", False),
        ("attack t1611", False),
        (".t1611", False),
        ("attack.t1611\n", False),
    ],
)
def test_tag_grammar(validator: Draft202012Validator, tag: str, valid: bool) -> None:
    found = errors(validator, rule(tags=["attack.execution", "attack.t1610", tag]))
    if valid:
        assert found == []
    else:
        assert found and {e.json_path for e in found} == {"$.tags[2]"}


@pytest.mark.parametrize("technique", ["attack.t161", "attack.t16110", "attack.t1611.04", "attack.ta0002"])
def test_malformed_technique_tags_do_not_count(validator: Draft202012Validator, technique: str) -> None:
    found = errors(validator, rule(tags=["attack.execution", technique]))
    assert [subschema(e)["title"] for e in found] == ["ATT&CK technique tag required"]


@pytest.mark.parametrize(
    "tactic",
    [
        "reconnaissance", "resource-development", "initial-access", "execution", "persistence",
        "privilege-escalation", "defense-evasion", "credential-access", "discovery", "lateral-movement",
        "collection", "command-and-control", "exfiltration", "impact",
    ],
)  # fmt: skip
def test_every_attack_tactic_counts(validator: Draft202012Validator, tactic: str) -> None:
    assert errors(validator, rule(tags=[f"attack.{tactic}", "attack.t1610"])) == []


def test_unknown_tactic_does_not_count(validator: Draft202012Validator) -> None:
    found = errors(validator, rule(tags=["attack.lateral_movement", "attack.t1610"]))
    assert [subschema(e)["title"] for e in found] == ["ATT&CK tactic tag required"]


def test_tags_must_be_unique_and_non_empty(validator: Draft202012Validator) -> None:
    found = errors(validator, rule(tags=["attack.execution", "attack.t1610", "attack.t1610"]))
    assert [(e.json_path, e.validator) for e in found] == [("$.tags", "uniqueItems")]
    found = errors(validator, rule(tags=[]))
    assert {e.validator for e in found} == {"minItems", "contains"}


@pytest.mark.parametrize(
    ("field", "value"), [("status", "production"), ("related", [{"id": VALID_RULE["id"], "type": "parent"}])]
)
def test_enumerations(validator: Draft202012Validator, field: str, value: Any) -> None:
    found = errors(validator, rule(**{field: value}))
    assert [e.validator for e in found] == ["enum"]


def test_related_entries(validator: Draft202012Validator) -> None:
    found = errors(validator, rule(related=[{"id": "not-a-uuid", "type": "derived", "note": "x"}]))
    assert sorted((e.json_path, e.validator) for e in found) == [
        ("$.related[0]", "additionalProperties"),
        ("$.related[0].id", "pattern"),
    ]


@pytest.mark.parametrize(
    ("logsource", "valid"),
    [
        ({"category": "process_creation", "product": "linux"}, True),
        ({"product": "windows", "service": "firewall-as"}, True),  # spec: '-' and '.' are allowed
        ({"product": "onelogin", "service": "onelogin.events"}, True),
        ({"service": "auditd"}, True),
        ({"definition": "only a definition"}, False),
        ({"category": "Process Creation"}, False),
        ({"product": "Linux"}, False),
        ({"product": "linux", "vendor": "x"}, False),
        ({"product": ""}, False),
        ("linux", False),
    ],
)
def test_logsource(validator: Draft202012Validator, logsource: Any, valid: bool) -> None:
    found = errors(validator, rule(logsource=logsource))
    if valid:
        assert found == []
    else:
        assert found and all(e.json_path.startswith("$.logsource") for e in found)


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"description": "Too short."}, "$.description"),
        ({"description": "x" * 2001}, "$.description"),
        ({"author": ""}, "$.author"),
        ({"author": "   "}, "$.author"),
        ({"falsepositives": []}, "$.falsepositives"),
        ({"falsepositives": [""]}, "$.falsepositives[0]"),
        ({"falsepositives": "Unknown"}, "$.falsepositives"),
        ({"fields": ["Actor.ID", 3]}, "$.fields[1]"),
        ({"scope": "server"}, "$.scope"),
        ({"name": "Docker-Socket"}, "$.name"),
        ({"taxonomy": ["sigma"]}, "$.taxonomy"),
        ({"license": 1}, "$.license"),
    ],
)
def test_other_attribute_constraints(
    validator: Draft202012Validator, changes: dict[str, Any], path: str
) -> None:
    found = errors(validator, rule(**changes))
    assert found and {e.json_path for e in found} == {path}, [(e.json_path, e.message) for e in found]


def test_description_may_span_lines(validator: Draft202012Validator) -> None:
    assert errors(validator, rule(description="Detects one thing.\nAnd explains another.\n")) == []


def test_leaf_errors_of_a_bad_rule_all_carry_descriptions(validator: Draft202012Validator) -> None:
    bad = rule(level="severe", tags=["attack.execution"], date="2026-13-01")
    bad["detection"]["selection"]["CommandLine|contians"] = "x"
    found = list(leaf_errors(errors(validator, bad)))
    assert len(found) == 4
    for error in found:
        assert isinstance(error.schema, dict) and error.schema.get("description"), error.message
