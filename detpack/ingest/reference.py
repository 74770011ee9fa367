"""The reference (Sigma) view of an event: flat field names, as the pack's rules are written.

JSON events are flattened by joining keys with dots. A list anywhere on the path makes the field
multi-valued: `requestObject.spec.containers.securityContext.privileged` holds one value per container.
That is how Splunk's JSON extraction and Elasticsearch's object mapping both see arrays, so a condition
on such a field matches when any of its values does.
"""

from __future__ import annotations

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


def reference_view(fixture_format: str, native: Any, wanted: frozenset[str] | None = None) -> View:
    if fixture_format == "sysmon_linux_syslog":
        return sysmon_view(native)
    return flatten(native, wanted)
