"""Sigma correlation rules end to end: format, validation, conversion, execution in the Sigma reference, the
SPL evaluator and the ES|QL engine, verdicts and the differential check.

The machinery is tested on a small pack of its own (`mini_pack`): the pack's real data sources, schemas and
pipelines, plus three correlation rules over Kubernetes audit events written here (an exec burst, execs into
many namespaces, a pod created and exec'd), their two building blocks, one ADS and one fixture whose
timeline is spelled out in TIMELINE. Every expected verdict below was worked out by hand from that timeline
and the definition in docs/formats.md ("Correlation rules"): the reference uses sliding windows
[t - timespan, t] ending at each base-rule event; Splunk `bin _time` and ES|QL `date_trunc` use windows
aligned to the epoch.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection

from detpack.content.pack import load_pack
from detpack.convert import TARGETS, convert_pack
from detpack.correlation import (
    UNSUPPORTED,
    building_blocks,
    reference_hits,
    reference_table,
    resolve_correlations,
    schedule_period,
    unsupported_reason,
)
from detpack.engines.esql import (
    EsqlQuery,
    EsqlUnknownColumnError,
    EsqlUnsupportedError,
)
from detpack.engines.spl import SplEvent, SplQuery, SplStatsQuery, SplSyntaxError, SplUnsupportedError
from detpack.engines.sqlite import ReferenceTable
from detpack.ingest.splunk import splunk_event
from detpack.ingest.timestamps import parse_timestamp
from detpack.publish.context import correlation_schedule
from detpack.replay import replay
from detpack.validate.pack import validate_pack
from tests.conftest import REPO_ROOT, PackCopy
from tests.helpers import line_of

# 2024-01-01T00:00:00Z is 1704067200 seconds after the epoch (19723 days of 86400 s).
NEW_YEAR_2024 = 1_704_067_200

# --------------------------------------------------------------------------------------------------
# The mini pack
# --------------------------------------------------------------------------------------------------

FIXTURE = "tests/fixtures/kubernetes_audit/exec_bursts.jsonl"
EXPECT = "tests/fixtures/kubernetes_audit/exec_bursts.expect.yml"
RULES = "rules/kubernetes_audit"
BURST = "kubernetes_audit_exec_burst_by_user"
MANY_NS = "kubernetes_audit_exec_many_namespaces"
CREATE_EXEC = "kubernetes_audit_pod_created_then_exec"
EXEC_BLOCK = "kubernetes_audit_pod_exec_request"
CREATE_BLOCK = "kubernetes_audit_pod_created_by_user"
ATTACKER = "system:serviceaccount:dev:ci-deployer"
ALICE = "oidc:alice@example.com"
BOB = "oidc:bob@example.com"

# (line, stageTimestamp, user, verb, namespace, pod, subresource) -- all on 2026-11-17, UTC
TIMELINE: list[tuple[int, str, str, str, str, str, str | None]] = [
    (1, "02:10:30", ATTACKER, "create", "prod", "debug-shell", None),
    (2, "02:11:00", ATTACKER, "get", "prod", "payments-0", "exec"),
    (3, "02:12:00", ALICE, "get", "prod", "payments-0", "exec"),
    (4, "02:12:40", ATTACKER, "get", "prod", "payments-1", "exec"),
    (5, "02:13:20", ATTACKER, "list", "prod", "", None),
    (6, "02:14:50", ATTACKER, "get", "billing", "invoice-0", "exec"),
    (7, "02:19:00", ALICE, "get", "prod", "payments-0", "exec"),
    (8, "02:31:45", ATTACKER, "get", "kube-system", "coredns-5d78c9869d-8xk2p", "exec"),
    (9, "03:00:00", ALICE, "create", "staging", "web-debug", None),
    (10, "03:09:00", ALICE, "get", "staging", "web-debug", "exec"),
    (11, "04:08:00", BOB, "get", "dev", "api-0", "exec"),
    (12, "04:09:30", BOB, "get", "dev", "api-1", "exec"),
    (13, "04:11:00", BOB, "get", "dev", "api-2", "exec"),
]

# Worked out by hand from TIMELINE (see the module docstring):
# - burst (>= 3 execs by one user in 10m): the attacker's 2, 4, 6 (02:11:00-02:14:50) in every engine; Bob's
#   11-13 (04:08:00-04:11:00) only in the reference: they straddle 04:10, so the 10-minute bins
#   [04:00, 04:10) and [04:10, 04:20) hold 2 and 1. Alice has two (3, 7); 5 is a list, not an exec.
# - many namespaces (>= 3 distinct namespaces in 1h): the attacker's prod, prod, billing, kube-system (2, 4,
#   6, 8); Alice has prod and staging only.
# - created then exec'd (both base rules within 5m, by one user): the attacker's create 1 with execs 2, 4,
#   6 (all in [02:10, 02:15)); Alice's create 9 and exec 10 are nine minutes apart.
REFERENCE = {BURST: {2, 4, 6, 11, 12, 13}, MANY_NS: {2, 4, 6, 8}, CREATE_EXEC: {1, 2, 4, 6}}
BINNED = {BURST: {2, 4, 6}, MANY_NS: {2, 4, 6, 8}, CREATE_EXEC: {1, 2, 4, 6}}


def audit_event(line: int, clock: str, user: str, verb: str, ns: str, pod: str, sub: str | None) -> str:
    """One audit.k8s.io/v1 Event at stage ResponseComplete, as the API server's log backend writes it."""
    uri = f"/api/v1/namespaces/{ns}/pods"
    code = 200
    if sub == "exec":
        uri += f"/{pod}/exec?command=sh&container=app&stdin=true&stdout=true&tty=true"
        code = 101
    elif verb == "create":
        uri += "?fieldManager=kubectl-run"
        code = 201
    else:
        uri += "?limit=500"
    object_ref: dict[str, Any] = {"resource": "pods", "namespace": ns, "apiVersion": "v1"}
    if pod:
        object_ref["name"] = pod
    if sub:
        object_ref["subresource"] = sub
    service_account = user.startswith("system:serviceaccount:")
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"8c1d3f52-7a4e-4b19-9d2c-{line:012d}",
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": {
            "username": user,
            "groups": ["system:serviceaccounts", "system:serviceaccounts:dev", "system:authenticated"]
            if service_account
            else ["platform-admins", "system:authenticated"],
        },
        "sourceIPs": ["10.42.3.17" if service_account else "203.0.113.45"],
        "userAgent": "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350",
        "objectRef": object_ref,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": f"2026-11-17T{clock}.012345Z",
        "stageTimestamp": f"2026-11-17T{clock}.104117Z",
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }
    return json.dumps(event, separators=(",", ":"))


