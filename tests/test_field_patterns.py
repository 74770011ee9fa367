"""Field lists with wildcard names: how a rule's or an event's field is found in the data stream's mapping."""

from __future__ import annotations

from detpack.ingest.fields import field_known, field_type, load_field_types

TYPES = {
    "auditd.data.a*": "keyword",
    "kubernetes.audit.annotations.*": "object(text)",
    "process.args": "keyword",
}


def test_a_wildcard_inside_a_name_matches_like_path_match() -> None:
    # Regression: `auditd.data.a*` was only ever compared whole, so auditd.data.a0 was "not mapped".
    assert field_type(TYPES, "auditd.data.a0") == "keyword"
    assert field_type(TYPES, "auditd.data.a13") == "keyword"
    assert not field_known(TYPES, "auditd.data.b0")
    assert not field_known(TYPES, "auditd.data")


def test_an_open_parent_still_types_its_subfields() -> None:
    assert field_type(TYPES, "kubernetes.audit.annotations.authorization.k8s.io/decision") == "object(text)"
    assert field_type(TYPES, "process.args") == "keyword"
    assert not field_known(TYPES, "process.args.x")


def test_the_shipped_auditd_list_maps_execve_argument_fields() -> None:
    types = load_field_types("linux_auditd")
    assert "auditd.data.a*" in types  # the shipped list still declares the pattern this test relies on
    assert field_known(types, "auditd.data.a1")
