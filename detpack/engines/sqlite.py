"""The Sigma reference engine: pySigma's SQLite backend, executed by SQLite over the reference view.

Sigma compares strings case-insensitively and treats a missing field as not matching; the SQLite
backend emits exactly that (LIKE, COLLATE NOCASE, COALESCE around NOT). One thing a SQLite column cannot
hold is a multi-valued field: a Pod with two containers has two `...containers.securityContext.privileged`
values, and a condition on the field must match when any value does (as Splunk and Elasticsearch do).
Such fields are stored as JSON arrays, and the backend below turns every comparison on them into
`EXISTS (SELECT 1 FROM json_each(field) WHERE <comparison on value>)`; NOT then means "no value matches".

Correlation rules run as the SQL pySigma's SQLite backend compiles for them (window functions over a
`timestamp` column; `sigma/backends/sqlite/correlation.py`). The table then has one more column,
`EVENT_TIME_COLUMN`, the event's time in epoch seconds (`detpack.ingest.timestamps`), and the backend is
told to read it as Unix seconds. The query returns one row per occurrence (group and window) with the
`event_ids` of the events in it: those are the events the correlation fires on (docs/formats.md).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sigma.backends.sqlite.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.conditions import ConditionFieldEqualsValueExpression
from sigma.conversion.state import ConversionState
from sigma.rule import SigmaRule

from detpack.ingest.reference import View

_WRAPPED = (
    "convert_condition_field_eq_val_str",
    "convert_condition_field_eq_val_str_case_sensitive",
    "convert_condition_field_eq_val_num",
    "convert_condition_field_eq_val_bool",
    "convert_condition_field_eq_val_re",
    "convert_condition_field_eq_val_cidr",
    "convert_condition_field_compare_op_val",
    "convert_condition_field_eq_val_timestamp_part",
)
_ELEMENT = "value"  # json_each's column holding one element
EVENT_TIME_COLUMN = "__detpack_event_time__"  # epoch seconds, for correlation rules


class ReferenceBackend(sqliteBackend):  # type: ignore[misc]
    """sqliteBackend that knows which fields are multi-valued in the loaded events."""

    def __init__(self, multivalued: frozenset[str], **options: Any) -> None:
        super().__init__(collate_nocase=True, **options)
        self.multivalued = multivalued


def _wrap(name: str) -> Callable[..., Any]:
    original = getattr(sqliteBackend, name)

    def method(
        self: ReferenceBackend, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        field = cond.field
        if field not in self.multivalued:
            return original(self, cond, state)
        cond.field = _ELEMENT
        try:
            inner = original(self, cond, state)
        finally:
            cond.field = field
        # logs.<field>: a bare name such as `type` or `key` would be json_each's own column of that name
        return f"EXISTS (SELECT 1 FROM json_each(logs.{self.escape_and_quote_field(field)}) WHERE {inner})"

    method.__name__ = name
    return method


for _name in _WRAPPED:
    setattr(ReferenceBackend, _name, _wrap(_name))


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regexp(pattern: str, value: Any) -> bool:
    return value is not None and _regex(pattern).search(str(value)) is not None


class ReferenceTableError(ValueError):
    pass


@dataclass
class ReferenceTable:
    """One data source's in-scope events in an in-memory SQLite table `logs` (rowid = event index)."""

    connection: sqlite3.Connection
    columns: dict[str, str]  # lower-case name -> field name
    multivalued: frozenset[str]
    count: int
    has_time: bool = False

    @classmethod
    def build(
        cls,
        views: list[View],
        fields: Iterable[str] | None = None,
        times: Sequence[float | None] | None = None,
    ) -> ReferenceTable:
        """A table of the given fields (default: every field of every view).

        Passing the fields the rules name keeps the table narrow: a Kubernetes audit event carries
        hundreds of paths under requestObject, and no query reads the others. `times` (one per view,
        epoch seconds or None) adds the event-time column that correlation rules need.
        """
        columns: dict[str, str] = {}
        names: Iterable[str] = fields if fields is not None else {n for view in views for n in view}
        for name in names:
            cls._add_column(columns, name)
        if times is not None and EVENT_TIME_COLUMN.lower() in columns:
            raise ReferenceTableError(f"a field is named {EVENT_TIME_COLUMN!r}, the reserved time column")
        if times is not None and len(times) != len(views):
            raise ReferenceTableError(f"{len(times)} event times for {len(views)} events")
        ordered = sorted(columns.values())
        multivalued = {n for n in ordered if any(isinstance(view.get(n), list) for view in views)}
        connection = sqlite3.connect(":memory:")
        connection.create_function("regexp", 2, _regexp, deterministic=True)
        quote = ReferenceBackend(frozenset()).escape_and_quote_field
        # NUMERIC affinity: "403" and 403 compare equal, as in Splunk and on Elasticsearch numeric fields.
        columns_sql = ", ".join(f"{quote(name)} NUMERIC COLLATE NOCASE" for name in ordered)
        if times is not None:
            columns_sql += f"{', ' if ordered else ''}{quote(EVENT_TIME_COLUMN)} REAL"
        connection.execute(
            f"CREATE TABLE logs (eid INTEGER PRIMARY KEY{', ' if columns_sql else ''}{columns_sql})"
        )
        placeholders = ", ".join("?" for _ in range(len(ordered) + 1 + (times is not None)))

        def row(index: int, view: View) -> list[Any]:
            values: list[Any] = [index]
            for name in ordered:
                value = view.get(name)
                if name in multivalued and value is not None:
                    values.append(json.dumps(value if isinstance(value, list) else [value]))
                else:
                    values.append(value)
            if times is not None:
                values.append(times[index])
            return values

        connection.executemany(
            f"INSERT INTO logs VALUES ({placeholders})", (row(i, v) for i, v in enumerate(views))
        )
        return cls(
            connection, {n.lower(): n for n in ordered}, frozenset(multivalued), len(views), times is not None
        )

    @staticmethod
    def _add_column(fields: dict[str, str], name: str) -> None:
        existing = fields.get(name.lower())
        if existing is not None and existing != name:
            raise ReferenceTableError(
                f"fields {existing!r} and {name!r} differ only in case; SQLite cannot hold both"
            )
        fields[name.lower()] = name

    def backend(self) -> ReferenceBackend:
        return ReferenceBackend(self.multivalued)

    def query_for(self, rule: SigmaRule) -> str:
        queries = self.backend().convert_rule(rule)
        if len(queries) != 1:
            raise ReferenceTableError(f"the SQLite backend gave {len(queries)} queries")
        return str(queries[0])

    def correlation_query(self, collection: SigmaCollection) -> str:
        """The SQL of the collection's one correlation rule (its base rules in the same collection)."""
        if not self.has_time:
            raise ReferenceTableError("the table has no event-time column; build it with times=")
        backend = ReferenceBackend(
            self.multivalued, timestamp_field=EVENT_TIME_COLUMN, timestamp_format="unix"
        )
        queries = backend.convert(collection)
        if len(queries) != 1:
            raise ReferenceTableError(f"the SQLite backend gave {len(queries)} queries for the correlation")
        return str(queries[0])

    def correlation_matches(self, sql: str) -> set[int]:
        """Indexes of the events in the occurrences (rows) a correlation query returns."""
        cursor = self.connection.execute(sql)
        names = [column[0] for column in cursor.description]
        if "event_ids" not in names:
            raise ReferenceTableError(f"unexpected correlation query result columns: {names}")
        position = names.index("event_ids")
        hits: set[int] = set()
        for row in cursor.fetchall():
            for event_id in json.loads(row[position]):
                # "<source table>:<rowid>" (sigma/backends/sqlite/correlation.py); one table here
                hits.add(int(str(event_id).rpartition(":")[2]))
        return hits

    def matches(self, sql: str) -> set[int]:
        """Indexes of the events the query matches."""
        select = "SELECT eid FROM logs WHERE "
        if not sql.startswith("SELECT * FROM logs WHERE "):
            raise ReferenceTableError(f"unexpected SQLite query shape: {sql[:60]}")
        return {row[0] for row in self.connection.execute(select + sql[len("SELECT * FROM logs WHERE ") :])}