BASE_META = """status: experimental
references:
    - https://kubernetes.io/docs/reference/config-api/apiserver-audit.v1/
author: detpack tests
date: 2026-11-23
"""

FILES: dict[str, str] = {
    f"{RULES}/{EXEC_BLOCK}.yml": f"""title: Pod Exec Request Allowed By The API Server
id: 0b7d7c7e-1111-4a1a-9a1a-000000000001
name: {EXEC_BLOCK}
{BASE_META}description: Detects a completed exec into a pod; a building block of the exec correlations.
tags:
    - attack.execution
    - attack.t1609
logsource:
    product: kubernetes
    service: audit
detection:
    selection:
        objectRef.resource: pods
        objectRef.subresource: exec
        stage: ResponseComplete
    condition: selection
falsepositives:
    - Administrators debugging pods
level: low
""",
    f"{RULES}/{CREATE_BLOCK}.yml": f"""title: Pod Created Through The API Server
id: 0b7d7c7e-1111-4a1a-9a1a-000000000002
name: {CREATE_BLOCK}
{BASE_META}description: Detects a completed pod creation; a building block of the create-exec correlation.
tags:
    - attack.execution
    - attack.t1610
    - attack.defense-evasion
logsource:
    product: kubernetes
    service: audit
detection:
    selection:
        objectRef.resource: pods
        verb: create
        stage: ResponseComplete
    condition: selection
falsepositives:
    - Administrators running one-off pods
level: low
""",
    f"{RULES}/{BURST}.yml": f"""title: Burst Of Pod Execs By One User
id: 0b7d7c7e-1111-4a1a-9a1a-000000000003
{BASE_META}description: Detects three or more execs into pods by one identity within ten minutes.
tags:
    - attack.execution
    - attack.t1609
correlation:
    type: event_count
    rules:
        - {EXEC_BLOCK}
    group-by:
        - user.username
    timespan: 10m
    condition:
        gte: 3
falsepositives:
    - Administrators debugging several pods in a row
level: medium
""",
    f"{RULES}/{MANY_NS}.yml": f"""title: Pod Execs Into Many Namespaces By One User
id: 0b7d7c7e-1111-4a1a-9a1a-000000000004
{BASE_META}description: Detects execs into pods of three or more namespaces by one identity within an hour.
tags:
    - attack.execution
    - attack.t1609
correlation:
    type: value_count
    rules:
        - {EXEC_BLOCK}
    group-by:
        - user.username
    timespan: 1h
    condition:
        field: objectRef.namespace
        gte: 3
falsepositives:
    - Cluster operators on call
level: medium
""",
    f"{RULES}/{CREATE_EXEC}.yml": f"""title: Pod Created And Exec Into By The Same User
id: 0b7d7c7e-1111-4a1a-9a1a-000000000005
{BASE_META}description: Detects an identity that creates a pod and execs into a pod within five minutes.
tags:
    - attack.execution
    - attack.t1609
    - attack.t1610
    - attack.defense-evasion
correlation:
    type: temporal
    rules:
        - {CREATE_BLOCK}
        - {EXEC_BLOCK}
    group-by:
        - user.username
    timespan: 5m
falsepositives:
    - Developers starting a debug pod and opening a shell in it
level: medium
""",
    "ads/dp-ads-0049-test-exec-bursts.md": f"""---
id: DP-ADS-0049
title: Test strategy for exec bursts through the API server
status: testing
priority: medium
author: detpack tests
date: 2026-11-23
platforms: [Containers]
data_sources: [kubernetes_audit]
attack: [T1609, T1610]
rules: [{BURST}, {MANY_NS}, {CREATE_EXEC}]
---

# Test strategy for exec bursts through the API server

## Goal

Detect an identity that execs into many pods in a short time.

## Categorization

T1609 Container Administration Command; T1610 Deploy Container.

## Strategy Abstract

Correlations over completed pod execs and pod creations.

## Technical Context

Exec is audited with verb get (WebSocket) at stage ResponseComplete.

## Blind Spots and Assumptions

Execs through the kubelet API are not audited.

## False Positives

- Administrators debugging several pods in a row
- Cluster operators on call
- Developers starting a debug pod and opening a shell in it

## Validation

```bash
for pod in payments-0 payments-1; do kubectl -n prod exec "$pod" -- sh -c id; done
kubectl -n billing exec invoice-0 -- sh -c id
```

Recorded in `{FIXTURE}`.

## Priority

Priority: medium, a burst alone is ambiguous.

## Response

Identify the identity and review its RBAC bindings.

## Additional Resources

- https://kubernetes.io/docs/reference/config-api/apiserver-audit.v1/
""",
    EXPECT: f"""events:
  - line: 1
    kind: attack
    fires: [{CREATE_EXEC}]
    note: the stolen ci-deployer token creates a pod
  - line: 2
    kind: attack
    fires: [{BURST}, {MANY_NS}, {CREATE_EXEC}]
    note: first exec of the burst, 30 s after the pod creation
  - line: 3
    kind: benign
    fires: []
    lookalike_for: [{BURST}]
    note: Alice debugs payments-0; her second exec is seven minutes later
  - line: 4
    kind: attack
    fires: [{BURST}, {MANY_NS}, {CREATE_EXEC}]
    note: second exec of the burst
  - line: 5
    kind: benign
    fires: []
    lookalike_for: [{BURST}]
    note: the same token lists pods inside the burst; a list is not an exec and does not count
  - line: 6
    kind: attack
    fires: [{BURST}, {MANY_NS}, {CREATE_EXEC}]
    note: third exec of the burst, another namespace
  - line: 7
    kind: benign
    fires: []
    lookalike_for: [{BURST}, {MANY_NS}]
    note: Alice's second exec, same namespace
  - line: 8
    kind: attack
    fires: [{MANY_NS}]
    note: fourth exec, a third namespace within the hour
  - line: 9
    kind: benign
    fires: []
    lookalike_for: [{CREATE_EXEC}]
    note: Alice creates a debug pod
  - line: 10
    kind: benign
    fires: []
    lookalike_for: [{CREATE_EXEC}, {MANY_NS}]
    note: and execs into it nine minutes later
  - line: 11
    kind: attack
    fires: [{BURST}]
    note: Bob's three execs in three minutes straddle 04:10
  - line: 12
    kind: attack
    fires: [{BURST}]
    note: Bob's second exec, 90 seconds later
  - line: 13
    kind: attack
    fires: [{BURST}]
    note: Bob's third exec, after 04:10; Splunk and ES|QL bins split the burst (documented)
""",
}


