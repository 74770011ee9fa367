"""Kibana detection rules: every NDJSON line valid under the pack's schema, every query parsed by its
engine, ATT&CK, risk and ids as Kibana expects them, and the (rule, language) pairs a target cannot run
skipped with their reason."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from detpack.content.pack import load_pack
from detpack.correlation import building_blocks
from detpack.ingest.fields import load_field_types
from detpack.publish.kibana import (
    RULE_ID_NAMESPACE,
    check_query,
    load_schema,
    lucene_fields,
    query_fields,
    schema_problems,
)
from tests.conftest import REPO_ROOT, PackCopy

NDJSON = "dist/kibana/detpack-rules.ndjson"


def lines(pack: PackCopy) -> list[dict[str, Any]]:
    text = pack.read(NDJSON)
    assert text.endswith("\n") and "\n\n" not in text
    return [json.loads(line) for line in text.splitlines()]


def documented_unsupported(pack: PackCopy) -> dict[tuple[str, str], str]:
    """(rule, language) -> reason, for the targets tests/engine-differences.yml says cannot run a rule."""
    entries = yaml.safe_load(pack.read("tests/engine-differences.yml"))["differences"]
    return {(e["rule"], e["engine"]): " ".join(e["reason"].split()) for e in entries if e["event"] == "all"}


def test_one_line_per_rule_and_shipped_language(built_pack: PackCopy) -> None:
    rules = lines(built_pack)
    pack = load_pack(built_pack.root)
    by_key = {(r["name"], r["language"]) for r in rules}
    assert len(by_key) == len(rules)
    # Every rule in Lucene, EQL and ES|QL, except what tests/engine-differences.yml says a target cannot
    # run at all (event: all), and except building blocks, which only their correlation ships.
    blocks = building_blocks(pack)
    unsupported = documented_unsupported(built_pack)
    expected = {
        (rule.name, language)
        for rule in pack.rules
        if rule.name not in blocks
        for language in ("lucene", "eql", "esql")
        if (rule.name, language) not in unsupported
    }
    by_title = {rule.title: rule.name for rule in pack.rules}
    assert {(by_title[r["name"].rsplit(" (", 1)[0]], r["language"]) for r in rules} == expected
    assert ("docker_events_security_agent_container_paused_or_killed", "esql") in unsupported
    skipped_title = pack.rule_by_name("docker_events_security_agent_container_paused_or_killed")
    assert skipped_title is not None
    assert (f"{skipped_title.title} (ES|QL)", "esql") not in by_key
    manifest = json.loads(built_pack.read("dist/manifest.json"))
    skipped = manifest["kibana"]["skipped"]
    reason = skipped["docker_events_security_agent_container_paused_or_killed"]["esql"]
    assert "flattened" in reason
    assert {(name, lang) for name, langs in skipped.items() for lang in langs} == {
        (rule, language) for rule, language in unsupported if language != "spl" and rule not in blocks
    }
    for (rule, language), why in unsupported.items():
        if language != "spl":
            assert skipped[rule][language] == why


def test_every_line_passes_the_schema_and_its_query_parses(built_pack: PackCopy) -> None:
    schema = load_schema(built_pack.root)
    pack = load_pack(built_pack.root)
    by_title = {r.title: r for r in pack.rules}
    for rule in lines(built_pack):
        assert schema_problems(schema, rule) == [], rule["name"]
        source = by_title[rule["name"].rsplit(" (", 1)[0]]
        ds = pack.datasource_of(source)
        assert ds is not None
        types = load_field_types(ds.name)
        assert check_query(rule["language"], rule["query"], types, ds.elastic_index) == []
        assert [f["name"] for f in rule["required_fields"]] == query_fields(rule["language"], rule["query"])


def test_ids_severity_risk_and_index(built_pack: PackCopy) -> None:
    pack = load_pack(built_pack.root)
    by_title = {r.title: r for r in pack.rules}
    risk = {"low": 21, "medium": 47, "high": 73, "critical": 99}
    lock = json.loads(built_pack.read("versions.lock.json"))["rules"]
    versions = {entry["name"]: entry["version"] for entry in lock.values()}
    for rule in lines(built_pack):
        source = by_title[rule["name"].rsplit(" (", 1)[0]]
        ds = pack.datasource_of(source)
        assert ds is not None
        assert rule["rule_id"] == str(uuid.uuid5(RULE_ID_NAMESPACE, f"{source.rule_id}/{rule['language']}"))
        assert rule["severity"] == source.data["level"]
        assert rule["risk_score"] == risk[source.data["level"]]
        assert rule["enabled"] is False
        assert rule["version"] == versions[source.name]
        assert rule["related_integrations"][0]["package"] == ds.elastic_integration
        assert rule["false_positives"] == source.data["falsepositives"]
        if rule["type"] == "esql":
            assert "index" not in rule
            assert rule["query"].startswith(f"from {ds.elastic_index} ")
        else:
            assert rule["index"] == [ds.elastic_index]
        assert {"query": "lucene", "eql": "eql", "esql": "esql"}[rule["type"]] == rule["language"]
    ids = [r["rule_id"] for r in lines(built_pack)]
    assert len(set(ids)) == len(ids)


def test_threat_nests_subtechniques_under_their_parent(built_pack: PackCopy) -> None:
    rule = next(
        r
        for r in lines(built_pack)
        if r["name"] == "Potential Download And Execute Via Shell In Pod Exec (EQL)"
    )
    # The rule's tags: execution + T1609 + T1059.004; command-and-control + T1105 (ATT&CK v18.1).
    assert rule["threat"] == [
        {
            "framework": "MITRE ATT&CK",
            "tactic": {
                "id": "TA0002",
                "name": "Execution",
                "reference": "https://attack.mitre.org/tactics/TA0002/",
            },
            "technique": [
                {
                    "id": "T1609",
                    "name": "Container Administration Command",
                    "reference": "https://attack.mitre.org/techniques/T1609/",
                },
                {
                    "id": "T1059",
                    "name": "Command and Scripting Interpreter",
                    "reference": "https://attack.mitre.org/techniques/T1059/",
                    "subtechnique": [
                        {
                            "id": "T1059.004",
                            "name": "Unix Shell",
                            "reference": "https://attack.mitre.org/techniques/T1059/004/",
                        }
                    ],
                },
            ],
        },
        {
            "framework": "MITRE ATT&CK",
            "tactic": {
                "id": "TA0011",
                "name": "Command and Control",
                "reference": "https://attack.mitre.org/tactics/TA0011/",
            },
            "technique": [
                {
                    "id": "T1105",
                    "name": "Ingress Tool Transfer",
                    "reference": "https://attack.mitre.org/techniques/T1105/",
                }
            ],
        },
    ]
    assert "## Triage and response (DP-ADS-0001)" in rule["note"]


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda r: r.update(unknown_key=1), "Additional properties"),
        (lambda r: r.update(risk_score=101), "101"),
        (lambda r: r.update(severity="informational"), "informational"),
        (
            lambda r: r.update(index=["logs-*"]),
            "should not be valid",
        ),  # an ES|QL rule names its index in FROM
        (lambda r: r.update(language="lucene"), "'esql' was expected"),
        (lambda r: r.pop("rule_id"), "'rule_id' is a required property"),
        (lambda r: r["threat"][0]["tactic"].update(id="execution"), "TA"),
        (lambda r: r.update(interval="5 minutes"), "5 minutes"),
    ],
)
def test_schema_rejects_what_kibana_would_refuse(built_pack: PackCopy, change: Any, complaint: str) -> None:
    schema = load_schema(built_pack.root)
    rule = copy.deepcopy(next(r for r in lines(built_pack) if r["type"] == "esql"))
    assert schema_problems(schema, rule) == []
    change(rule)
    problems = schema_problems(schema, rule)
    assert problems and any(complaint in p for p in problems), problems


def test_lucene_field_names_are_unescaped_and_values_ignored() -> None:
    query = (
        r"(kubernetes.audit.verb:(create OR get) AND "
        r"kubernetes.audit.annotations.authorization_k8s_io\/decision:allow)"
        r' AND NOT docker.event.action:exec_create\:\ * AND -process.name:"a:b" AND _exists_:host.name'
    )
    assert lucene_fields(query) == [
        "kubernetes.audit.verb",
        "kubernetes.audit.annotations.authorization_k8s_io/decision",
        "docker.event.action",
        "process.name",
        "host.name",
    ]


def test_a_query_on_an_unmapped_field_is_reported() -> None:
    types = load_field_types("linux_process_creation")
    index = "logs-sysmon_linux.log-*"
    assert check_query("eql", 'any where process.no_such_field == "x"', types, index) == [
        "the eql query names 'process.no_such_field', which the data stream does not map"
    ]
    assert check_query("lucene", "process.executable:(", types, index)[0].startswith(
        "the lucene query does not parse"
    )
    problems = check_query("esql", 'from logs-other-* | where process.executable == "x"', types, index)
    assert problems == ["the query reads 'logs-other-*', the data source lives in 'logs-sysmon_linux.log-*'"]


def test_schema_file_is_the_packs_own(built_pack: PackCopy) -> None:
    schema = json.loads((REPO_ROOT / "schemas" / "kibana-rule.schema.json").read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert (
        Path(built_pack.path("schemas/kibana-rule.schema.json")).read_bytes()
        == (REPO_ROOT / "schemas" / "kibana-rule.schema.json").read_bytes()
    )
