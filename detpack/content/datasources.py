"""Data sources: what a rule's logsource means, which fields it has, and how each SIEM scopes it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detpack.content.yamlfile import load_yaml
from detpack.findings import ContentError, Finding, relpath

FIXTURE_FORMATS = ("json_lines", "sysmon_linux_syslog", "auditd_log")


@dataclass(frozen=True)
class DataSource:
    name: str
    title: str
    path: str
    logsource: tuple[tuple[str, str], ...]  # sorted (key, value) pairs: category/product/service
    rule_file_prefix: str
    fixture_format: str
    fields: frozenset[str]
    field_prefixes: tuple[str, ...]
    scope: tuple[tuple[str, str], ...]  # (field, value) pairs; a field listed twice accepts either value
    splunk_macro: str
    splunk_definition: str
    elastic_integration: str
    elastic_data_stream: str
    elastic_index: str

    def logsource_dict(self) -> dict[str, str]:
        return dict(self.logsource)

    def knows_field(self, field: str) -> bool:
        return field in self.fields or any(field.startswith(p) and field != p for p in self.field_prefixes)

    def in_scope(self, view: dict[str, Any]) -> bool:
        allowed: dict[str, set[str]] = {}
        for key, value in self.scope:
            allowed.setdefault(key, set()).add(value)
        return all(str(view.get(key)) in values for key, values in allowed.items())


def _required(doc: dict[str, Any], key: str, shown: str, lines: dict[Any, int]) -> Any:
    if key not in doc:
        raise ContentError(
            [
                Finding(
                    shown,
                    lines.get((), 1),
                    "datasource",
                    f"missing key {key!r}",
                    f"add {key}: to the data source definition",
                )
            ]
        )
    return doc[key]


def load_datasources(root: Path) -> dict[str, DataSource]:
    """Every datasources/*.yml, keyed by name."""
    result: dict[str, DataSource] = {}
    findings: list[Finding] = []
    for file in sorted((root / "datasources").glob("*.yml")):
        shown = relpath(file, root)
        try:
            doc = load_yaml(file, shown)
            data = doc.data
            if not isinstance(data, dict):
                raise ContentError(
                    [Finding(shown, 1, "datasource", "expected a mapping", "see docs/formats.md")]
                )
            name = _required(data, "name", shown, doc.lines)
            if name != file.stem:
                raise ContentError(
                    [
                        Finding(
                            shown,
                            doc.line_of(("name",)),
                            "datasource",
                            f"name {name!r} differs from the file name",
                            f"use name: {file.stem}",
                        )
                    ]
                )
            fmt = _required(data, "fixture_format", shown, doc.lines)
            if fmt not in FIXTURE_FORMATS:
                raise ContentError(
                    [
                        Finding(
                            shown,
                            doc.line_of(("fixture_format",)),
                            "datasource",
                            f"unknown fixture_format {fmt!r}",
                            f"use one of {', '.join(FIXTURE_FORMATS)}",
                        )
                    ]
                )
            splunk = _required(data, "splunk", shown, doc.lines)
            elastic = _required(data, "elastic", shown, doc.lines)
            result[name] = DataSource(
                name=name,
                title=str(_required(data, "title", shown, doc.lines)),
                path=shown,
                logsource=tuple(
                    sorted(
                        (str(k), str(v)) for k, v in _required(data, "logsource", shown, doc.lines).items()
                    )
                ),
                rule_file_prefix=str(_required(data, "rule_file_prefix", shown, doc.lines)),
                fixture_format=fmt,
                fields=frozenset(str(f) for f in _required(data, "fields", shown, doc.lines)),
                field_prefixes=tuple(str(p) for p in data.get("field_prefixes") or ()),
                scope=tuple(
                    sorted(
                        (str(k), str(item))
                        for k, v in (data.get("scope") or {}).items()
                        for item in (v if isinstance(v, list) else [v])
                    )
                ),
                splunk_macro=str(splunk["macro"]),
                splunk_definition=str(splunk["definition"]),
                elastic_integration=str(elastic["integration"]),
                elastic_data_stream=str(elastic["data_stream"]),
                elastic_index=str(elastic["index"]),
            )
        except ContentError as exc:
            findings.extend(exc.findings)
    if findings:
        raise ContentError(findings)
    return result


def datasource_for_logsource(
    datasources: dict[str, DataSource], logsource: dict[str, Any]
) -> DataSource | None:
    wanted = tuple(
        sorted(
            (k, str(v))
            for k, v in logsource.items()
            if k in ("category", "product", "service") and v is not None
        )
    )
    for ds in datasources.values():
        if ds.logsource == wanted:
            return ds
    return None