def differences() -> str:
    entries = []
    for rule in (BURST, MANY_NS, CREATE_EXEC):
        for engine in ("lucene", "eql"):
            entries.append((rule, engine, "all", "cannot express correlation rules"))
    for engine in ("spl", "esql"):
        for line in (11, 12, 13):
            entries.append((BURST, engine, f"{FIXTURE}:{line}", "fixed 10-minute windows split the burst"))
    body = "".join(
        f"  - rule: {r}\n    engine: {e}\n    event: {ev}\n    reason: {why}\n" for r, e, ev, why in entries
    )
    return f"differences:\n{body}"


def mini_pack(root: Path) -> PackCopy:
    for part in ("datasources", "schemas", "pipelines", "coverage"):
        if (REPO_ROOT / part).is_dir():
            shutil.copytree(REPO_ROOT / part, root / part)
    pack = PackCopy(root)
    for relative, text in FILES.items():
        pack.write(relative, text)
    pack.write(FIXTURE, "".join(audit_event(*event) + "\n" for event in TIMELINE))
    pack.write("tests/engine-differences.yml", differences())
    return pack


@pytest.fixture
def mini(tmp_path: Path) -> PackCopy:
    return mini_pack(tmp_path / "mini")


def lines_of(keys: set[str]) -> set[int]:
    return {int(key.rsplit(":", 1)[1]) for key in keys}


# --------------------------------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------------------------------


def test_timestamps_are_epoch_seconds_or_rfc3339() -> None:
    assert parse_timestamp(NEW_YEAR_2024) == NEW_YEAR_2024  # Zeek ts, Docker time
    assert parse_timestamp("1704067200.25") == NEW_YEAR_2024 + 0.25
    assert parse_timestamp("2024-01-01T00:00:00Z") == NEW_YEAR_2024
    assert parse_timestamp("2024-01-01T00:00:01.104117Z") == pytest.approx(NEW_YEAR_2024 + 1.104117)
    assert parse_timestamp("2024-01-01T00:00:01.123456789Z") == pytest.approx(NEW_YEAR_2024 + 1.123456789)
    assert parse_timestamp("2024-01-01T01:00:00+01:00") == NEW_YEAR_2024  # an offset east of UTC
    assert parse_timestamp("2024-01-01 00:00:00.500") == NEW_YEAR_2024 + 0.5  # Sysmon UtcTime, no zone: UTC
    for bad in ("2024-01-01", "yesterday", "", True, None, ["2024-01-01T00:00:00Z"], float("nan")):
        assert parse_timestamp(bad) is None, bad


# --------------------------------------------------------------------------------------------------
# Validation: every problem located
# --------------------------------------------------------------------------------------------------


def test_the_mini_pack_validates_and_passes(mini: PackCopy) -> None:
    result = mini.run("validate")
    assert result.exit_code == 0, result.output
    result = mini.run("test", "-q")
    assert result.exit_code == 0, result.output


def test_unknown_referenced_rule_is_located_with_a_suggestion(mini: PackCopy) -> None:
    rule = f"{RULES}/{BURST}.yml"
    mini.replace(rule, f"        - {EXEC_BLOCK}", "        - kubernetes_audit_pod_exec_requests")
    result = mini.run("validate")
    assert result.exit_code == 1
    line = line_of(mini, rule, "kubernetes_audit_pod_exec_requests")
    assert f"{rule}:{line}: error: [correlation-unknown-rule] no detection rule has the Sigma name or id" in (
        result.output
    )
    assert f"did you mean '{EXEC_BLOCK}'?" in result.output


def test_a_reference_by_file_name_without_sigma_name_says_to_add_it(mini: PackCopy) -> None:
    mini.replace(f"{RULES}/{EXEC_BLOCK}.yml", f"name: {EXEC_BLOCK}\n", "")
    result = mini.run("validate")
    rule = f"{RULES}/{BURST}.yml"
    line = line_of(mini, rule, f"        - {EXEC_BLOCK}")
    assert f"{rule}:{line}: error: [correlation-unnamed-rule]" in result.output
    assert f"add 'name: {EXEC_BLOCK}'" in result.output


def test_a_sigma_name_other_than_the_file_name_is_an_error(mini: PackCopy) -> None:
    path = f"{RULES}/{CREATE_BLOCK}.yml"
    mini.replace(path, f"name: {CREATE_BLOCK}", "name: pod_created")
    result = mini.run("validate")
    assert f"{path}:3: error: [rule-name] the Sigma name 'pod_created' differs from the file name" in (
        result.output
    )


def test_base_rules_from_another_data_source_are_refused(mini: PackCopy) -> None:
    mini.write(
        "rules/docker_events/docker_events_container_exec_started.yml",
        f"""title: Container Exec Started In Docker
id: 0b7d7c7e-1111-4a1a-9a1a-000000000006
name: docker_events_container_exec_started
{BASE_META}description: Detects an exec started in a container through the Docker daemon.
tags:
    - attack.execution
    - attack.t1609
logsource:
    product: docker
    service: events
detection:
    selection:
        Type: container
        Action|startswith: 'exec_start:'
    condition: selection
falsepositives:
    - Health checks
level: low
""",
    )
    rule = f"{RULES}/{BURST}.yml"
    mini.replace(
        rule,
        f"        - {EXEC_BLOCK}\n",
        f"        - {EXEC_BLOCK}\n        - docker_events_container_exec_started\n",
    )
    result = mini.run("validate")
    line = line_of(mini, rule, "    rules:")
    assert f"{rule}:{line}: error: [correlation-datasources] the base rules read different data sources " in (
        result.output
    )
    assert f"docker_events: docker_events_container_exec_started; kubernetes_audit: {EXEC_BLOCK}" in (
        result.output
    )


