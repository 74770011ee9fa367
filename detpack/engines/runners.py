"""The five engines behind one interface: run a query over a data source's events, return the hits.

Each SIEM engine runs over what that SIEM would have indexed (the ingest models' views), over every
event of the rule's data source: scoping (the Splunk macro, the ECS pipeline's conditions, the ES|QL
index) is part of what is tested. The Sigma reference runs over the events in the data source's scope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from detpack.content.datasources import DataSource


@dataclass(frozen=True)
class EngineSpec:
    name: str
    title: str
    target: str | None  # the conversion target whose query it executes; None for the Sigma reference
    view: str  # reference | splunk | ecs


ENGINES: dict[str, EngineSpec] = {
    "sqlite": EngineSpec("sqlite", "Sigma reference (pySigma SQLite backend in SQLite)", None, "reference"),
    "spl": EngineSpec("spl", "Splunk SPL (detpack evaluator)", "splunk", "splunk"),
    "lucene": EngineSpec("lucene", "Lucene query string (Apache Lucene, ES-like parser)", "lucene", "ecs"),
    "eql": EngineSpec("eql", "EQL (Elastic eql library, ES semantics)", "eql", "ecs"),
    "esql": EngineSpec("esql", "ES|QL (real grammar on DuckDB)", "esql", "ecs"),
}

Runner = Callable[[str, Sequence[Any], DataSource, Mapping[str, str]], set[int]]


def run_spl(query: str, events: Sequence[Any], ds: DataSource, types: Mapping[str, str]) -> set[int]:
    from detpack.engines.spl import SplQuery

    parsed = SplQuery.parse(query, {ds.splunk_macro: ds.splunk_definition})
    return {index for index, event in enumerate(events) if parsed.matches(event)}


def run_eql(query: str, events: Sequence[Any], ds: DataSource, types: Mapping[str, str]) -> set[int]:
    from detpack.engines.eql_engine import EqlQuery
    from detpack.ingest.fields import field_known

    parsed = EqlQuery.parse(query)
    # Elasticsearch verifies EQL fields against the mapping ("Unknown column"); so does the pack.
    unknown = sorted(f for f in parsed.fields() if not field_known(types, f))
    if unknown:
        raise ValueError(f"unknown field(s) for the {ds.elastic_data_stream} mapping: {', '.join(unknown)}")
    return parsed.matching(events)


@cache
def _lucene() -> Any:
    from detpack.engines.lucene import LuceneEngine

    return LuceneEngine()


def run_lucene(query: str, events: Sequence[Any], ds: DataSource, types: Mapping[str, str]) -> set[int]:
    return set(_lucene().matching(query, events, types))


def run_esql(query: str, events: Sequence[Any], ds: DataSource, types: Mapping[str, str]) -> set[int]:
    from detpack.engines.esql import EsqlQuery

    parsed = EsqlQuery.parse(query)
    if parsed.index_pattern != ds.elastic_index:
        raise ValueError(
            f"the query reads {parsed.index_pattern!r}, the data source lives in {ds.elastic_index!r}"
        )
    return set(parsed.matching(events, types))


RUNNERS: dict[str, Runner] = {"spl": run_spl, "eql": run_eql, "lucene": run_lucene, "esql": run_esql}
