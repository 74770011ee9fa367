"""Managed-cluster forms of the Kubernetes audit event in each view (docs/decisions.md).

- AKS diagnostic records (`category` kube-audit / kube-audit-admin, the audit event as a JSON string or
  an object in `properties.log`): the reference view is the inner audit event (detpack/ingest/reference.py,
  `kubernetes_audit_event`); Splunk sees the record itself, its audit event one string field, under the
  Microsoft Cloud Services add-on's sourcetype (detpack/ingest/splunk.py, rules A1-A2); Elastic's pipeline
  unwraps it (checked against Elastic's own test vector in tests/test_ingest_ecs.py).
- GKE Cloud Audit Log entries (`protoPayload`) are not mapped onto audit event fields in any view; Splunk
  indexes them under the Google Cloud Platform add-on's sourcetypes (detpack/ingest/splunk.py, rule A3).

Expected values are written from the documented formats and, for Elastic's vector, from Elastic's expected
document (tests/data/elastic/kubernetes.audit_logs/test-kube-audit.log-expected.json), not from the code.
"""

from __future__ import annotations

import json
from typing import Any

from detpack.content.datasources import DataSource, load_datasources
from detpack.engines.spl import SplQuery
from detpack.ingest.ecs import ecs_document
from detpack.ingest.native import parse_json_line
from detpack.ingest.reference import kubernetes_audit_event, reference_view
from detpack.ingest.splunk import AKS_SOURCETYPE, splunk_event
from tests.conftest import REPO_ROOT

ELASTIC = REPO_ROOT / "tests" / "data" / "elastic" / "kubernetes.audit_logs"

AUDIT_EVENT: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "0b6f2c3e-8a41-4d7e-9f12-3c5a7e9b1d24",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/prod/events",
    "verb": "deletecollection",
    "user": {"username": "alex.kim@example.com", "groups": ["6f1c2b7e", "system:authenticated"]},
    "sourceIPs": ["203.0.113.77"],
    "userAgent": "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46",
    "objectRef": {"resource": "events", "namespace": "prod", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 200},
    "requestReceivedTimestamp": "2026-11-21T01:33:58.019774Z",
    "stageTimestamp": "2026-11-21T01:33:58.170562Z",
    "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
}


def aks_record(category: str, log: Any) -> dict[str, Any]:
    return {
        "category": category,
        "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
        "properties": {
            "log": log,
            "containerID": "a64cba7f",
            "stream": "stdout",
            "pod": "kube-apiserver-7c9d8f6b5-q2xkm",
        },
        "resourceId": "/SUBSCRIPTIONS/3F2B9C1D/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE"
        "/MANAGEDCLUSTERS/AKS",
        "serviceBuild": "na",
        "time": "2026-11-21T01:33:58.170694201Z",
    }


def kubernetes_audit() -> DataSource:
    return load_datasources(REPO_ROOT)["kubernetes_audit"]


# --- reference view -------------------------------------------------------------------------------


def test_aks_record_with_string_log_is_the_inner_event() -> None:
    record = aks_record("kube-audit-admin", json.dumps(AUDIT_EVENT))
    view = reference_view("json_lines", record)
    assert view["verb"] == "deletecollection"
    assert view["objectRef.resource"] == "events"
    assert view["annotations.authorization.k8s.io/decision"] == "allow"
    assert view["sourceIPs"] == ["203.0.113.77"]
    assert view["responseStatus.code"] == 200
    # the envelope's own fields are gone: the view is the audit event alone
    assert "category" not in view
    assert "properties.log" not in view
    assert "properties.pod" not in view


def test_aks_record_with_object_log_is_unwrapped_too() -> None:
    view = reference_view("json_lines", aks_record("kube-audit", dict(AUDIT_EVENT)))
    assert view["verb"] == "deletecollection"
    assert view["user.username"] == "alex.kim@example.com"
    assert "resourceId" not in view