@pytest.mark.parametrize(
    ("old", "new", "marker", "code", "message"),
    [
        ("timespan: 10m", "timespan: 10 minutes", "timespan:", "schema", "does not match"),
        ("timespan: 10m", "timespan: 0m", "timespan:", "schema", "does not match"),
        ("        - user.username", "        - user.name", "- user.name", "field-unknown", "group-by field"),
        ("        gte: 3", "        gte: 3\n        lte: 9", "condition:", "schema", "too many properties"),
        (
            "    timespan: 10m",
            "    timespan: 10m\n    aliases: {}",
            "aliases",
            "schema",
            "unknown key 'aliases'",
        ),
        (
            "level: medium",
            "level: medium\nlogsource: {product: kubernetes}",
            "logsource",
            "schema",
            "unknown key",
        ),
        ("    type: event_count", "    type: value_sum", "value_sum", "schema", "correlation/type"),
    ],
)
def test_correlation_schema_errors_are_located(
    mini: PackCopy, old: str, new: str, marker: str, code: str, message: str
) -> None:
    rule = f"{RULES}/{BURST}.yml"
    mini.replace(rule, old, new)
    result = mini.run("validate")
    assert result.exit_code == 1
    line = line_of(mini, rule, marker)
    found = [out for out in result.output.splitlines() if out.startswith(f"{rule}:{line}: error: [{code}]")]
    assert found and any(message in out for out in found), result.output


def test_value_count_field_must_belong_to_the_data_source(mini: PackCopy) -> None:
    rule = f"{RULES}/{MANY_NS}.yml"
    mini.replace(rule, "field: objectRef.namespace", "field: objectRef.namespaces")
    result = mini.run("validate")
    line = line_of(mini, rule, "objectRef.namespaces")
    assert (
        f"{rule}:{line}: error: [field-unknown] condition field 'objectRef.namespaces' is not a field of "
        "data source kubernetes_audit (fix: did you mean 'objectRef.namespace'?)"
    ) in result.output


def test_a_data_source_without_timestamp_field_cannot_run_correlations(mini: PackCopy) -> None:
    mini.replace("datasources/kubernetes_audit.yml", "timestamp_field: stageTimestamp\n", "")
    result = mini.run("validate")
    rule = f"{RULES}/{BURST}.yml"
    line = line_of(mini, rule, "correlation:")
    assert f"{rule}:{line}: error: [correlation-timestamp] data source kubernetes_audit declares no " in (
        result.output
    )
    assert (
        "add 'timestamp_field: <the event's time field>' to datasources/kubernetes_audit.yml" in result.output
    )


def test_a_fixture_event_without_a_timestamp_is_located(mini: PackCopy) -> None:
    mini.replace(FIXTURE, '"stageTimestamp":"2026-11-17T02:12:00.104117Z"', '"stageTimestamp":"soon"')
    result = mini.run("validate")
    assert (
        f"{FIXTURE}:3: error: [fixture-timestamp] the event has no usable 'stageTimestamp'" in result.output
    )


def test_a_building_block_cannot_be_expected_to_fire(mini: PackCopy) -> None:
    mini.replace(EXPECT, f"fires: [{MANY_NS}]\n", f"fires: [{MANY_NS}, {EXEC_BLOCK}]\n")
    result = mini.run("validate")
    line = line_of(mini, EXPECT, f"fires: [{MANY_NS}, {EXEC_BLOCK}]") - 2  # the '- line:' item
    assert (
        f"{EXPECT}:{line}: error: [expect-building-block] {EXEC_BLOCK} is a building block of"
        in result.output
    )


def test_chained_correlations_are_refused(mini: PackCopy) -> None:
    rule = f"{RULES}/{MANY_NS}.yml"
    mini.replace(rule, f"        - {EXEC_BLOCK}", f"        - {BURST}")
    result = mini.run("validate")
    line = line_of(mini, rule, f"        - {BURST}")
    assert f"{rule}:{line}: error: [correlation-chain]" in result.output


def test_building_blocks_need_no_fixture_and_no_ads_and_generate_true_makes_them_rules(
    mini: PackCopy,
) -> None:
    pack = load_pack(mini.root)
    assert building_blocks(pack) == {EXEC_BLOCK: BURST, CREATE_BLOCK: CREATE_EXEC}
    assert validate_pack(pack).errors == []
    mini.replace(f"{RULES}/{CREATE_EXEC}.yml", "    timespan: 5m", "    timespan: 5m\n    generate: true")
    pack = load_pack(mini.root)
    assert building_blocks(pack) == {}  # the exec block is generated by this correlation too
    codes = {(f.path, f.code) for f in validate_pack(pack).errors}
    for block in (EXEC_BLOCK, CREATE_BLOCK):
        assert (f"{RULES}/{block}.yml", "rule-without-attack-fixture") in codes
        assert (f"{RULES}/{block}.yml", "rule-without-ads") in codes


# --------------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------------


