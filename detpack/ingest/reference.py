"""The reference (Sigma) view of an event: flat field names, as the pack's rules are written.

JSON events are flattened by joining keys with dots. A list anywhere on the path makes the field
multi-valued: `requestObject.spec.containers.securityContext.privileged` holds one value per container.
That is how Splunk's JSON extraction and Elasticsearch's object mapping both see arrays, so a condition
on such a field matches when any of its values does.
"""

from __future__ import annotations

import json
from typing import Any

Scalar = str | int | float | bool | None
View = dict[str, Any]  # field -> Scalar, or list[Scalar] for multi-valued fields


def flatten(event: dict[str, Any], wanted: frozenset[str] | None = None) -> View:
    """All fields of the event, or only those in `wanted` (subtrees off their paths are not walked)."""
    prefixes = None if wanted is None else _prefixes(wanted)
    bags: dict[str, list[Scalar]] = {}
    multi: set[str] = set()
    empty: set[str] = set()

    def walk(value: Any, path: str, in_list: bool) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                if prefixes is None or child in prefixes:
                    walk(item, child, in_list)
        elif isinstance(value, list):
            if not value and path:
                empty.add(path)
            for item in value:
                walk(item, path, True)
        else:
            if in_list:
                multi.add(path)
            bags.setdefault(path, []).append(value)

    walk(event, "", False)
    view: View = {}
    for path, values in bags.items():
        view[path] = values if path in multi else values[0]
    for path in empty - bags.keys():  # an empty list: the field exists with no values
        view[path] = []
    return view


def _prefixes(paths: frozenset[str]) -> frozenset[str]:
    """Every dotted prefix of every path: 'a.b.c' -> a, a.b, a.b.c."""
    result: set[str] = set()
    for path in paths:
        parts = path.split(".")
        result.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return frozenset(result)


def sysmon_view(native: dict[str, Any]) -> View:
    """Sysmon for Linux: EventData names are the Sigma fields; System/EventID and Computer are added."""
    view: View = {
        "EventID": str(native["System"]["EventID"]),
        "Computer": native["System"].get("Computer", ""),
    }
    view.update(native["EventData"])
    return view


AKS_AUDIT_CATEGORIES = frozenset({"kube-audit", "kube-audit-admin"})


def kubernetes_audit_event(native: dict[str, Any]) -> dict[str, Any]:
    """The API server's audit event inside a managed-cluster envelope; any other event unchanged.

    AKS exports the control plane's audit log through Azure Monitor diagnostic settings (categories
    `kube-audit` and `kube-audit-admin`) as resource-log records: `category`, `operationName`,
    `resourceId`, `time` and `properties` = {`log`: the audit.k8s.io/v1 Event, `pod`, `containerID`,
    `stream`}. `properties.log` is the event as a JSON string (Event Hub and storage exports) or, in some
    collectors, already an object. The rules are written for the audit event, so the reference view is the
    inner event; the envelope's own fields are not rule fields (datasources/kubernetes_audit.yml).
    A `properties.log` that is not a JSON object holding an audit Event leaves the record as it is, so no
    kubernetes_audit rule can match it (Elastic's pipeline marks a `log` that is not JSON `pipeline_error`).
    GKE's Cloud Audit Log form (`protoPayload`) is not unwrapped: see docs/decisions.md.
    """
    if native.get("category") not in AKS_AUDIT_CATEGORIES:
        return native
    properties = native.get("properties")
    log = properties.get("log") if isinstance(properties, dict) else None
    if isinstance(log, str):
        try:
            log = json.loads(log)
        except (json.JSONDecodeError, RecursionError):
            return native
    if isinstance(log, dict) and log.get("kind") == "Event":
        return log
    return native


def reference_view(fixture_format: str, native: Any, wanted: frozenset[str] | None = None) -> View:
    if fixture_format == "sysmon_linux_syslog":
        return sysmon_view(native)
    if fixture_format == "auditd_log":  # records merged into one view (detpack.ingest.auditd)
        from detpack.ingest.auditd import auditd_reference_view

        return auditd_reference_view(native)
    if fixture_format == "json_lines" and isinstance(native, dict):
        native = kubernetes_audit_event(native)  # only an AKS kube-audit record changes
    return flatten(native, wanted)
