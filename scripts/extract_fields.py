#!/usr/bin/env python3
"""Extract, for each of the pack's data sources, the fields its Elastic integration's data stream maps.

Inputs (``../shared``, never shipped):

* ``schemas-upstream/ecs/ecs_flat-9.5.0-dev.yml`` -- the Elastic Common Schema field definitions with their
  Elasticsearch types (Apache-2.0);
* ``reference-events/fields/<data stream>.fields.tsv`` -- Elastic's per-data-stream field lists, flattened
  from ``packages/<integration>/data_stream/<stream>/fields/*.yml`` of elastic/integrations (Elastic
  License 2.0): ``name<TAB>type<TAB>source_file``, where type ``ecs`` means "the type ECS defines".

Outputs (``detpack/data/fields/``, shipped with the package):

* ``<data source>.json`` -- ``{"data_stream", "integration", "datasource", "type", "dynamic", "provenance",
  "added", "not_added", "not_indexed", "fields": {"<dotted name>": "<Elasticsearch type>"}}``;
* ``PROVENANCE.md`` -- where every input came from, its sha256 and licence, and how to rebuild.

Type resolution: ``ecs`` rows take the ECS type, and the ECS multi-fields of that field come along as
``<field>.<sub>`` (``process.command_line.text``), as elastic-package imports them;
``multi_field:<type>`` rows become ``<field>.<sub>`` of that type; ``object(<type>)``, ``object`` and
``flattened`` are kept as they are so that engines know the subfields below them are dynamic (see
``detpack.ingest.fields.field_known``); ``group`` rows are skipped. Then the base fields every data stream
carries (``@timestamp``, ``data_stream.*``, ``event.dataset``, ``event.module``) and the ECS fields the
collector and ingest pipeline write for the pack's events are added from ECS when the list lacks them --
unless the data stream maps with ``dynamic: false``, where an undeclared field is kept in ``_source`` but
never indexed: those are listed under ``not_added``.

Deterministic (sorted keys, two-space indent, trailing newline); ``--check`` compares instead of writing and
exits 1 when a committed file is stale. Standard library plus PyYAML. From the repository root::

    python scripts/extract_fields.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHARED = REPO_ROOT.parent / "shared"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "detpack" / "data" / "fields"
ECS_FILE = "schemas-upstream/ecs/ecs_flat-9.5.0-dev.yml"
FIELDS_DIR = "reference-events/fields"
REGENERATE_COMMAND = "python scripts/extract_fields.py"

ECS_LICENCE = "Apache-2.0 (elastic/ecs; the licence text is ../shared/schemas-upstream/ecs/LICENSE.txt)"
INTEGRATION_LICENCE = (
    "Elastic License 2.0 (elastic/integrations). Only facts are extracted: field names and their "
    "Elasticsearch types; no descriptions or other text."
)

# Present in every data stream of an Elastic integration (index template and agent).
BASE_FIELDS = (
    "@timestamp",
    "data_stream.type",
    "data_stream.dataset",
    "data_stream.namespace",
    "event.dataset",
    "event.module",
)


@dataclass(frozen=True)
class DataStreamSpec:
    datasource: str  # the pack's data source (datasources/<name>.yml)
    integration: str
    data_stream: str
    stream_type: str  # logs | metrics
    tsv: str  # file name under reference-events/fields/
    upstream: str  # where the TSV rows come from (../shared/reference-events/README.md)
    dynamic: bool
    dynamic_source: str
    # ECS fields the collector (agent input, its processors) or the ingest pipeline writes for the pack's
    # events, with where that is documented. Added from ECS when the integration's list lacks them.
    written: tuple[tuple[str, str], ...]
    # TSV rows to leave out, as (name, source_file, reason): a field the package declares twice with two
    # types, where only one declaration reaches the index template. Listed in the output as "ignored_rows".
    ignored_rows: tuple[tuple[str, str, str], ...] = ()


_K8S_PIPELINE = (
    "ingest pipeline kubernetes.audit_logs default.yml (see detpack/ingest/ecs.py for the version and the "
    "published expected documents it reproduces)"
)
_SYSMON_PIPELINE = "ingest pipeline sysmon_linux.log default.yml @6321f22f9fc6 (elastic/integrations)"
_SYSMON_DECODE = (
    "agent processor decode_xml_wineventlog with map_ecs_fields (elastic/beats "
    "libbeat/processors/decode_xml_wineventlog/processor.go @c2281feb5db9)"
)
_SYSMON_SYSLOG = "agent processor syslog (stream filestream.yml.hbs @410bb7843766)"
_METRICBEAT = "Metricbeat docker/event metricset and module (elastic/beats metricbeat/module/docker/event)"
_FALCO_PIPELINE = "ingest pipeline falco.falco_alerts default.yml @19a0a918281e (elastic/integrations)"
_ZEEK_CONN_PIPELINE = "ingest pipeline zeek.connection default.yml @01dd5e029f7a (elastic/integrations)"
_AUDITBEAT = (
    "Auditbeat auditd module inside Elastic Agent (elastic/beats auditbeat/module/auditd/audit_linux.go "
    "buildMetricbeatEvent @03a003f34fe7) and ingest pipeline auditd_manager.auditd default.yml @0b8498535bad"
)

SPECS: tuple[DataStreamSpec, ...] = (
    DataStreamSpec(
        datasource="kubernetes_audit",
        integration="kubernetes",
        data_stream="kubernetes.audit_logs",
        stream_type="logs",
        tsv="kubernetes.audit_logs.fields.tsv",
        upstream=(
            "elastic/integrations packages/kubernetes/data_stream/audit_logs/fields/: "
            "fields.yml @0a35e489fcaa, ecs.yml @2ad6a0d60b2d, agent.yml @4f91048b5878, "
            "azure.yml @0ba83f3c10a0, base-fields.yml @3eefc68b4e9e"
        ),
        dynamic=False,
        dynamic_source=(
            "packages/kubernetes/data_stream/audit_logs/manifest.yml @19a53c7dc6a5: "
            "elasticsearch.index_template.mappings.dynamic: false (changelog 1.20.0: 'Disable dynamic "
            "mapping for audit_logs data_stream'); undeclared fields stay in _source but are not searchable"
        ),
        written=tuple(
            (name, _K8S_PIPELINE)
            for name in (
                "event.kind",
                "event.action",
                "event.outcome",
                "event.original",
                "user.name",
                "user.id",
                "user_agent.original",
                "source.ip",
                "client.ip",
                "orchestrator.type",
                "orchestrator.api_version",
                "orchestrator.namespace",
                "orchestrator.resource.name",
                "orchestrator.resource.type",
                "orchestrator.cluster.name",
                "orchestrator.cluster.id",
                "related.user",
                "related.ip",
                "cloud.provider",
                "tags",
                "error.message",
            )
        ),
    ),
    DataStreamSpec(
        datasource="linux_process_creation",
        integration="sysmon_linux",
        data_stream="sysmon_linux.log",
        stream_type="logs",
        tsv="sysmon_linux.log.fields.tsv",
        upstream=(
            "elastic/integrations packages/sysmon_linux/data_stream/log/fields/: winlog.yml @342b848caa34, "
            "ecs.yml @2cc3461df478, base-fields.yml @49d81a6f7494, beats.yml @02e28058ab11"
        ),
        dynamic=True,
        dynamic_source=(
            "packages/sysmon_linux/data_stream/log/manifest.yml @342b848caa34 sets no mapping options: "
            "Elasticsearch's default (dynamic: true) applies, so undeclared fields are still indexed by "
            "dynamic mapping (ECS names with their ECS types where the stack installs ecs@mappings)"
        ),
        written=(
            ("host.name", _SYSMON_DECODE + ": host.name = System/Computer"),
            (
                "host.hostname",
                _SYSMON_PIPELINE + ": rename log.syslog.hostname (from " + _SYSMON_SYSLOG + ")",
            ),
            ("message", _SYSMON_SYSLOG + ": the syslog message body, the <Event> XML"),
            ("log.level", _SYSMON_DECODE),
            ("ecs.version", _SYSMON_PIPELINE),
            ("event.kind", _SYSMON_PIPELINE),
            ("event.code", _SYSMON_PIPELINE),
            ("event.action", _SYSMON_PIPELINE),
            ("event.category", _SYSMON_PIPELINE),
            ("event.type", _SYSMON_PIPELINE),
            ("event.created", _SYSMON_PIPELINE),
            ("event.provider", _SYSMON_DECODE),
            ("rule.name", _SYSMON_PIPELINE),
            ("process.name", _SYSMON_PIPELINE + ": rename log.syslog.appname"),
            ("process.pid", _SYSMON_PIPELINE),
            ("process.entity_id", _SYSMON_PIPELINE),
            ("process.executable", _SYSMON_PIPELINE),
            ("process.command_line", _SYSMON_PIPELINE),
            ("process.args", _SYSMON_PIPELINE),
            ("process.args_count", _SYSMON_PIPELINE),
            ("process.working_directory", _SYSMON_PIPELINE),
            ("process.parent.entity_id", _SYSMON_PIPELINE),
            ("process.parent.pid", _SYSMON_PIPELINE),
            ("process.parent.executable", _SYSMON_PIPELINE),
            ("process.parent.command_line", _SYSMON_PIPELINE),
            ("process.parent.args", _SYSMON_PIPELINE),
            ("process.parent.args_count", _SYSMON_PIPELINE),
            ("process.pe.original_file_name", _SYSMON_PIPELINE),
            ("process.pe.company", _SYSMON_PIPELINE),
            ("process.pe.description", _SYSMON_PIPELINE),
            ("process.pe.file_version", _SYSMON_PIPELINE),
            ("process.pe.product", _SYSMON_PIPELINE),
            ("process.hash.md5", _SYSMON_PIPELINE),
            ("process.hash.sha1", _SYSMON_PIPELINE),
            ("process.hash.sha256", _SYSMON_PIPELINE),
            ("process.pe.imphash", _SYSMON_PIPELINE),
            ("related.hash", _SYSMON_PIPELINE),
            ("related.user", _SYSMON_PIPELINE),
            ("user.id", _SYSMON_PIPELINE),
            ("user.name", _SYSMON_PIPELINE),
            ("user.domain", _SYSMON_PIPELINE),
            ("tags", "agent stream configuration (preserve_original_event and user tags)"),
            ("event.original", "agent stream configuration (kept only with preserve_original_event)"),
        ),
    ),
    DataStreamSpec(
        datasource="docker_events",
        integration="docker",
        data_stream="docker.event",
        stream_type="metrics",
        tsv="docker.event.fields.tsv",
        upstream=(
            "elastic/integrations packages/docker/data_stream/event/fields/: fields.yml @79613ea9d7ff, "
            "base-fields.yml @c6fb89a35b59"
        ),
        dynamic=True,
        dynamic_source=(
            "packages/docker/data_stream/event/manifest.yml @2255e8550894 sets no mapping options: "
            "Elasticsearch's default (dynamic: true) applies"
        ),
        written=(
            ("@timestamp", _METRICBEAT + ": the event's time (seconds)"),
            ("event.module", _METRICBEAT),
            ("event.dataset", _METRICBEAT),
        ),
    ),
    DataStreamSpec(
        datasource="falco_alerts",
        integration="falco",
        data_stream="falco.falco_alerts",
        stream_type="logs",
        tsv="falco.falco_alerts.fields.tsv",
        upstream=(
            "elastic/integrations packages/falco/data_stream/falco_alerts/fields/: fields.yml @19a0a918281e, "
            "ecs.yml @285a847559cc, base-fields.yml @285a847559cc, agent.yml @285a847559cc"
        ),
        dynamic=True,
        dynamic_source=(
            "packages/falco/data_stream/falco_alerts/manifest.yml @a5a81facfe03 sets no mapping options: "
            "Elasticsearch's default (dynamic: true) applies"
        ),
        written=tuple(
            (name, _FALCO_PIPELINE)
            for name in (
                "event.kind",
                "event.provider",
                "event.severity",
                "event.sequence",
                "related.hosts",
                "tags",
            )
        ),
        ignored_rows=(
            (
                "container.image.name",
                "ecs.yml",
                "also declared keyword in agent.yml (ECS: keyword); Fleet keeps the first declaration of "
                "a field in file order (agent.yml), so the text override in ecs.yml is not applied "
                "(assumption)",
            ),
        ),
    ),
    DataStreamSpec(
        datasource="zeek_conn",
        integration="zeek",
        data_stream="zeek.connection",
        stream_type="logs",
        tsv="zeek.connection.fields.tsv",
        upstream=(
            "elastic/integrations packages/zeek/data_stream/connection/fields/: fields.yml @d76fd9bd96ef, "
            "ecs.yml @3b297db234c5, base-fields.yml @4c8ae666d530, beats.yml @314be490137b"
        ),
        dynamic=True,
        dynamic_source=(
            "packages/zeek/data_stream/connection/manifest.yml @7a78e0e06561 sets no mapping options: "
            "Elasticsearch's default (dynamic: true) applies"
        ),
        written=(("event.original", _ZEEK_CONN_PIPELINE + " (kept only with preserve_original_event)"),),
    ),
    DataStreamSpec(
        datasource="zeek_dns",
        integration="zeek",
        data_stream="zeek.dns",
        stream_type="logs",
        tsv="zeek.dns.fields.tsv",
        upstream=(
            "elastic/integrations packages/zeek/data_stream/dns/fields/: fields.yml @3b9527566b18, "
            "ecs.yml @0f9c831e5938, base-fields.yml @870a41e6a55b"
        ),
        dynamic=True,
        dynamic_source=(
            "packages/zeek/data_stream/dns/manifest.yml @a0939d5247f2 sets no mapping options: "
            "Elasticsearch's default (dynamic: true) applies"
        ),
        written=(("tags", "agent stream configuration (the stream's tags, default zeek-dns)"),),
    ),
    DataStreamSpec(
        datasource="linux_auditd",
        integration="auditd_manager",
        data_stream="auditd_manager.auditd",
        stream_type="logs",
        tsv="auditd_manager.auditd.fields.tsv",
        upstream=(
            "elastic/integrations packages/auditd_manager/data_stream/auditd/fields/: "
            "fields.yml @077c596570bb, ecs.yml @8f7e7ee3623d, base-fields.yml @2686c3706837"
        ),
        dynamic=True,
        dynamic_source=(
            "packages/auditd_manager/data_stream/auditd/manifest.yml @17207886f76b sets no mapping options: "
            "Elasticsearch's default (dynamic: true) applies"
        ),
        written=tuple(
            (name, _AUDITBEAT)
            for name in (
                "event.kind",
                "event.action",
                "event.category",
                "event.type",
                "event.sequence",
                "error.message",
                "event.original",
            )
        ),
        ignored_rows=tuple(
            (
                name,
                "fields.yml",
                f"declared flattened beside keyword declarations of its own subfields ({name}.*); Fleet then "
                "creates no flattened mapping and the subfields are mapped as declared (elastic/integrations "
                "PR #12541, 2025-01-30: 'If this field is declared as flattened, this is not created as "
                "mapping currently ... because there are other definitions present for auditd.data.<field>')",
            )
            for name in ("auditd.data", "auditd.paths")
        ),
    ),
    DataStreamSpec(
        datasource="linux_sysmon_service",
        integration="sysmon_linux",
        data_stream="sysmon_linux.log",
        stream_type="logs",
        tsv="sysmon_linux.log.fields.tsv",
        upstream=(
            "elastic/integrations packages/sysmon_linux/data_stream/log/fields/: winlog.yml @342b848caa34, "
            "ecs.yml @2cc3461df478, base-fields.yml @49d81a6f7494, beats.yml @02e28058ab11 (the same data "
            "stream as linux_process_creation: Sysmon for Linux Event IDs 4 and 16)"
        ),
        dynamic=True,
        dynamic_source=(
            "packages/sysmon_linux/data_stream/log/manifest.yml @342b848caa34 sets no mapping options: "
            "Elasticsearch's default (dynamic: true) applies"
        ),
        written=(
            ("host.name", _SYSMON_DECODE + ": host.name = System/Computer"),
            (
                "host.hostname",
                _SYSMON_PIPELINE + ": rename log.syslog.hostname (from " + _SYSMON_SYSLOG + ")",
            ),
            ("event.kind", _SYSMON_PIPELINE),
            ("event.code", _SYSMON_PIPELINE),
            ("event.action", _SYSMON_PIPELINE),
            ("event.category", _SYSMON_PIPELINE),
            ("event.type", _SYSMON_PIPELINE),
            ("event.created", _SYSMON_PIPELINE),
            ("event.provider", _SYSMON_DECODE),
            ("process.name", _SYSMON_PIPELINE + ": rename log.syslog.appname"),
            ("process.pid", _SYSMON_PIPELINE),
            ("tags", "agent stream configuration (preserve_original_event and user tags)"),
            ("event.original", "agent stream configuration (kept only with preserve_original_event)"),
        ),
    ),
)


class ExtractError(RuntimeError):
    """An input is missing or not in the expected shape; the message names the file and the problem."""


@dataclass(frozen=True)
class EcsField:
    type: str
    multi_fields: tuple[tuple[str, str], ...]  # (flat name, type)
    indexed: bool


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_ecs(path: Path) -> dict[str, EcsField]:
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, yaml.YAMLError) as exc:
        raise ExtractError(f"{path}: cannot read the ECS definitions: {exc}") from None
    if not isinstance(raw, dict):
        raise ExtractError(f"{path}: expected a mapping of flat field names")
    result: dict[str, EcsField] = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            raise ExtractError(f"{path}: field {name!r} has no type")
        multi = tuple(
            (str(item["flat_name"]), str(item["type"]))
            for item in spec.get("multi_fields") or []
            if isinstance(item, dict)
        )
        result[str(name)] = EcsField(spec["type"], multi, spec.get("index", True) is not False)
    return result


def read_tsv(path: Path) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ExtractError(f"{path}: cannot read: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise ExtractError(f"{path}:{number}: expected name<TAB>type<TAB>source_file, got {line!r}")
        rows.append((parts[0], parts[1], parts[2]))
    return rows


def _put(fields: dict[str, str], name: str, es_type: str, where: str) -> None:
    previous = fields.get(name)
    if previous is not None and previous != es_type:
        raise ExtractError(f"{where}: {name} is declared twice, as {previous} and as {es_type}")
    fields[name] = es_type


def resolve_fields(
    rows: Sequence[tuple[str, str, str]], ecs: Mapping[str, EcsField], where: str
) -> tuple[dict[str, str], set[str]]:
    """The TSV rows with types resolved; also the names ECS marks as not indexed (``index: false``)."""
    fields: dict[str, str] = {}
    not_indexed: set[str] = set()
    for name, es_type, _source in rows:
        if es_type == "group":
            continue
        if es_type == "ecs":
            definition = ecs.get(name)
            if definition is None:
                raise ExtractError(f"{where}: {name} is declared 'external: ecs' but ECS has no such field")
            _put(fields, name, definition.type, where)
            for sub_name, sub_type in definition.multi_fields:
                _put(fields, sub_name, sub_type, where)
            if not definition.indexed:
                not_indexed.add(name)
        elif es_type.startswith("multi_field:"):
            _put(fields, name, es_type.removeprefix("multi_field:"), where)
        else:
            _put(fields, name, es_type, where)
    return fields, not_indexed


def build_record(spec: DataStreamSpec, shared: Path, ecs: Mapping[str, EcsField]) -> dict[str, Any]:
    tsv_path = shared / FIELDS_DIR / spec.tsv
    ecs_path = shared / ECS_FILE
    ignored = {(name, source): reason for name, source, reason in spec.ignored_rows}
    rows = [row for row in read_tsv(tsv_path) if (row[0], row[2]) not in ignored]
    fields, not_indexed = resolve_fields(rows, ecs, f"{FIELDS_DIR}/{spec.tsv}")
    added: dict[str, str] = {}
    not_added: dict[str, str] = {}
    wanted = [(name, "base field of every data stream") for name in BASE_FIELDS] + list(spec.written)
    for name, why in wanted:
        if name in fields or name in added or name in not_added:
            continue
        definition = ecs.get(name)
        if definition is None:
            raise ExtractError(f"{spec.datasource}: {name} is to be added from ECS but ECS has no such field")
        if not spec.dynamic:
            not_added[name] = (
                f"{why}; not declared by the integration and the data stream maps with dynamic: false, "
                "so Elasticsearch would not index it"
            )
            continue
        added[name] = f"{why}; not declared by the integration, type from ECS (indexed by dynamic mapping)"
        fields[name] = definition.type
        if not definition.indexed:
            not_indexed.add(name)
    return {
        "datasource": spec.datasource,
        "integration": spec.integration,
        "data_stream": spec.data_stream,
        "type": spec.stream_type,
        "dynamic": spec.dynamic,
        "provenance": {
            "generated_by": f"scripts/extract_fields.py ({REGENERATE_COMMAND})",
            "dynamic": spec.dynamic_source,
            "sources": [
                {
                    "file": f"../shared/{FIELDS_DIR}/{spec.tsv}",
                    "sha256": sha256_of(tsv_path),
                    "upstream": spec.upstream,
                    "licence": INTEGRATION_LICENCE,
                },
                {
                    "file": f"../shared/{ECS_FILE}",
                    "sha256": sha256_of(ecs_path),
                    "upstream": "elastic/ecs generated/ecs/ecs_flat.yml, version 9.5.0-dev",
                    "licence": ECS_LICENCE,
                },
            ],
        },
        "added": dict(sorted(added.items())),
        "not_added": dict(sorted(not_added.items())),
        "not_indexed": sorted(not_indexed),
        "fields": dict(sorted(fields.items())),
    } | ({"ignored_rows": _ignored_rows(ignored)} if ignored else {})


def _ignored_rows(ignored: Mapping[tuple[str, str], str]) -> list[dict[str, str]]:
    return [{"name": n, "source_file": f, "reason": r} for (n, f), r in sorted(ignored.items())]


def render_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_provenance(records: Sequence[Mapping[str, Any]], shared: Path) -> str:
    ecs_sha = sha256_of(shared / ECS_FILE)
    lines = [
        "# Provenance of the data streams' field lists",
        "",
        "<!-- Generated by scripts/extract_fields.py; do not edit by hand, rerun the script. -->",
        "",
        "One JSON file per data source of the pack: the fields the Elastic integration's data stream maps,",
        "with their Elasticsearch types. `detpack.ingest.fields.load_field_types(<data source>)` reads",
        "them; a query that names a field the data stream does not map is an error (../shared/GUIDE.md,",
        "section 4).",
        "",
        "## Sources",
        "",
        "| file | sha256 | upstream | licence |",
        "|---|---|---|---|",
        f"| `../shared/{ECS_FILE}` | `{ecs_sha}` | elastic/ecs `generated/ecs/ecs_flat.yml` 9.5.0-dev "
        f"| {ECS_LICENCE} |",
    ]
    for record in records:
        source = record["provenance"]["sources"][0]
        lines.append(
            f"| `{source['file']}` | `{source['sha256']}` | {source['upstream']} | Elastic License 2.0 |"
        )
    lines += [
        "",
        "Licences: ECS is Apache-2.0. The integration field lists are Elastic License 2.0; only facts are",
        "taken from them (field names and types), no descriptions. Each TSV was flattened from the data",
        "stream's `fields/*.yml` at the commits listed (see ../shared/reference-events/README.md).",
        "",
        "## Method",
        "",
        "- `ecs` rows take the ECS type, and that field's ECS multi-fields come along as `<field>.<sub>`",
        "  (elastic-package imports them with the definition).",
        "- `multi_field:<type>` rows become `<field>.<sub>` of that type; `group` rows are skipped.",
        "- `object(<type>)`, `object` and `flattened` are kept: every subfield below them exists",
        "  (`detpack.ingest.fields.field_known`).",
        "- Base fields (`@timestamp`, `data_stream.*`, `event.dataset`, `event.module`) and the ECS fields",
        "  the collector and ingest pipeline write for the pack's events are added from ECS when the list",
        "  lacks them (`added`), except where the data stream maps with `dynamic: false`: there an",
        "  undeclared field stays in `_source` but is not indexed, so it is reported under `not_added`.",
        "- `not_indexed`: fields ECS defines with `index: false` (mapped, but not searchable).",
        "- ECS here is 9.5.0-dev; packages pin older ECS versions, whose types can differ in places.",
        "",
        "## Per data source",
        "",
        "| data source | data stream | dynamic | fields | added | not added |",
        "|---|---|---|---|---|---|",
    ]
    for record in records:
        added = ", ".join(f"`{name}`" for name in record["added"]) or "-"
        not_added = ", ".join(f"`{name}`" for name in record["not_added"]) or "-"
        lines.append(
            f"| `{record['datasource']}` | `{record['data_stream']}` ({record['type']}) "
            f"| {str(record['dynamic']).lower()} | {len(record['fields'])} | {added} | {not_added} |"
        )
    lines += [
        "",
        "## Regenerating",
        "",
        "From the repository root, with `../shared` next to it:",
        "",
        "```sh",
        REGENERATE_COMMAND,
        f"{REGENERATE_COMMAND} --check   # compare only; exit 1 if a file is stale",
        "```",
        "",
        "The output is deterministic (sorted keys, two-space indent, trailing newline);",
        "`tests/test_fields.py` checks that a rerun is byte-identical whenever `../shared` is present.",
        "",
    ]
    return "\n".join(lines)


def render_all(shared: Path) -> dict[str, str]:
    """Every output file name -> its content."""
    ecs = load_ecs(shared / ECS_FILE)
    records = [build_record(spec, shared, ecs) for spec in SPECS]
    outputs = {f"{record['datasource']}.json": render_json(record) for record in records}
    outputs["PROVENANCE.md"] = render_provenance(records, shared)
    return outputs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the ../shared directory")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUTPUT_DIR, help="where to write the files")
    parser.add_argument("--check", action="store_true", help="compare with the files instead of writing")
    args = parser.parse_args(argv)
    try:
        outputs = render_all(args.shared)
    except ExtractError as exc:
        print(f"extract_fields: {exc}", file=sys.stderr)
        return 2
    if args.check:
        stale = [
            name
            for name, text in sorted(outputs.items())
            if not (args.out / name).is_file() or (args.out / name).read_bytes() != text.encode("utf-8")
        ]
        for name in stale:
            print(f"stale: {args.out / name} (rerun {REGENERATE_COMMAND})", file=sys.stderr)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(outputs.items()):
        (args.out / name).write_bytes(text.encode("utf-8"))
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
