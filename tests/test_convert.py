"""Conversion through the pack's pipelines, and the pack's fixes to pySigma's field-name quoting."""

from __future__ import annotations

from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from detpack.content.pack import load_pack
from detpack.convert import TARGETS, PackEqlBackend, PackLuceneBackend, convert_pack
from detpack.engines.eql_engine import EqlQuery
from tests.conftest import REPO_ROOT, PackCopy

RULE = SigmaRule.from_yaml(
    "title: t\nlogsource: {product: kubernetes, service: audit}\n"
    "detection:\n  sel:\n    annotations.authorization.k8s.io/decision: allow\n  condition: sel\n"
)


# Targets that can express an event_count correlation as one query (the pack's only correlation type):
# Splunk `stats` and ES|QL `STATS`; a Lucene query string cannot count, and pySigma's EQL `with runs=N`
# ignores the operator (docs/decisions.md).
EVENT_COUNT_TARGETS = {"splunk", "esql"}


def test_every_rule_converts_to_every_target() -> None:
    pack = load_pack(REPO_ROOT)
    queries, findings = convert_pack(pack)
    assert not findings
    correlations = {r.name: r.data["correlation"] for r in pack.rules if "correlation" in r.data}
    assert {c["type"] for c in correlations.values()} == {"event_count"}, (
        "a new correlation type: extend this test"
    )
    # Base rules of a correlation without `generate: true` are building blocks with no query of their own.
    blocks = {base for c in correlations.values() if c.get("generate") is not True for base in c["rules"]}
    expected = {
        (r.name, t)
        for r in pack.rules
        if r.name not in blocks
        for t in TARGETS
        if r.name not in correlations or t in EVENT_COUNT_TARGETS
    }
    assert {(q.rule, q.target) for q in queries} == expected
    assert blocks and correlations  # the pack has both kinds, so the exceptions above are exercised


def test_convert_says_why_a_rule_has_no_query_for_a_target(pack_copy: PackCopy) -> None:
    result = pack_copy.run(
        "convert",
        "--rule",
        "zeek_conn_pod_periodic_beacon_to_public",
        "--rule",
        "zeek_conn_pod_small_egress_to_public",
    )
    assert result.exit_code == 0, result.output
    text = result.output
    assert (
        "# zeek_conn_pod_periodic_beacon_to_public [Elasticsearch Lucene query string]\n# no query: " in text
    )
    assert "cannot count" in text
    assert "# zeek_conn_pod_periodic_beacon_to_public [Elastic EQL]\n# no query: " in text
    assert "# zeek_conn_pod_small_egress_to_public [Splunk SPL]\n# no query: building block of " in text
    assert "| stats count as event_count" in text  # the targets that can express it still print the query


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
