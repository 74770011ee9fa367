"""The SQLite reference engine: Sigma semantics over flattened native events, lists included."""

from __future__ import annotations

from typing import Any

import pytest
from sigma.rule import SigmaRule

from detpack.engines.sqlite import ReferenceTable
from detpack.ingest.reference import flatten


def _pod(*containers: dict[str, Any], user: str = "jdoe") -> dict[str, Any]:
    return {
        "verb": "create",
        "user": {"username": user},
        "requestObject": {"spec": {"containers": list(containers)}},
    }


EVENTS = [
    # 0: the SECOND container is the privileged one
    _pod(
        {"name": "app", "image": "nginx", "securityContext": {"privileged": False}},
        {"name": "side", "image": "alpine", "securityContext": {"privileged": True}},
    ),
    # 1: no container is privileged
    _pod({"name": "app", "image": "nginx", "securityContext": {"privileged": False}}),
    # 2: upper-case verb, numeric code as a string, no user
    {"verb": "CREATE", "responseStatus": {"code": "403"}},
    # 3: numeric code as a number
    {
        "verb": "get",
        "responseStatus": {"code": 201},
        "user": {"username": "system:serviceaccount:kube-system:x"},
    },
]


def _matches(detection: str) -> set[int]:
    table = ReferenceTable.build([flatten(e) for e in EVENTS])
    rule = SigmaRule.from_yaml(
        f"title: t\nlogsource: {{product: kubernetes, service: audit}}\ndetection:\n{detection}"
    )
    return table.matches(table.query_for(rule))


def test_list_field_matches_when_any_element_matches() -> None:
    detection = (
        "  sel:\n    requestObject.spec.containers.securityContext.privileged: true\n  condition: sel\n"
    )
    assert _matches(detection) == {0}


def test_not_on_a_list_field_means_no_element_matches() -> None:
    # Splunk `NOT f=x` and Elasticsearch `NOT f:x` are false when any value of f is x.
    detection = "  sel:\n    requestObject.spec.containers.image: alpine\n  condition: not sel\n"
    assert _matches(detection) == {1, 2, 3}


def test_not_on_a_missing_field_matches() -> None:
    detection = "  f:\n    user.username|startswith: 'system:'\n  condition: not f\n"
    assert _matches(detection) == {0, 1, 2}


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ("  sel:\n    verb: create\n  condition: sel\n", {0, 1, 2}),  # values are case-insensitive
        ("  sel:\n    requestObject.spec.containers.image|contains: LPIN\n  condition: sel\n", {0}),
        ("  sel:\n    responseStatus.code|gte: 400\n  condition: sel\n", {2}),  # "403" compares as a number
        ("  sel:\n    responseStatus.code: 201\n  condition: sel\n", {3}),
        ("  sel:\n    requestObject.spec.containers.name|re: '^si'\n  condition: sel\n", {0}),
    ],
)
def test_sigma_value_semantics(detection: str, expected: set[int]) -> None:
    assert _matches(detection) == expected
