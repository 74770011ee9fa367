"""The data streams' field lists (detpack/data/fields/), their regeneration, and the pack's ECS pipelines.

Every field a converted rule names must be mapped by its data source's Elastic data stream: on
kubernetes.audit_logs (`dynamic: false`) an undeclared field is stored but never indexed, so a query on it
can never match.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from sigma.backends.elasticsearch.elasticsearch_lucene import LuceneBackend
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaDetection, SigmaRule

from detpack.content.pack import Pack, load_pack
from detpack.convert import TARGETS, pipeline_for
from detpack.correlation import resolve_correlations
from detpack.ingest.fields import (
    FieldListError,
    document_fields,
    field_known,
    field_type,
    load_field_list,
    load_field_types,
)
from detpack.offline import configure_offline

REPO_ROOT = Path(__file__).resolve().parent.parent
FIELDS_DIR = REPO_ROOT / "detpack" / "data" / "fields"
SHARED = REPO_ROOT.parent / "shared"
DATASOURCES = ("kubernetes_audit", "linux_process_creation", "docker_events")

# KNOWN GAPS: fields the pack's rules name, through the ECS pipelines (pipelines/ecs/), that the Elastic data
# stream does not map. kubernetes.audit_logs maps with `dynamic: false`: undeclared paths are kept in _source
# but never indexed. Conditions on pod templates, init/ephemeral containers and the request's host namespaces
# are dropped by pipelines/ecs/kubernetes_audit.yml (an OR keeps an indexed alternative). The rules below need
# Pod-level fields the integration does not declare at all (container command/args, capabilities, seccomp/
# AppArmor/SELinux profiles, SubjectAccessReview attributes) and are shipped with the real names by decision
# (docs/decisions.md, "Kubernetes paths the Elastic integration does not index"): Elasticsearch rejects those
# queries until the SOC maps the fields in logs-kubernetes.audit_logs@custom, and tests/engine-differences.yml
# records each such rule as `event: all` for lucene, eql and esql (test_known_gaps_are_documented_differences
# checks it).
# The test fails when a new gap appears, and when one of these is fixed (then delete the entry).
_K8S = "kubernetes.audit.requestObject.spec."
KNOWN_GAPS: frozenset[tuple[str, str]] = frozenset(
    {
        ("kubernetes_audit_dangerous_capability_added", f"{_K8S}containers.securityContext.capabilities.add"),
        ("kubernetes_audit_job_or_daemonset_fetch_and_run", f"{_K8S}containers.args"),
        ("kubernetes_audit_job_or_daemonset_fetch_and_run", f"{_K8S}containers.command"),
        ("kubernetes_audit_kubelet_direct_api_access", f"{_K8S}resourceAttributes.resource"),
        ("kubernetes_audit_kubelet_direct_api_access", f"{_K8S}resourceAttributes.subresource"),
        ("kubernetes_audit_kubelet_direct_api_access", f"{_K8S}user"),
        *(
            ("kubernetes_audit_security_profile_unconfined", f"{_K8S}{where}securityContext.{profile}.type")
            for where in ("", "containers.")
            for profile in ("appArmorProfile", "seLinuxOptions", "seccompProfile")
        ),
    }
)


def _load_script() -> ModuleType:
    path = REPO_ROOT / "scripts" / "extract_fields.py"
    spec = importlib.util.spec_from_file_location("detpack_extract_fields", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through the module
    spec.loader.exec_module(module)
    return module


@cache
def _pack() -> Pack:
    return load_pack(REPO_ROOT)


# --- regeneration ---------------------------------------------------------------------------------------


def test_regeneration_is_byte_identical() -> None:
    if not (SHARED / "reference-events" / "fields").is_dir():
        pytest.skip("../shared is not present (only on the development machines): cannot regenerate")
    outputs = _load_script().render_all(SHARED)
    assert sorted(outputs) == sorted(path.name for path in FIELDS_DIR.iterdir())
    for name, text in outputs.items():
        assert (FIELDS_DIR / name).read_bytes() == text.encode("utf-8"), (
            f"detpack/data/fields/{name} is stale: rerun python scripts/extract_fields.py"
        )


def test_files_are_deterministic_json() -> None:
    for datasource in DATASOURCES:
        text = (FIELDS_DIR / f"{datasource}.json").read_text(encoding="utf-8")
        data = json.loads(text)
        assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert data["datasource"] == datasource
        sources = data["provenance"]["sources"]
        assert {"Elastic License 2.0" in s["licence"] for s in sources} == {True, False}
        assert all(len(s["sha256"]) == 64 for s in sources)
    assert "Apache-2.0" in (FIELDS_DIR / "PROVENANCE.md").read_text(encoding="utf-8")


# --- contents -------------------------------------------------------------------------------------------


def test_data_streams() -> None:
    expected = {
        "kubernetes_audit": ("kubernetes", "kubernetes.audit_logs", False),
        "linux_process_creation": ("sysmon_linux", "sysmon_linux.log", True),
        "docker_events": ("docker", "docker.event", True),
    }
    for datasource, (integration, data_stream, dynamic) in expected.items():
        field_list = load_field_list(datasource)
        assert (field_list.integration, field_list.data_stream, field_list.dynamic) == (
            integration,
            data_stream,
            dynamic,
        )
        with open(REPO_ROOT / "datasources" / f"{datasource}.yml", encoding="utf-8") as handle:
            elastic = yaml.safe_load(handle)["elastic"]
        assert (elastic["integration"], elastic["data_stream"]) == (integration, data_stream)


@pytest.mark.parametrize(
    ("datasource", "field", "es_type"),
    [
        ("kubernetes_audit", "kubernetes.audit.verb", "keyword"),
        ("kubernetes_audit", "kubernetes.audit.responseStatus.code", "integer"),
        (
            "kubernetes_audit",
            "kubernetes.audit.requestObject.spec.containers.securityContext.privileged",
            "boolean",
        ),
        ("kubernetes_audit", "kubernetes.audit.annotations.*", "object(text)"),
        ("kubernetes_audit", "source.ip", "ip"),
        ("kubernetes_audit", "client.ip", "ip"),
        ("kubernetes_audit", "orchestrator.resource.type", "keyword"),
        ("kubernetes_audit", "user.name", "keyword"),
        ("kubernetes_audit", "user.name.text", "match_only_text"),  # ECS multi-field
        ("kubernetes_audit", "host.os.name.text", "text"),  # multi_field:text row
        ("kubernetes_audit", "@timestamp", "date"),
        ("kubernetes_audit", "data_stream.dataset", "constant_keyword"),
        ("linux_process_creation", "process.command_line", "wildcard"),  # the ECS type
        ("linux_process_creation", "process.command_line.text", "match_only_text"),
        ("linux_process_creation", "process.executable", "keyword"),
        ("linux_process_creation", "process.pid", "long"),
        ("linux_process_creation", "process.args", "keyword"),
        ("linux_process_creation", "event.code", "keyword"),
        ("linux_process_creation", "event.module", "constant_keyword"),
        ("linux_process_creation", "winlog.event_data", "object(keyword)"),
        ("linux_process_creation", "host.name", "keyword"),  # added: set by decode_xml_wineventlog
        ("linux_process_creation", "message", "match_only_text"),
        ("docker_events", "docker.event.actor.attributes", "flattened"),
        ("docker_events", "docker.event.action", "keyword"),
        ("docker_events", "event.module", "constant_keyword"),
    ],
)
def test_known_fields_and_types(datasource: str, field: str, es_type: str) -> None:
    assert load_field_types(datasource)[field] == es_type


def test_added_and_not_added_are_explained() -> None:
    kubernetes = json.loads((FIELDS_DIR / "kubernetes_audit.json").read_text(encoding="utf-8"))
    assert kubernetes["added"] == {}
    assert "event.module" not in kubernetes["fields"]  # not declared, and dynamic: false
    assert "dynamic: false" in kubernetes["not_added"]["event.module"]
    sysmon = json.loads((FIELDS_DIR / "linux_process_creation.json").read_text(encoding="utf-8"))
    assert set(sysmon["added"]) == {"host.name", "host.hostname", "event.original"}
    assert load_field_list("kubernetes_audit").not_indexed == {"event.original"}


def test_field_known_understands_open_fields() -> None:
    kubernetes = load_field_types("kubernetes_audit")
    assert field_known(kubernetes, "kubernetes.audit.annotations.authorization_k8s_io/decision")
    assert field_known(kubernetes, "kubernetes.audit.annotations.pod-security_kubernetes_io/enforce")
    assert field_type(kubernetes, "kubernetes.audit.user.extra.scopes") == "object(keyword)"
    assert field_known(kubernetes, "kubernetes.audit.verb")
    assert not field_known(kubernetes, "kubernetes.audit.requestObject.spec.template.spec.containers.image")
    assert not field_known(kubernetes, "kubernetes.audit")  # an object, not a field
    assert not field_known(kubernetes, "kubernetes.audit.verb.extra")  # below a leaf
    docker = load_field_types("docker_events")
    assert field_known(docker, "docker.event.actor.attributes.image")
    assert field_known(docker, "docker.event.actor.attributes.com_docker_compose_project")
    assert field_type(docker, "docker.event.actor.attributes.signal") == "flattened"
    assert field_known(docker, "docker.container.labels.app")
    assert not field_known(docker, "docker.event.actor.name")
    sysmon = load_field_types("linux_process_creation")
    assert field_known(sysmon, "winlog.event_data.ParentUser")  # object(keyword) named without ".*"


def test_loader() -> None:
    types = load_field_types("docker_events")
    assert load_field_types("docker_events") is types  # cached
    with pytest.raises(TypeError):
        types["x"] = "keyword"  # type: ignore[index]
    with pytest.raises(FieldListError, match="no field list"):
        load_field_list("no_such_source")


def test_document_fields() -> None:
    doc = {"a": {"b": [{"c": 1}, {"c": 2, "d": []}], "e": {}}, "f.g": "x", "h": None}
    assert list(document_fields(doc)) == ["a.b.c", "f.g", "h"]


# --- the pack's ECS pipelines name only fields the data streams map --------------------------------------


def _detection_fields(rule: SigmaRule) -> Iterator[str]:
    def walk(detection: SigmaDetection) -> Iterator[str]:
        for item in detection.detection_items:
            if isinstance(item, SigmaDetection):
                yield from walk(item)
            elif item.field is not None:
                yield str(item.field)

    for detection in rule.detection.detections.values():
        yield from walk(detection)


def _correlation_fields(collection: SigmaCollection, pipeline: ProcessingPipeline) -> list[str]:
    """The fields a correlation rule (the collection's last rule, its base rules before it) names itself,
    its group-by fields and value_count's counted field, after the pipeline. The base rules' detection
    fields are not included: they are checked as rules of their own."""
    correlation = collection.rules[-1]
    assert isinstance(correlation, SigmaCorrelationRule), correlation
    copy.deepcopy(pipeline).apply(correlation)  # maps group-by and condition fields in place
    condition = correlation.condition
    # An extended (boolean-expression) condition names rules, not a field; none of the pack's has one.
    assert isinstance(condition, SigmaCorrelationCondition), condition
    fields = list(correlation.group_by or [])
    if condition.fieldref:
        fields.append(str(condition.fieldref))
    return fields


def _rule_fields() -> Iterator[tuple[str, str, str]]:
    """(rule, data source, field) for every field of every rule after the pack's ECS pipeline. A correlation
    rule has no logsource and no detection: its fields are its group-by (and counted) fields, checked against
    the data source of its base rules, whose own fields are checked as rules of their own."""
    configure_offline()  # pySigma's ATT&CK validators, which resolve_correlations runs, read the shipped data
    pack = _pack()
    pipeline = pipeline_for(pack, TARGETS["lucene"])
    correlations, findings = resolve_correlations(pack)
    assert not findings, "\n".join(str(f) for f in findings)
    for rule in pack.rules:
        datasource = pack.datasource_of(rule)
        assert datasource is not None, rule.name
        if rule.is_correlation:
            assert rule.name in correlations, rule.name
            assert correlations[rule.name].datasource.name == datasource.name, rule.name
            fields = _correlation_fields(correlations[rule.name].collection(), pipeline)
            assert fields, f"{rule.name}: a correlation without group-by fields"
        else:
            sigma_rule = SigmaRule.from_dict(rule.data)
            LuceneBackend(processing_pipeline=pipeline).convert_rule(
                sigma_rule
            )  # applies the pipeline in place
            fields = list(_detection_fields(sigma_rule))
        for field in sorted(set(fields)):
            yield rule.name, datasource.name, field


def test_correlation_fields_are_mapped_by_the_ecs_pipeline() -> None:
    # The ECS pipeline's mapping of Zeek conn.log (pipelines/ecs/zeek_conn.yml, as Elastic's zeek.connection
    # ingest pipeline moves them): id.orig_h -> source.ip, id.resp_h -> destination.ip, id.resp_p ->
    # destination.port. A group-by field the pipeline does not map keeps its name, which the data stream
    # then lacks: that is what test_every_field_the_ecs_pipelines_map_to_exists reports.
    pack = _pack()
    base: dict[str, Any] = {
        "title": "base",
        "name": "base_conn",
        "logsource": {"product": "zeek", "service": "conn"},
        "detection": {"selection": {"proto": "tcp"}, "condition": "selection"},
    }
    correlation: dict[str, Any] = {
        "title": "corr",
        "correlation": {
            "type": "value_count",
            "rules": ["base_conn"],
            "group-by": ["id.orig_h", "id.resp_h", "no_such_conn_field"],
            "timespan": "1h",
            "condition": {"gte": 3, "field": "id.resp_p"},
        },
    }
    collection = SigmaCollection.from_dicts([base, correlation])
    collection.resolve_rule_references()
    fields = _correlation_fields(collection, pipeline_for(pack, TARGETS["lucene"]))
    assert fields == ["source.ip", "destination.ip", "no_such_conn_field", "destination.port"]
    types = load_field_types("zeek_conn")
    assert [f for f in fields if not field_known(types, f)] == ["no_such_conn_field"]


def test_every_field_the_ecs_pipelines_map_to_exists() -> None:
    missing: set[tuple[str, str]] = set()
    report: list[str] = []
    checked = 0
    for rule, datasource, field in _rule_fields():
        checked += 1
        if not field_known(load_field_types(datasource), field):
            missing.add((rule, field))
            if (rule, field) not in KNOWN_GAPS:
                report.append(f"rule {rule}: {field} is not mapped by the {datasource} data stream")
    assert checked > 0
    assert not report, "\n".join(report)
    fixed = sorted(KNOWN_GAPS - missing)
    assert not fixed, f"no longer gaps, delete them from KNOWN_GAPS: {fixed}"


def test_known_gaps_are_documented_differences() -> None:
    # A rule that names a field its data stream does not map cannot run in Elastic at all: every Elastic
    # engine must be recorded as `event: all` for it in tests/engine-differences.yml, with the reason.
    differences = yaml.safe_load((REPO_ROOT / "tests" / "engine-differences.yml").read_text(encoding="utf-8"))
    unsupported = {(d["rule"], d["engine"]) for d in differences["differences"] if d["event"] == "all"}
    for rule in sorted({rule for rule, _ in KNOWN_GAPS}):
        missing = [engine for engine in ("lucene", "eql", "esql") if (rule, engine) not in unsupported]
        assert not missing, (
            f"{rule} names unmapped fields but engine-differences.yml lacks event: all for {missing}"
        )


def test_ecs_pipeline_mapping_targets_exist() -> None:
    """Every target of the ECS pipelines' field mappings (not only those the rules use today)."""
    problems: list[str] = []
    for path in sorted((REPO_ROOT / "pipelines" / "ecs").glob("*.yml")):
        datasource = path.stem
        types = load_field_types(datasource)
        pipeline = yaml.safe_load(path.read_text(encoding="utf-8"))
        for transformation in pipeline["transformations"]:
            mapping = transformation.get("mapping") or {}
            for source, targets in mapping.items():
                for target in targets if isinstance(targets, list) else [targets]:
                    probe = f"{target}x" if transformation["type"] == "field_name_prefix_mapping" else target
                    if not field_known(types, probe):
                        problems.append(f"{path.name}: {source} -> {target}")
            if transformation["type"] == "add_condition":
                for condition in transformation["conditions"]:
                    if not field_known(types, condition):
                        problems.append(f"{path.name}: condition on {condition}")
    assert not problems, "\n".join(problems)
