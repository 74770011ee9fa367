"""The fields each data source's Elastic data stream maps, with their Elasticsearch types.

The lists are project data (``detpack/data/fields/<data source>.json``), extracted by
``scripts/extract_fields.py`` from ECS and the Elastic integrations' field definitions; see the
``PROVENANCE.md`` beside them. A query that names a field its data stream does not map is an error: on a data
stream with ``dynamic: false`` (Kubernetes audit logs) such a field is kept in ``_source`` but never indexed,
so nothing can match it.

``object``, ``object(<type>)``, ``nested`` and ``flattened`` fields are open: every subfield below them is
mapped (``kubernetes.audit.annotations.*`` is ``object(text)``, so
``kubernetes.audit.annotations.authorization_k8s_io/decision`` is a field; ``docker.event.actor.attributes``
is ``flattened``, so ``docker.event.actor.attributes.image`` is one too).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Any

OPEN_TYPES = ("object", "flattened", "nested")


class FieldListError(LookupError):
    """No field list for the data source, or the file is not in the expected shape."""


@dataclass(frozen=True)
class FieldList:
    datasource: str
    integration: str
    data_stream: str
    dynamic: bool  # False: undeclared fields are stored in _source but not indexed
    fields: Mapping[str, str]  # dotted name -> Elasticsearch type
    not_indexed: frozenset[str]  # mapped with index: false (ECS), not searchable


def _resource(datasource: str) -> Traversable:
    return resources.files("detpack") / "data" / "fields" / f"{datasource}.json"


@cache
def load_field_list(datasource: str) -> FieldList:
    resource = _resource(datasource)
    if not resource.is_file():
        raise FieldListError(
            f"no field list for data source {datasource!r} (detpack/data/fields/{datasource}.json); "
            "add it to scripts/extract_fields.py and rerun the script"
        )
    data: Any = json.loads(resource.read_text(encoding="utf-8"))
    fields = data.get("fields") if isinstance(data, dict) else None
    if not isinstance(fields, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
    ):
        raise FieldListError(f"detpack/data/fields/{datasource}.json: 'fields' must map names to types")
    return FieldList(
        datasource=datasource,
        integration=str(data.get("integration", "")),
        data_stream=str(data.get("data_stream", "")),
        dynamic=bool(data.get("dynamic", True)),
        fields=MappingProxyType(dict(fields)),
        not_indexed=frozenset(str(name) for name in data.get("not_indexed", [])),
    )


@cache
def load_field_types(datasource: str) -> Mapping[str, str]:
    """Dotted field name -> Elasticsearch type, for the data source's Elastic data stream (read-only)."""
    return load_field_list(datasource).fields


def is_open_type(es_type: str) -> bool:
    """True for types whose subfields are all mapped: object, object(<type>), nested, flattened."""
    return es_type in OPEN_TYPES or es_type.startswith("object(")


def field_type(types: Mapping[str, str], name: str) -> str | None:
    """The type of ``name``; for a subfield of an open field, that field's type (``object(text)``, ...)."""
    found = types.get(name)
    if found is not None:
        return found
    parts = name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:end])
        for candidate in (parent, parent + ".*"):
            parent_type = types.get(candidate)
            if parent_type is not None and is_open_type(parent_type):
                return parent_type
    # Names with a wildcard inside (`auditd.data.a*`) become dynamic templates whose path_match `*`
    # matches any characters, dots included (Elasticsearch dynamic templates, path_match).
    for pattern in _wildcard_names(types):
        if fnmatch.fnmatchcase(name, pattern):
            return types[pattern]
    return None


def _wildcard_names(types: Mapping[str, str]) -> list[str]:
    return sorted(n for n in types if "*" in n and not (n.endswith(".*") and "*" not in n[:-2]))


def field_known(types: Mapping[str, str], name: str) -> bool:
    """Whether the data stream maps ``name``: declared, or below a declared object/flattened/nested field."""
    return field_type(types, name) is not None


def document_fields(document: Mapping[str, Any]) -> Iterator[str]:
    """The dotted names of the leaf values of a nested document; lists are walked through, each name once.

    Empty objects and empty lists have no leaves. Keys that contain dots (flattened keys, Kubernetes
    annotation names) are joined as they are, which is how Elasticsearch addresses them too.
    """
    seen: set[str] = set()

    def walk(value: Any, path: str) -> Iterator[str]:
        if isinstance(value, Mapping):
            for key, item in value.items():
                yield from walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for item in value:
                yield from walk(item, path)
        elif path and path not in seen:
            seen.add(path)
            yield path

    yield from walk(document, "")