def test_aks_record_equals_the_raw_event_view() -> None:
    wrapped = reference_view("json_lines", aks_record("kube-audit", json.dumps(AUDIT_EVENT)))
    assert wrapped == reference_view("json_lines", dict(AUDIT_EVENT))


def test_aks_record_whose_log_is_not_json_stays_a_record() -> None:
    record = aks_record("kube-audit", '{"kind":"Event","verb":"get"')  # truncated by the exporter
    view = reference_view("json_lines", record)
    assert "verb" not in view
    assert view["category"] == "kube-audit"
    assert view["properties.log"] == '{"kind":"Event","verb":"get"'


def test_aks_record_whose_log_is_not_an_audit_event_stays_a_record() -> None:
    # kube-apiserver's own container log lines share the envelope under another category; a JSON log that is
    # not an audit Event is not unwrapped either
    for record in (
        aks_record("kube-apiserver", json.dumps(AUDIT_EVENT)),
        aks_record("kube-audit", json.dumps({"msg": "started", "level": "info"})),
        aks_record("kube-audit", None),
    ):
        assert kubernetes_audit_event(record) is record


def test_raw_audit_event_and_other_json_are_unchanged() -> None:
    raw = dict(AUDIT_EVENT)
    assert kubernetes_audit_event(raw) is raw
    docker = {"Type": "container", "Action": "start", "Actor": {"ID": "3f1c", "Attributes": {"name": "web"}}}
    assert kubernetes_audit_event(docker) is docker


def test_gke_cloud_audit_entry_is_not_mapped() -> None:
    lines = (ELASTIC / "test-audit.log").read_text(encoding="utf-8").splitlines()
    gke = parse_json_line(next(line for line in lines if line.startswith('{"protoPayload"')))
    view = reference_view("json_lines", gke)
    assert view["protoPayload.methodName"] == "io.k8s.get"
    assert "verb" not in view
    assert "objectRef.resource" not in view


def test_elastic_aks_vector_gives_the_fields_elastic_expects() -> None:
    # Elastic's test vector: properties.log is a JSON string; its expected document has
    # kubernetes.audit.verb "update", user.username "aksService", objectRef.resource "leases"
    line = (ELASTIC / "test-kube-audit.log").read_text(encoding="utf-8").splitlines()[0]
    expected_doc = json.loads((ELASTIC / "test-kube-audit.log-expected.json").read_text(encoding="utf-8"))
    expected = expected_doc["expected"][0]
    view = reference_view("json_lines", parse_json_line(line))
    audit = expected["kubernetes"]["audit"]
    assert view["verb"] == audit["verb"] == "update"
    assert view["user.username"] == audit["user"]["username"] == "aksService"
    assert view["objectRef.resource"] == audit["objectRef"]["resource"] == "leases"
    assert view["objectRef.name"] == "kubelet-serving-csr-approver"


# --- Splunk view ----------------------------------------------------------------------------------


def test_splunk_sees_the_aks_record_not_the_audit_event() -> None:
    record = aks_record("kube-audit-admin", json.dumps(AUDIT_EVENT))
    raw = json.dumps(record)
    view = splunk_event(kubernetes_audit(), record, raw)
    assert view["sourcetype"] == AKS_SOURCETYPE == "mscs:storage:blob:json"
    assert view["category"] == "kube-audit-admin"
    assert view["properties.log"] == json.dumps(AUDIT_EVENT)  # one string field, not parsed
    assert "verb" not in view
    assert "objectRef.resource" not in view


def test_splunk_raw_audit_event_keeps_the_data_source_sourcetype() -> None:
    raw = json.dumps(AUDIT_EVENT)
    view = splunk_event(kubernetes_audit(), dict(AUDIT_EVENT), raw)
    assert view["sourcetype"] == "kube:apiserver:audit"
    assert view["verb"] == "deletecollection"