def test_conversion_per_target(mini: PackCopy) -> None:
    pack = load_pack(mini.root)
    queries, findings = convert_pack(pack)
    assert findings == []
    by_key = {(q.rule, q.target): q.text for q in queries}
    # Building blocks have no query of their own; Lucene and EQL cannot express any correlation.
    assert {rule for rule, _ in by_key} == {BURST, MANY_NS, CREATE_EXEC}
    assert {target for _, target in by_key} == {"splunk", "esql"}
    base = 'objectRef.resource="pods" objectRef.subresource="exec" stage="ResponseComplete"'
    assert by_key[(BURST, "splunk")] == (
        f"`detpack_kubernetes_audit` {base}\n\n| bin _time span=10m\n"
        "| stats count as event_count by _time user.username\n\n| search event_count >= 3"
    )
    assert by_key[(MANY_NS, "splunk")].endswith(
        "| bin _time span=1h\n| stats dc(objectRef.namespace) as value_count by _time user.username\n\n"
        "| search value_count >= 3"
    )
    # temporal: multisearch first, each subsearch scoped by the data source's macro
    spl = by_key[(CREATE_EXEC, "splunk")]
    assert spl.startswith("| multisearch\n[ search `detpack_kubernetes_audit` objectRef.resource=")
    assert f'[ search `detpack_kubernetes_audit` {base} | eval event_type="{EXEC_BLOCK}" ]' in spl
    assert spl.endswith("| search event_type_count >= 2")
    esql = by_key[(BURST, "esql")]
    assert esql.startswith("from logs-kubernetes.audit_logs-* ")
    assert (
        "| eval timebucket=date_trunc(10minutes, @timestamp) | stats event_count=count() by timebucket, "
        in esql
    )
    assert "kubernetes.audit.user.username" in esql and esql.endswith("| where event_count >= 3")
    assert "count_distinct(kubernetes.audit.objectRef.namespace)" in by_key[(MANY_NS, "esql")]
    assert "| eval event_type=case(" in by_key[(CREATE_EXEC, "esql")]


def test_what_each_target_cannot_express_is_recorded_with_a_reason() -> None:
    for correlation_type in ("event_count", "value_count", "temporal", "temporal_ordered"):
        assert unsupported_reason("lucene", correlation_type)
        assert unsupported_reason("eql", correlation_type)
    assert "runs=N" in (unsupported_reason("eql", "event_count") or "")
    assert "SAME" in (unsupported_reason("eql", "value_count") or "")
    assert unsupported_reason("splunk", "temporal_ordered") and unsupported_reason("esql", "temporal_ordered")
    for supported in ("event_count", "value_count", "temporal"):
        assert unsupported_reason("splunk", supported) is None
        assert unsupported_reason("esql", supported) is None
    assert {target for target, _ in UNSUPPORTED} <= set(TARGETS)


def test_an_unrecorded_target_limitation_fails_the_test_run(mini: PackCopy) -> None:
    text = mini.read("tests/engine-differences.yml")
    reason = "reason: cannot express correlation rules"
    entry = f"  - rule: {MANY_NS}\n    engine: eql\n    event: all\n    {reason}\n"
    assert entry in text
    mini.write("tests/engine-differences.yml", text.replace(entry, ""))
    result = mini.run("test", "-q")
    assert result.exit_code == 1
    rule = f"{RULES}/{MANY_NS}.yml"
    assert (
        f"{rule}:{line_of(mini, rule, 'correlation:')}: error: [correlation-unsupported] EQL" in result.output
    )
    assert "engine: eql, event: all" in result.output


# --------------------------------------------------------------------------------------------------
# The Sigma reference: pySigma's SQLite correlation SQL
# --------------------------------------------------------------------------------------------------


def test_reference_finds_the_occurrences_of_the_timeline(mini: PackCopy) -> None:
    pack = load_pack(mini.root)
    correlations, findings = resolve_correlations(pack)
    assert findings == [] and set(correlations) == {BURST, MANY_NS, CREATE_EXEC}
    events = [e for f in pack.fixtures for e in f.events]
    table = reference_table([e.view for e in events], list(correlations.values()), set())
    for name, expected in REFERENCE.items():
        sql, hits = reference_hits(table, correlations[name])
        assert sql.startswith("WITH ")
        assert {events[i].line for i in hits} == expected, name


def _reference(rule_yaml: str, rows: list[dict[str, Any]]) -> set[int]:
    """Run one correlation over hand-written events (field `t`: epoch seconds) in the SQLite reference."""
    base: dict[str, Any] = {
        "title": "base rule",
        "id": "0b7d7c7e-2222-4a1a-9a1a-000000000001",
        "name": "base",
        "logsource": {"product": "test"},
        "detection": {"selection": {"kind": "hit"}, "condition": "selection"},
    }
    collection = SigmaCollection.from_dicts([base, yaml.safe_load(rule_yaml)])
    collection.resolve_rule_references()
    views = [{k: v for k, v in row.items() if k != "t"} for row in rows]
    table = ReferenceTable.build(views, {"kind", "host", "user"}, [row.get("t") for row in rows])
    return table.correlation_matches(table.correlation_query(collection))


EVENT_COUNT_3_IN_60S = """
title: three in a minute
id: 0b7d7c7e-2222-4a1a-9a1a-000000000002
correlation: {type: event_count, rules: [base], group-by: [host], timespan: 60s, condition: {gte: 3}}
"""


def test_reference_event_count_uses_sliding_inclusive_windows() -> None:
    hit = {"kind": "hit", "host": "web-1"}
    rows = [
        {**hit, "t": 0},  # 0 \
        {**hit, "t": 30},  # 1  > [0, 60]: three events, the window is inclusive at both ends
        {**hit, "t": 60},  # 2 /
        {**hit, "t": 121},  # 3 \
        {**hit, "t": 150},  # 4  > [121, 181] crosses no boundary of its own: three events
        {**hit, "t": 181},  # 5 /
        {**hit, "t": 300},  # 6 alone
        {"kind": "miss", "host": "web-1", "t": 301},  # 7 not a base-rule event, does not count
        {**hit, "t": 302},  # 8 with 6: two
        {"kind": "hit", "host": "WEB-2", "t": 400},  # 9  Sigma compares values case-insensitively:
        {"kind": "hit", "host": "web-2", "t": 401},  # 10 9, 10, 11 are one group
        {"kind": "hit", "host": "Web-2", "t": 402},  # 11
        {"kind": "hit", "t": 500},  # 12 \ no host: in no group
        {"kind": "hit", "t": 501},  # 13 |
        {"kind": "hit", "t": 502},  # 14 /
    ]
    assert _reference(EVENT_COUNT_3_IN_60S, rows) == {0, 1, 2, 3, 4, 5, 9, 10, 11}


