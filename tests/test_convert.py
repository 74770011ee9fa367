"""Conversion through the pack's pipelines, and the pack's fixes to pySigma's field-name quoting."""

from __future__ import annotations

from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from detpack.content.pack import load_pack
from detpack.convert import TARGETS, PackEqlBackend, PackLuceneBackend, convert_pack
from detpack.engines.eql_engine import EqlQuery
from tests.conftest import REPO_ROOT

RULE = SigmaRule.from_yaml(
    "title: t\nlogsource: {product: kubernetes, service: audit}\n"
    "detection:\n  sel:\n    annotations.authorization.k8s.io/decision: allow\n  condition: sel\n"
)


def test_every_rule_converts_to_every_target() -> None:
    pack = load_pack(REPO_ROOT)
    queries, findings = convert_pack(pack)
    assert not findings
    assert {(q.rule, q.target) for q in queries} == {(r.name, t) for r in pack.rules for t in TARGETS}


def test_lucene_escapes_a_slash_in_a_field_name() -> None:
    # Regression: pySigma's Lucene backend left "/" unescaped, which query_string reads as a regex start.
    query = PackLuceneBackend(processing_pipeline=ProcessingPipeline()).convert_rule(RULE)[0]
    assert query == "annotations.authorization.k8s.io\\/decision:allow"


def test_eql_back_quotes_a_field_name_with_a_slash() -> None:
    # Regression: pySigma's EQL backend left "/" bare, which EQL parses as a division (matching nothing).
    query = PackEqlBackend(processing_pipeline=ProcessingPipeline()).convert_rule(RULE)[0]
    assert query == 'any where `annotations.authorization.k8s.io/decision`:"allow"'
    docs = [
        {"annotations.authorization.k8s.io/decision": "allow"},
        {"annotations.authorization.k8s.io/decision": "x"},
    ]
    assert EqlQuery.parse(query).matching(docs) == {0}
