"""The engine runners behave like the target: Elasticsearch refuses EQL on fields the mapping lacks."""

from __future__ import annotations

import pytest

from detpack.content.pack import load_pack
from detpack.engines.runners import run_eql
from detpack.ingest.fields import load_field_types
from tests.conftest import REPO_ROOT


def test_eql_on_an_unmapped_field_is_an_error_not_a_silent_miss() -> None:
    # Regression: the EQL engine evaluated queries on fields the Elastic integration does not map
    # (kubernetes.audit.requestObject.spec.containers.args), which Elasticsearch rejects.
    ds = load_pack(REPO_ROOT).datasources["kubernetes_audit"]
    types = load_field_types("kubernetes_audit")
    assert run_eql(
        'any where kubernetes.audit.verb:"create"', [{"kubernetes": {"audit": {"verb": "create"}}}], ds, types
    ) == {0}
    with pytest.raises(ValueError, match=r"unknown field.*requestObject\.spec\.containers\.args"):
        run_eql('any where kubernetes.audit.requestObject.spec.containers.args:"sh"', [], ds, types)