def test_reference_value_count_counts_distinct_values_per_group() -> None:
    rule = """
title: three users on a host
id: 0b7d7c7e-2222-4a1a-9a1a-000000000003
correlation: {type: value_count, rules: [base], group-by: [host], timespan: 1h,
              condition: {field: user, gte: 3}}
"""
    rows = [
        {"kind": "hit", "host": "a", "user": "root", "t": 0},
        {"kind": "hit", "host": "a", "user": "root", "t": 10},
        {"kind": "hit", "host": "a", "user": "admin", "t": 20},
        {"kind": "hit", "host": "a", "user": "ROOT", "t": 30},  # the same value, case-insensitively
        {"kind": "hit", "host": "b", "user": "x", "t": 0},
        {"kind": "hit", "host": "b", "user": "y", "t": 100},
        {"kind": "hit", "host": "b", "user": "z", "t": 3700},  # over an hour after x: x, y, z never together
        {"kind": "hit", "host": "c", "user": "p", "t": 0},
        {"kind": "hit", "host": "c", "user": "q", "t": 10},
        {"kind": "hit", "host": "c", "user": "r", "t": 20},
        {"kind": "hit", "host": "c", "t": 30},  # no user: part of the window, adds no value
    ]
    assert _reference(rule, rows) == {7, 8, 9, 10}


# --------------------------------------------------------------------------------------------------
# Splunk: SplStatsQuery
# --------------------------------------------------------------------------------------------------

MACROS = {"m": 'index=k sourcetype="audit"'}


def spl_event(t: float, **fields: Any) -> SplEvent:
    return {"index": "k", "sourcetype": "audit", "_time": NEW_YEAR_2024 + t, **fields}


def test_spl_bin_aligns_time_spans_to_the_epoch_and_stats_counts_per_bin() -> None:
    # Bin: "aligntime: Align the bin times to something other than base UTC time (epoch 0)": 10-minute bins
    # start at :00, :10, ... UTC. Events 0-2 share [00:00, 00:10); 3-4 [00:10, 00:20).
    query = SplStatsQuery.parse(
        "`m` verb=get\n\n| bin _time span=10m\n| stats count as event_count by _time user\n\n"
        "| search event_count >= 3",
        MACROS,
    )
    events = [
        spl_event(0, verb="get", user="a"),
        spl_event(300, verb="get", user="a"),
        spl_event(599.9, verb="get", user="a"),
        spl_event(600, verb="get", user="a"),
        spl_event(601, verb="get", user="a"),
        spl_event(602, verb="list", user="a"),  # filtered out by the search, before stats
    ]
    assert query.matching(events) == {0, 1, 2}


def test_spl_stats_groups_by_values_as_splunk_does() -> None:
    # stats: "If a BY clause is used, one row is returned for each distinct value specified in the BY
    # clause": a result without the BY field is in no row; a multivalue BY field puts the result in a row
    # per value; values group case-sensitively (unlike search comparisons).
    query = SplStatsQuery.parse(
        "`m` verb=get | bin _time span=1h | stats count as event_count by _time user"
        " | search event_count >= 2",
        MACROS,
    )
    events = [
        spl_event(0, verb="get", user="alice"),
        spl_event(1, verb="get", user="Alice"),  # another row than "alice"
        spl_event(2, verb="get"),  # no user: no row
        spl_event(3, verb="get"),
        spl_event(4, verb="get", user=["bob", "alice"]),  # in the rows of bob and of alice
        spl_event(5, verb="get", user="bob"),
    ]
    assert query.matching(events) == {0, 4, 5}


def test_spl_dc_counts_distinct_values_case_sensitively() -> None:
    # dc(<field>): "Returns the count of distinct values in a field" (Aggregate functions).
    query = SplStatsQuery.parse(
        "`m` * | bin _time span=1h | stats dc(ns) as value_count by _time user | search value_count >= 3",
        MACROS,
    )
    events = [
        spl_event(0, user="a", ns="prod"),
        spl_event(1, user="a", ns="Prod"),  # a third distinct value for Splunk
        spl_event(2, user="a", ns="billing"),
        spl_event(3, user="b", ns=["x", "y"]),  # every value of a multivalue field counts
        spl_event(4, user="b", ns="z"),
        spl_event(5, user="c", ns="x"),
        spl_event(6, user="c"),
    ]
    assert query.matching(events) == {0, 1, 2, 3, 4}


def test_spl_multisearch_runs_every_subsearch_over_every_event() -> None:
    # multisearch: "runs multiple streaming searches at the same time": an event two subsearches keep is two
    # results, so it alone gives dc(event_type) = 2.
    query = SplStatsQuery.parse(
        '| multisearch\n[ search `m` verb=create | eval event_type="create" ]\n'
        '[ search `m` user=a* | eval event_type="by_a" ]\n\n| bin _time span=5m\n'
        "| stats dc(event_type) as event_type_count by _time user\n\n| search event_type_count >= 2",
        MACROS,
    )
    events = [
        spl_event(0, verb="create", user="admin"),  # both subsearches keep it
        spl_event(10, verb="create", user="bob"),
        spl_event(20, verb="get", user="bob"),
        spl_event(300, verb="get", user="amy"),
    ]
    assert query.matching(events) == {0}


def test_spl_transforming_commands_are_refused_where_splunk_refuses_them() -> None:
    with pytest.raises(SplSyntaxError, match="multisearch must be the first command"):
        SplStatsQuery.parse("`m` a=1 | multisearch [ search a=1 ] [ search b=2 ]", MACROS)
    with pytest.raises(SplSyntaxError, match="only streaming commands"):
        SplStatsQuery.parse("| multisearch [ search a=1 | stats count as c by x ] [ search b=2 ]", MACROS)
    with pytest.raises(SplUnsupportedError, match="only count and dc"):
        SplStatsQuery.parse("a=1 | stats sum(x) as s by y", MACROS)
    with pytest.raises(SplUnsupportedError, match="over one day"):
        SplStatsQuery.parse("a=1 | bin _time span=2d | stats count as c by _time", MACROS)
    with pytest.raises(SplSyntaxError, match="expected one of 'eval', 'regex', 'rex', 'search', 'table'"):
        SplQuery.parse("a=1 | stats count", {})  # the streaming evaluator still refuses stats


def test_splunk_view_has_time_when_the_caller_gives_it(mini: PackCopy) -> None:
    pack = load_pack(mini.root)
    event = next(e for f in pack.fixtures for e in f.events if e.line == 2)
    ds = pack.datasources["kubernetes_audit"]
    assert "_time" not in splunk_event(ds, event.native, event.raw)
    stamp = parse_timestamp(event.view["stageTimestamp"])
    assert splunk_event(ds, event.native, event.raw, time=stamp)["_time"] == stamp