def test_splunk_search_matches_the_raw_event_but_not_the_aks_record() -> None:
    ds = kubernetes_audit()
    search = SplQuery.parse(
        f"`{ds.splunk_macro}` objectRef.resource=events verb=deletecollection",
        {ds.splunk_macro: ds.splunk_definition},
    )
    record = aks_record("kube-audit-admin", json.dumps(AUDIT_EVENT))
    assert search.matches(splunk_event(ds, dict(AUDIT_EVENT), json.dumps(AUDIT_EVENT)))
    assert not search.matches(splunk_event(ds, record, json.dumps(record)))


def _gke_entry(log_kind: str) -> dict[str, Any]:
    lines = (ELASTIC / "test-audit.log").read_text(encoding="utf-8").splitlines()
    entry = parse_json_line(next(line for line in lines if line.startswith('{"protoPayload"')))
    entry["logName"] = f"projects/elastic-siem/logs/{log_kind}"
    return entry


def test_splunk_indexes_a_gke_entry_under_the_gcp_add_on_sourcetypes() -> None:
    # Splunk Add-on for Google Cloud Platform, default/transforms.conf: [gcp_pubsub_activity_sourcetype]
    # REGEX = \"logName":\s*?"[a-z\-\/0-9]*?cloudaudit\.googleapis\.com%2Factivity" FORMAT =
    # sourcetype::google:gcp:pubsub:audit:admin_activity, and the same for data_access, system_event and
    # policy (-> policy_denied); the Pub/Sub input's own sourcetype is google:gcp:pubsub:message.
    ds = kubernetes_audit()
    expected = {
        "cloudaudit.googleapis.com%2Factivity": "google:gcp:pubsub:audit:admin_activity",
        "cloudaudit.googleapis.com%2Fdata_access": "google:gcp:pubsub:audit:data_access",
        "cloudaudit.googleapis.com%2Fsystem_event": "google:gcp:pubsub:audit:system_event",
        "cloudaudit.googleapis.com%2Fpolicy": "google:gcp:pubsub:audit:policy_denied",
        "events": "google:gcp:pubsub:message",
    }
    for kind, sourcetype in expected.items():
        entry = _gke_entry(kind)
        view = splunk_event(ds, entry, json.dumps(entry))
        assert view["sourcetype"] == sourcetype, kind
        assert view["protoPayload.methodName"] == "io.k8s.get"  # the LogEntry's own fields (A3)
        assert view["protoPayload.authorizationInfo{}.permission"] == ["io.k8s.get"]
        assert "verb" not in view and "objectRef.resource" not in view


def test_splunk_search_does_not_select_a_gke_entry() -> None:
    ds = kubernetes_audit()
    macros = {ds.splunk_macro: ds.splunk_definition}
    entry = _gke_entry("cloudaudit.googleapis.com%2Fdata_access")
    view = splunk_event(ds, entry, json.dumps(entry))
    assert not SplQuery.parse(f"`{ds.splunk_macro}`", macros).matches(view)
    assert SplQuery.parse(
        'sourcetype="google:gcp:pubsub:audit:*" protoPayload.methodName="io.k8s.get"', {}
    ).matches(view)


def test_a_log_name_without_proto_payload_keeps_the_data_source_sourcetype() -> None:
    event = {**AUDIT_EVENT, "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity"}
    view = splunk_event(kubernetes_audit(), event, json.dumps(event))
    assert view["sourcetype"] == "kube:apiserver:audit"


# --- Elastic view ---------------------------------------------------------------------------------


def test_elastic_unwraps_the_aks_record_like_the_reference_view() -> None:
    record = aks_record("kube-audit-admin", json.dumps(AUDIT_EVENT))
    doc = ecs_document("kubernetes_audit", record, original=json.dumps(record))
    audit = doc["kubernetes"]["audit"]
    assert audit["verb"] == "deletecollection"
    assert audit["objectRef"]["resource"] == "events"
    assert audit["aks_metadata"]["category"] == "kube-audit-admin"
    assert doc["@timestamp"] == "2026-11-21T01:33:58.170Z"  # the record's time, not stageTimestamp