# --------------------------------------------------------------------------------------------------
# ES|QL: EVAL, STATS ... BY, WHERE on aggregates
# --------------------------------------------------------------------------------------------------

ESQL_FIELDS = {"@timestamp": "date", "user.name": "keyword", "verb": "keyword", "ns": "keyword"}


def esql_doc(t: int, user: Any = None, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"@timestamp": (NEW_YEAR_2024 + t) * 1000, **fields}  # epoch_millis
    if user is not None:
        doc["user"] = {"name": user}
    return doc


def test_esql_date_trunc_fixed_intervals_count_from_the_epoch() -> None:
    # DATE_TRUNC with a time duration is Rounding.Builder(TimeValue): a fixed interval from 1970-01-01 UTC.
    # 7 minutes does not divide a day: 2024-01-01T00:00:00Z is 1704067200 s = 4057302 intervals of 420 s
    # plus 360 s, so the 7-minute bins around midnight start at 23:54, 00:01 and 00:08 (not at 00:00 and
    # 00:07): 00:00:00 is alone, 00:06:59 and 00:07:00 share a bin.
    query = EsqlQuery.parse(
        'from logs | where verb == "get" | eval timebucket=date_trunc(7 minutes, @timestamp)'
        " | stats event_count=count() by timebucket, user.name | where event_count >= 2"
    )
    docs = [esql_doc(0, "a", verb="get"), esql_doc(419, "a", verb="get"), esql_doc(420, "a", verb="get")]
    assert query.matching(docs, ESQL_FIELDS) == {1, 2}
    # 25 minutes does not divide 1704067200 s (1136044.8 intervals): the bin holding 00:00 starts 12 minutes
    # before midnight (0.8 x 1500 s = 1200 s), the next at 00:13.
    query = EsqlQuery.parse(
        'from logs | where verb == "get" | eval timebucket=date_trunc(25minutes, @timestamp)'
        " | stats event_count=count() by timebucket, user.name | where event_count >= 2"
    )
    docs = [esql_doc(-1200, "b", verb="get"), esql_doc(299, "b", verb="get"), esql_doc(300, "b", verb="get")]
    assert query.matching(docs, ESQL_FIELDS) == {0, 1}


def test_esql_stats_has_a_null_group_and_refuses_multivalued_groups() -> None:
    # STATS ... BY: the documentation's `STATS count = COUNT(emp_no) BY languages` has a row `10 | null`:
    # documents without the field form a group of their own (Splunk and the Sigma reference drop them).
    query = EsqlQuery.parse(
        'from logs | where verb == "get" | eval timebucket=date_trunc(1 hour, @timestamp)'
        " | stats event_count=count() by timebucket, user.name | where event_count >= 2"
    )
    docs = [esql_doc(0, verb="get"), esql_doc(1, verb="get"), esql_doc(2, "a", verb="get")]
    assert query.matching(docs, ESQL_FIELDS) == {0, 1}
    with pytest.raises(EsqlUnsupportedError, match="multi-valued field"):
        query.matching([*docs, esql_doc(3, ["a", "b"], verb="get")], ESQL_FIELDS)


def test_esql_count_distinct_and_case() -> None:
    # COUNT_DISTINCT counts distinct non-null values (case-sensitively for keyword); CASE returns the value of
    # the first true condition.
    query = EsqlQuery.parse(
        "from logs | where true | eval timebucket=date_trunc(1 hour, @timestamp)"
        " | stats value_count=count_distinct(ns) by timebucket, user.name | where value_count >= 2"
    )
    docs = [
        esql_doc(0, "a", ns="prod"),
        esql_doc(1, "a", ns="Prod"),
        esql_doc(2, "b", ns="x"),
        esql_doc(3, "b"),
    ]
    assert query.matching(docs, ESQL_FIELDS) == {0, 1}
    query = EsqlQuery.parse(
        'from logs | where verb == "create" or user.name == "a"'
        ' | eval event_type=case(verb == "create", "create", user.name == "a", "by_a")'
        " | eval timebucket=date_trunc(5 minutes, @timestamp)"
        " | stats event_type_count=count_distinct(event_type) by timebucket, user.name"
        " | where event_type_count >= 2"
    )
    # 0 is a creation by a: CASE gives it "create" only (Splunk's multisearch would count it twice)
    docs = [esql_doc(0, "a", verb="create"), esql_doc(10, "c", verb="create"), esql_doc(20, "a", verb="get")]
    assert query.matching(docs, ESQL_FIELDS) == {0, 2}
    assert query.matching(docs[:1], ESQL_FIELDS) == set()


def test_esql_aggregation_errors() -> None:
    with pytest.raises(EsqlUnknownColumnError, match=r"Unknown column \[verb\]"):
        EsqlQuery.parse('from logs | stats c=count() by user.name | where verb == "get"')
    with pytest.raises(EsqlUnsupportedError):
        EsqlQuery.parse('from logs | eval x=case(verb == "get", "g") | where x == "g"')
    with pytest.raises(EsqlUnsupportedError, match="week"):
        EsqlQuery.parse("from logs | eval t=date_trunc(1 week, @timestamp) | stats c=count() by t")
    with pytest.raises(EsqlUnsupportedError):
        EsqlQuery.parse("from logs | stats count(*)")


# --------------------------------------------------------------------------------------------------
# Verdicts and the differential check
# --------------------------------------------------------------------------------------------------


def _replay(pack_root: Path, mutate: dict[tuple[str, str], tuple[str, str]] | None = None) -> Any:
    pack = load_pack(pack_root)
    validation = validate_pack(pack)
    assert validation.errors == []
    queries, findings = convert_pack(pack)
    assert findings == []
    texts = {(q.rule, q.target): q.text for q in queries}
    for key, (old, new) in (mutate or {}).items():
        assert old in texts[key]
        texts[key] = texts[key].replace(old, new)
    return replay(pack, validation.parsed, texts)


def test_every_engine_reports_the_events_of_the_occurrences_it_finds(mini: PackCopy) -> None:
    result = _replay(mini.root)
    assert result.failures == [] and result.findings == []
    fired: dict[tuple[str, str], set[int]] = {}
    for verdict in result.verdicts:
        if verdict.fired:
            fired.setdefault((verdict.rule, verdict.engine), set()).update(lines_of({verdict.event}))
    for rule in (BURST, MANY_NS, CREATE_EXEC):
        assert fired[(rule, "sqlite")] == REFERENCE[rule], rule
        assert fired[(rule, "spl")] == BINNED[rule], rule
        assert fired[(rule, "esql")] == BINNED[rule], rule
        assert not any(engine in ("lucene", "eql") for (r, engine) in fired if r == rule)
    documented = {(v.rule, v.engine, v.event) for v in result.verdicts if v.documented}
    assert documented == {(BURST, e, f"{FIXTURE}:{n}") for e in ("spl", "esql") for n in (11, 12, 13)}
    assert (BURST, "lucene") in result.documented_errors


def test_the_differential_check_catches_a_mutated_threshold(mini: PackCopy) -> None:
    # The Splunk search shipped with threshold 2 instead of 3 also fires on Alice's two execs (3, 7).
    result = _replay(mini.root, {(BURST, "splunk"): ("event_count >= 3", "event_count >= 2")})
    failures = {(v.rule, v.engine, v.event, v.fired, v.reference) for v in result.failures}
    assert failures == {(BURST, "spl", f"{FIXTURE}:{n}", True, False) for n in (3, 7)}
    # ... and an ES|QL query with a threshold of 4 misses the attacker's burst (2, 4, 6).
    result = _replay(mini.root, {(BURST, "esql"): ("event_count >= 3", "event_count >= 4")})
    failures = {(v.rule, v.engine, v.event, v.fired, v.reference) for v in result.failures}
    assert failures == {(BURST, "esql", f"{FIXTURE}:{n}", False, True) for n in (2, 4, 6)}


def test_a_mutated_rule_threshold_fails_against_the_expectations(mini: PackCopy) -> None:
    mini.replace(f"{RULES}/{BURST}.yml", "gte: 3", "gte: 4")
    result = mini.run("test", "-q")
    assert result.exit_code == 1
    for line in (2, 4, 6, 11, 12, 13):
        assert f"MISSED: rule {BURST} did not fire but must on {FIXTURE}:{line} [sqlite]" in result.output
    assert re.search(rf"DISAGREES: .* rule {BURST} on {re.escape(FIXTURE)}:2 ", result.output) is None


# --------------------------------------------------------------------------------------------------
# The pack's beaconing correlation (A7) on a beacon that spans two clock hours
# --------------------------------------------------------------------------------------------------

BEACON = "zeek_conn_pod_periodic_beacon_to_public"
ACROSS_THE_HOUR = "tests/fixtures/zeek_conn/beaconing_across_the_hour.jsonl"


@pytest.mark.skipif(
    not (REPO_ROOT / "rules" / "zeek_conn" / f"{BEACON}.yml").exists(),
    reason="the pack has no A7 correlation",
)
def test_a_beacon_across_the_hour_is_found_by_the_sliding_reference_only() -> None:
    # Twelve check-ins every five minutes from 10:33 to 11:28: one sliding hour holds all twelve (>= 12), the
    # clock hours 10:00-11:00 and 11:00-12:00 six each.
    pack = load_pack(REPO_ROOT)
    validation = validate_pack(pack)
    queries, _ = convert_pack(pack, {BEACON}, ["splunk", "esql"])
    texts = {(q.rule, q.target): q.text for q in queries}
    result = replay(pack, validation.parsed, texts, {BEACON}, ["sqlite", "spl", "esql"])
    fired: dict[str, set[int]] = {"sqlite": set(), "spl": set(), "esql": set()}
    for verdict in result.verdicts:
        if verdict.fired and verdict.event.startswith(f"{ACROSS_THE_HOUR}:"):
            fired[verdict.engine] |= lines_of({verdict.event})
    assert fired == {"sqlite": set(range(1, 13)), "spl": set(), "esql": set()}
    assert not [v for v in result.failures if v.event.startswith(ACROSS_THE_HOUR)]


# --- publishing schedules: each bucket the searches count in is searched whole ---------------------


def test_a_timespan_that_cannot_align_with_clock_buckets_is_located(mini: PackCopy) -> None:
    rule = f"{RULES}/{BURST}.yml"
    mini.replace(rule, "timespan: 10m", "timespan: 7m")
    result = mini.run("validate")
    assert result.exit_code == 1
    line = line_of(mini, rule, "timespan: 7m")
    assert f"{rule}:{line}: error: [correlation-timespan] timespan '7m' cannot be scheduled" in result.output
    assert "(fix: use minutes that divide an hour" in result.output


@pytest.mark.parametrize(
    ("timespan", "period"),
    [
        ("10m", (10, "m")),
        ("60m", (1, "h")),
        ("1h", (1, "h")),
        ("8h", (8, "h")),
        ("1d", (1, "d")),
        ("7m", None),
        ("5h", None),
        ("2d", None),
        ("30s", None),
        ("0m", None),
        ("1w", None),
    ],
)
def test_schedulable_timespans(timespan: str, period: tuple[int, str] | None) -> None:
    assert schedule_period(timespan) == period


def test_schedules_search_exactly_the_bucket_that_closed() -> None:
    # Worked by hand from Splunk's time modifiers (offset, then snap) on a run scheduled at 10:05 / 10:20:
    hourly = correlation_schedule(1, "h")  # at 10:05: -1h -> 09:05, @h -> 09:00; latest @h -> 10:00
    assert (hourly.cron, hourly.earliest, hourly.latest) == ("5 */1 * * *", "-1h@h", "@h")
    tens = correlation_schedule(10, "m")  # at 10:20: 10:00 .. 10:10, the bucket before the one just closed
    assert (tens.cron, tens.earliest, tens.latest) == ("*/10 * * * *", "-20m@m", "-10m@m")
    daily = correlation_schedule(1, "d")
    assert (daily.cron, daily.earliest, daily.latest) == ("5 0 * * *", "-1d@d", "@d")
    # Kibana runs are not clock-aligned: every timespan, looking back two.
    assert (hourly.kibana_interval, hourly.kibana_from) == ("1h", "now-2h")
