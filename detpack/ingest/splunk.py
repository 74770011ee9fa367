"""The Splunk view of a fixture event: the fields a search sees at search time, as Splunk names them.

`splunk_event(datasource, native, raw)` turns one recorded event into the `SplEvent` that
`detpack.engines.spl.SplQuery` evaluates. It is written from Splunk's documentation, separately from the
pack's Splunk pipelines (`pipelines/splunk/*.yml`), so that a converted rule that hits the right events
shows the two agree (see docs/formats.md and the design guide, section 4).

JSON data sources (`json_lines`: kubernetes_audit, docker_events, falco_alerts, zeek_conn, zeek_dns),
Splunk's JSON field extraction
(`KV_MODE = json` at search time or `INDEXED_EXTRACTIONS = json` at index time; both name fields the
same way, the way `spath` names the paths it auto-extracts):

* J1 nested keys are joined with dots: `objectRef.resource`. spath: "A location path is composed of one or
  more location steps, separated by periods. An example of this is vendorProductSet.product.desc."
  https://docs.splunk.com/Documentation/Splunk/9.4.0/SearchReference/Spath
* J2 every JSON list on the path appends `{}` to the name at that level: `sourceIPs{}`,
  `requestObject.spec.containers{}.image`, `requestObject.spec.containers{}.command{}`. spath examples:
  `spath output=commit_author path="commits{}.author.name"` takes the value of every element
  (https://help.splunk.com/en/splunk-enterprise/search/spl2-search-reference/spath-command/spath-command-examples);
  Splunk's own Kubernetes audit data source lists `sourceIPs{}` and `user.groups{}`
  (splunk/security_content `data_sources/kubernetes_audit.yml`, field list) and its Cron Job detection
  searches `requestObject.spec.jobTemplate.spec.template.spec.containers{}.image`.
* J3 a field under a list is multivalue: one value per element, in document order, even when the list
  has one element. HEC indexed extraction: for `"wins":["regionals","nationals"]` "the wins property is a
  multi-value JSON array" (https://help.splunk.com/splunk-enterprise/get-data-in/collect-http-event-data/
  automate-indexed-field-extractions-with-http-event-collector).
* J4 values are the JSON text of the leaf: strings decoded (JSON escapes such as `\\u0026` become the
  character), numbers as written in the event (`201`, `1.50`, `1795053133204117331`: Splunk extracts
  text, it does not convert numbers), booleans as `true` / `false` (the literal JSON tokens).
* J5 keys are kept verbatim, dots and slashes included: `annotations.authorization.k8s.io/decision`
  (splunk/security_content `data_sources/kubernetes_audit.yml` lists exactly that field).
* J6 an empty object or list has no leaf, so it gives no field (`responseStatus.metadata` of `{}`).
* J7 JSON `null`: ASSUMPTION. No Splunk documentation page found here says what the JSON extraction does
  with `null` (searched: spath, KV_MODE, HEC indexed extraction, the JSON eval functions). This model
  follows the behaviour reported by Splunk users, not verified here: the field exists with the literal
  text `null` as its value (`JSON_NULL_TEXT`), it is not left out. If that is wrong, only this constant
  changes. Consequence: Sigma's `field: null` (the backend writes `NOT field=*`) would not match a JSON
  null in Splunk. No rule of the pack reads a field that is null in a fixture.
* J8 two paths that spell the same name (a key `a.b` beside `a: {b: ...}`) give one multivalue field.
* J9 a top-level key named like one of the default fields Splunk gives every event (`index`, `sourcetype`,
  `source`, `host`, `_raw`, `_time`; `DEFAULT_FIELD_NAMES`) gives no value: the default field exists before
  search time, and a search-time extractor that finds "a field which already exists" discards the newly
  found value unless `MV_ADD = true` (transforms.conf spec, `MV_ADD`, default false; the default fields are
  listed in "Use default fields", Knowledge Manager Manual). So Falco's own `"source":"syscall"` is not in
  Splunk: `source` stays the input's source (`SOURCE_PLACEHOLDER` here), and a search on `source=syscall`
  tests the file or input name. The pack's Splunk pipeline refuses Sigma conditions on such a field
  (pipelines/splunk/falco_alerts.yml) rather than ship a search that reads the wrong value. ASSUMPTION: the
  automatic JSON extraction (KV_MODE = json) follows the documented rule of the other search-time
  extractors; no page found here describes KV_MODE itself on this point. Not modelled: `INDEXED_EXTRACTIONS
  = json`, which writes the key as an indexed field at index time.

Not modelled: the extraction limits (`[spath] extraction_cutoff`, 5000 characters, and `[kv] maxchars`
in limits.conf; every fixture event is shorter than 5000 characters) and JSON that is not one object.

AKS audit records (kubernetes_audit): Azure exports an AKS cluster's audit log as resource-log records
(`category` `kube-audit` or `kube-audit-admin`, `properties.log` = the audit event as a JSON *string*),
which reach Splunk through the Splunk Add-on for Microsoft Cloud Services (storage blob or Event Hub input).
* A1 the JSON extraction (J1-J8) names the record's own fields: `category`, `operationName`, `resourceId`,
  `properties.log` (one string field holding the whole audit event), `properties.pod`, ... The audit
  event's fields (`verb`, `objectRef.resource`, ...) exist only after `spath input=properties.log`; Splunk's
  own AKS searches do exactly that: `kubernetes_azure` category=kube-audit | spath input=properties.log |
  search ... (splunk/security_content, e.g. "Kubernetes Azure scan fingerprint", 2020).
* A2 sourcetype `mscs:storage:blob:json` (`AKS_SOURCETYPE`), the definition of security_content's
  `kubernetes_azure` macro (macros/kubernetes_azure.yml @71032608), not the sourcetype of the data source's
  macro: the pack's searches do not select these records, and would not match them if they did (A1).
  docs/decisions.md says how a SOC unwraps the record at index time so that the searches apply.

GKE Cloud Audit Log entries (kubernetes_audit; docs/decisions.md keeps them out of the data source's rules):
GKE writes the API server's audit events as Cloud Logging `LogEntry`s (`protoPayload`, `logName`
`projects/<p>/logs/cloudaudit.googleapis.com%2F<kind>`), which reach Splunk through the Splunk Add-on for
Google Cloud Platform's Pub/Sub input (Splunkbase app 3088): sourcetype `google:gcp:pubsub:message`
(`KV_MODE = json`), rewritten at index time by the add-on's transforms on `logName`
(`gcp_pubsub_activity_sourcetype`, `gcp_pubsub_data_access_sourcetype`, `gcp_pubsub_system_event_sourcetype`,
`gcp_pubsub_policy_sourcetype`; the add-on's default/transforms.conf, Splunk 2021, copy in
abhishekdk3/abhishekdk3 @e91ad4e4).
* A3 the fields are the LogEntry's own (J1-J9: `protoPayload.methodName`, `protoPayload.authorizationInfo{}.
  permission`, `logName`, ...), under sourcetype `google:gcp:pubsub:audit:admin_activity` (`%2Factivity`),
  `...:data_access`, `...:system_event` or `...:policy_denied` (`%2Fpolicy`), `google:gcp:pubsub:message`
  for any other logName (`GKE_AUDIT_SOURCETYPES`, `gke_sourcetype`). ASSUMPTIONS: the audit rewrites are the
  ones that stand (the add-on's catch-all `gcp_pubsub_platform_sourcetype` is not modelled), and the entry is
  indexed as the LogEntry itself; older inputs wrapped it as `data.protoPayload...`, which the add-on's own
  EVALs read as an alternative. Either way the data source's macro does not select it, and the audit event's
  fields (`verb`, `objectRef.resource`) do not exist.

Sysmon for Linux (`sysmon_linux_syslog`: linux_process_creation), as the Splunk Add-on for Sysmon for Linux
(Splunkbase app 6652, sourcetype `sysmon:linux`) extracts it. The add-on's props.conf / transforms.conf are
not in any source available here; its behaviour is taken from the field list Splunk publishes for it in
splunk/security_content `data_sources/sysmon_for_linux_eventid_1.yml` (`supported_TA: Splunk Add-on for
Sysmon for Linux`), which lists every field a search sees for Event ID 1:

* S1 every `<EventData><Data Name="X">v</Data>` becomes field `X` = `v` (`Image`, `CommandLine`,
  `ParentImage`, `ParentCommandLine`, `User`, `CurrentDirectory`, ..., all listed).
* S2 the `<System>` elements with text become fields named by the element: `EventID`, `Version`, `Level`,
  `Task`, `Opcode`, `Keywords`, `EventRecordID`, `Channel`, `Computer` (all listed).
* S3 `EventCode` = the EventID (listed). A Splunk-copyrighted Sysmon add-on transforms.conf (the Windows
  add-on, by its single-quoted XML attributes; seen as an unnamed excerpt in the code corpus) sets it with
  `[sysmon-eventid] REGEX = <EventID>(\\d+)</EventID>  FORMAT = EventCode::$1`.
* S4 the `<System>` attributes become fields named by the attribute: `Name` and `Guid` (Provider),
  `SystemTime` (TimeCreated), `ProcessID` and `ThreadID` (Execution), `UserId` (Security) (all listed;
  `ProcessID` of the Sysmon service is a different field from EventData's `ProcessId`).
* S5 `source` is `Syslog:Linux-Sysmon/Operational` (security_content's `source` for this data source),
  `host` is the syslog header's host (the same as `Computer` in every fixture).
* S6 one value per name, the first extraction's: an EventData `<Data Name="X">` whose name a System element
  or attribute already gave (S2-S4) does not add a value. Event ID 4 ("Sysmon service state changed") has
  `<Data Name="Version">1.3.3</Data>` (the Sysmon version) beside `<System><Version>3</Version>` (the event
  schema's): Splunk's Sysmon add-on extracts `[sysmon-version] REGEX = <Version>(\\d+)</Version>  FORMAT =
  Version::$1` as well as every `<Data Name=...>`, and a search-time extractor discards the value of "a
  field which already exists" unless `MV_ADD = true` (transforms.conf spec). ASSUMPTION: the System
  extractions run first, so `Version` is `3` (the excerpt of the add-on's transforms.conf seen here starts
  with its System stanzas, `[sysmon-eventid]`, `[sysmon-version]`, ...; the props.conf `REPORT-` order that
  decides is not available); in the other order it would be `1.3.3`. Either way it is one of the two, so a
  Sigma condition on EventData's `Version` cannot be trusted in Splunk, and the pack's pipeline refuses it
  (pipelines/splunk/linux_sysmon_service.yml).
* ASSUMPTIONS: values are the XML text with entities decoded (`&amp;` -> `&`); an add-on extracting with
  a regular expression over the raw XML would keep `&amp;`. The add-on's CIM fields (`process`,
  `process_name`, `parent_process`, `dest`, `user`, ...) and its XML helper fields (`EventData_Xml`,
  `System_Props_Xml`, `EventDescription`, `EventChannel`, `RecordID`) are not modelled: the pack's
  pipeline keeps the Sysmon names, so no converted rule reads them.

Every view also has the default fields Splunk adds to every event (Splunk's "default fields": `index`,
`sourcetype`, `source`, `host`, `_raw`). `index` and `sourcetype` come from the data source's
`splunk.definition` (`index=<x> sourcetype="<y>" ...`), parsed with the SPL evaluator's own parser: both
must be top-level `name=value` terms with a literal value. `host` is the event's own host when the format
records one (the syslog header for Sysmon), otherwise `HOST_PLACEHOLDER`; `source` for JSON data sources is
`SOURCE_PLACEHOLDER`. The default fields win over an extracted field of the same name (J9).

`_time` (T1) is the event's time in epoch seconds, "converted to UNIX time and stored in the _time field
when your data is indexed" (https://docs.splunk.com/Documentation/SCS/current/Search/Timestampsandtimeranges).
ASSUMPTION: the SOC's props.conf takes it from the data source's `timestamp_field` (datasources/*.yml;
TIMESTAMP_FIELDS for indexed JSON, TIME_PREFIX otherwise), the same instant the reference engine and
Elastic's `@timestamp` use. The caller passes it (`time=`, parsed by `detpack.ingest.timestamps`); without
it the view has no `_time` (Splunk would use the index time), which only correlation searches read.

`query_fields(query, macros)` lists the event fields a search reads, by walking the evaluator's parsed
commands (fields that `rex`, `eval` or `stats` create earlier in the same search are not event fields);
a transforming search (a correlation: `multisearch`, `bin`, `stats`) is read as a `SplStatsQuery`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from detpack.content.datasources import DataSource
from detpack.engines.spl import (
    SplEvent,
    SplQuery,
    SplStatsQuery,
    SplValue,
    _All,
    _And,
    _Bin,
    _Command,
    _Compare,
    _Eval,
    _EvalCall,
    _EvalExpr,
    _EvalField,
    _EvalString,
    _Expr,
    _In,
    _Multisearch,
    _Not,
    _Or,
    _Regex,
    _Rex,
    _Search,
    _Stats,
    _Table,
    _Where,
    _WhereCompare,
    _WhereNot,
)

__all__ = [
    "AKS_SOURCETYPE",
    "DEFAULT_FIELD_NAMES",
    "GKE_AUDIT_SOURCETYPES",
    "GKE_MESSAGE_SOURCETYPE",
    "HOST_PLACEHOLDER",
    "JSON_NULL_TEXT",
    "SOURCE_PLACEHOLDER",
    "SYSMON_LINUX_SOURCE",
    "SplunkViewError",
    "definition_scope",
    "gke_sourcetype",
    "json_fields",
    "query_fields",
    "splunk_event",
    "sysmon_linux_fields",
]

JSON_NULL_TEXT = "null"  # J7: the value Splunk's JSON extraction gives a JSON null (assumption, see above)
AKS_SOURCETYPE = "mscs:storage:blob:json"  # A2: AKS kube-audit records, Microsoft Cloud Services add-on
AKS_AUDIT_CATEGORIES = frozenset({"kube-audit", "kube-audit-admin"})
# A3: the Splunk Add-on for Google Cloud Platform's Pub/Sub sourcetype, and its index-time rewrites by logName
GKE_MESSAGE_SOURCETYPE = "google:gcp:pubsub:message"
GKE_AUDIT_SOURCETYPES = {
    "cloudaudit.googleapis.com%2Factivity": "google:gcp:pubsub:audit:admin_activity",
    "cloudaudit.googleapis.com%2Fdata_access": "google:gcp:pubsub:audit:data_access",
    "cloudaudit.googleapis.com%2Fsystem_event": "google:gcp:pubsub:audit:system_event",
    "cloudaudit.googleapis.com%2Fpolicy": "google:gcp:pubsub:audit:policy_denied",
}
HOST_PLACEHOLDER = "detpack-fixture-host"  # the event does not record the host that sent it
SOURCE_PLACEHOLDER = "detpack:fixture"  # the file or input a JSON fixture line would come from
SYSMON_LINUX_SOURCE = "Syslog:Linux-Sysmon/Operational"  # S5

DEFAULT_FIELDS = ("index", "sourcetype", "source", "host", "_raw")
DEFAULT_FIELD_NAMES = frozenset({*DEFAULT_FIELDS, "_time"})  # J9: an extracted key so named is discarded


class SplunkViewError(ValueError):
    """The event or the data source cannot be turned into a Splunk view; the message says why."""


# --------------------------------------------------------------------------------------------------
# JSON extraction
# --------------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise SplunkViewError(f"{name} is not JSON; Splunk's JSON extraction would not parse this event")


def _leaf_text(value: Any) -> str:
    if value is None:
        return JSON_NULL_TEXT  # J7
    if isinstance(value, bool):
        return "true" if value else "false"  # J4
    return str(value)  # strings, and numbers kept as their JSON text by parse_int/parse_float (J4)


def json_fields(raw: str) -> SplEvent:
    """The fields Splunk's JSON extraction gives one JSON object (rules J1-J8)."""
    try:
        document = json.loads(raw, parse_int=str, parse_float=str, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise SplunkViewError(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(document, dict):
        raise SplunkViewError(f"expected one JSON object, found {type(document).__name__}")
    values: dict[str, list[SplValue]] = {}
    multivalue: set[str] = set()

    def walk(value: Any, path: str, under_list: bool) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key), under_list)  # J1, J5
        elif isinstance(value, list):
            for item in value:  # J6: an empty list gives nothing
                walk(item, f"{path}{{}}", True)  # J2
        else:
            values.setdefault(path, []).append(_leaf_text(value))
            if under_list:
                multivalue.add(path)  # J3

    walk(document, "", False)
    view: SplEvent = {}
    for name, found in values.items():
        view[name] = found if name in multivalue or len(found) > 1 else found[0]  # J3, J8
    return view


# --------------------------------------------------------------------------------------------------
# Sysmon for Linux
# --------------------------------------------------------------------------------------------------


def _add(view: SplEvent, name: str, value: str) -> None:
    """Add a value; a second value for the same name makes the field multivalue."""
    if name not in view:
        view[name] = value
        return
    current = view[name]
    view[name] = [*current, value] if isinstance(current, list) else [current, value]


def _add_first(view: SplEvent, name: str, value: str) -> None:
    """Add a value unless the name already has one (S6: the first extraction wins, MV_ADD = false)."""
    view.setdefault(name, value)


def sysmon_linux_fields(native: Mapping[str, Any]) -> SplEvent:
    """The fields the Splunk Add-on for Sysmon for Linux gives one parsed Sysmon event (rules S1-S4, S6).

    `native` is `detpack.ingest.native.parse_sysmon_linux_syslog`'s result: `System` maps each System
    element to its text, or to its attributes when it has any; `EventData` maps each Data Name to its text.
    """
    system = native.get("System")
    event_data = native.get("EventData")
    if not isinstance(system, Mapping) or not isinstance(event_data, Mapping):
        raise SplunkViewError("expected a parsed Sysmon event with System and EventData sections")
    view: SplEvent = {}
    for tag, content in system.items():
        if isinstance(content, Mapping):
            for attribute, value in content.items():
                _add(view, str(attribute), str(value))  # S4
        elif content:
            _add(view, str(tag), str(content))  # S2; an empty element (<Correlation/>) gives nothing
    if "EventID" in system:
        _add(view, "EventCode", str(system["EventID"]))  # S3
    for name, value in event_data.items():
        _add_first(view, str(name), str(value))  # S1, S6: a name the System section gave keeps its value
    return view


# --------------------------------------------------------------------------------------------------
# Default fields and the data source's macro definition
# --------------------------------------------------------------------------------------------------


def _conjuncts(expr: _Expr) -> Iterable[_Expr]:
    if isinstance(expr, _And):
        for item in expr.items:
            yield from _conjuncts(item)
    else:
        yield expr


def definition_scope(definition: str) -> dict[str, str]:
    """`index` and `sourcetype` of a macro definition such as `index=k8s sourcetype="kube:audit" EventID=1`.

    The definition is parsed by the SPL evaluator's parser; `index` and `sourcetype` must each appear once
    as a top-level `name=value` term (not under OR or NOT) whose value has no wildcard.
    """
    try:
        query = SplQuery.parse(definition, {})
    except ValueError as exc:
        raise SplunkViewError(f"the Splunk definition {definition!r} does not parse: {exc}") from None
    first = query.commands[0] if query.commands else None
    if len(query.commands) != 1 or not isinstance(first, _Search):
        raise SplunkViewError(f"the Splunk definition {definition!r} must be search terms only, no '|'")
    scope: dict[str, str] = {}
    for term in _conjuncts(first.expr):
        if isinstance(term, _Compare) and term.name in ("index", "sourcetype") and term.op == "=":
            if term.name in scope:
                raise SplunkViewError(f"the Splunk definition {definition!r} names {term.name} twice")
            if "*" in term.value.text:
                raise SplunkViewError(
                    f"the Splunk definition {definition!r} has a wildcard {term.name}; "
                    "the view needs the one value the events are indexed with"
                )
            scope[term.name] = term.value.text
    missing = [name for name in ("index", "sourcetype") if name not in scope]
    if missing:
        raise SplunkViewError(
            f"the Splunk definition {definition!r} has no top-level {' or '.join(missing)}=<value> term"
        )
    return scope


# --------------------------------------------------------------------------------------------------
# Managed-cluster records of kubernetes_audit
# --------------------------------------------------------------------------------------------------


def gke_sourcetype(view: Mapping[str, Any]) -> str | None:
    """A3: the sourcetype of a GKE Cloud Audit Log entry (JSON fields with `protoPayload.*` and `logName`);
    None for any other event."""
    log_name = view.get("logName")
    if not isinstance(log_name, str) or not any(name.startswith("protoPayload.") for name in view):
        return None
    kind = log_name.rsplit("/", 1)[-1]
    return GKE_AUDIT_SOURCETYPES.get(kind, GKE_MESSAGE_SOURCETYPE)


def _managed_cluster_sourcetype(view: Mapping[str, Any]) -> str | None:
    if view.get("category") in AKS_AUDIT_CATEGORIES:
        return AKS_SOURCETYPE  # A1, A2: an AKS record, its audit event still a string
    return gke_sourcetype(view)  # A3


# --------------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------------


def splunk_event(datasource: DataSource, native: Any, raw: str, *, time: float | None = None) -> SplEvent:
    """The fields Splunk has at search time for one fixture event of `datasource`.

    `native` is the parsed event (`detpack.ingest.native.parse_native`), `raw` the fixture line as
    recorded (it becomes `_raw`; JSON fields are read from it so that numbers keep their JSON text).
    `time`, the event's time in epoch seconds, becomes `_time` (T1).
    """
    scope = definition_scope(datasource.splunk_definition)
    sourcetype = scope["sourcetype"]
    if datasource.fixture_format == "json_lines":
        view = json_fields(raw)
        source, host = SOURCE_PLACEHOLDER, HOST_PLACEHOLDER
        if datasource.name == "kubernetes_audit":
            sourcetype = _managed_cluster_sourcetype(view) or sourcetype
    elif datasource.fixture_format == "sysmon_linux_syslog":
        if not isinstance(native, Mapping):
            raise SplunkViewError("expected the parsed Sysmon event (parse_sysmon_linux_syslog's result)")
        view = sysmon_linux_fields(native)
        syslog = native.get("syslog")
        header_host = syslog.get("hostname") if isinstance(syslog, Mapping) else None
        computer = native["System"].get("Computer")
        source = SYSMON_LINUX_SOURCE
        host = str(header_host or computer or HOST_PLACEHOLDER)
    elif datasource.fixture_format == "auditd_log":  # raw audit.log records: detpack.ingest.auditd SK1-SK4
        from detpack.ingest.auditd import AUDIT_LOG_SOURCE, auditd_host, auditd_splunk_fields

        if not isinstance(native, Mapping):
            raise SplunkViewError("expected the parsed audit event (parse_auditd_event's result)")
        view = auditd_splunk_fields(native)
        source, host = AUDIT_LOG_SOURCE, auditd_host(native) or HOST_PLACEHOLDER
    else:
        raise SplunkViewError(
            f"data source {datasource.name}: no Splunk ingest model for fixture format "
            f"{datasource.fixture_format!r}"
        )
    for name in DEFAULT_FIELD_NAMES & view.keys():
        del view[name]  # J9: the default field exists first; the extracted value is discarded
    view.update(
        {
            "index": scope["index"],
            "sourcetype": sourcetype,
            "source": source,
            "host": host,
            "_raw": raw,
        }
    )
    if time is not None:
        view["_time"] = time
    return view


# --------------------------------------------------------------------------------------------------
# The fields a search reads
# --------------------------------------------------------------------------------------------------


def _search_fields(expr: _Expr) -> set[str]:
    if isinstance(expr, _And | _Or):
        return set().union(*(_search_fields(item) for item in expr.items))
    if isinstance(expr, _Not):
        return _search_fields(expr.item)
    if isinstance(expr, _Compare | _In):
        return {expr.name}
    if isinstance(expr, _All):
        return set()
    raise TypeError(f"query_fields does not know the search expression {type(expr).__name__}")


def _eval_fields(expr: _EvalExpr | _WhereCompare | _WhereNot) -> set[str]:
    if isinstance(expr, _EvalField):
        return {expr.name}
    if isinstance(expr, _EvalString):
        return set()
    if isinstance(expr, _EvalCall):
        return set().union(*(_eval_fields(arg) for arg in expr.args))
    if isinstance(expr, _WhereCompare):
        return _eval_fields(expr.left) | _eval_fields(expr.right)
    if isinstance(expr, _WhereNot):
        return _eval_fields(expr.item)
    raise TypeError(f"query_fields does not know the expression {type(expr).__name__}")


def _command_fields(command: _Command | _Stats) -> tuple[set[str], set[str]]:
    """(fields the command reads, fields it creates)."""
    if isinstance(command, _Bin):
        return {"_time"}, set()  # `bin _time span=...` rewrites _time in place
    if isinstance(command, _Stats):
        return {*command.by, *([command.argument] if command.argument else [])}, {command.name}
    if isinstance(command, _Search):
        return _search_fields(command.expr), set()
    if isinstance(command, _Rex):
        return {command.source}, set(command.regex.groupindex)
    if isinstance(command, _Regex):
        return {command.source}, set()
    if isinstance(command, _Eval):
        return _eval_fields(command.expr), {command.target}
    if isinstance(command, _Where):
        return _eval_fields(command.expr), set()
    if isinstance(command, _Table):
        return set(), set()  # `table` only chooses columns; the evaluator does not keep their names
    raise TypeError(f"query_fields does not know the command {type(command).__name__}")


def _walk_commands(
    commands: Iterable[_Command | _Stats], created: set[str], read: set[str]
) -> tuple[set[str], set[str]]:
    created, read = set(created), set(read)
    for command in commands:
        reads, creates = _command_fields(command)
        read |= reads - created
        created |= creates
    return created, read


def query_fields(query: SplQuery | SplStatsQuery | str, macros: Mapping[str, str] | None = None) -> set[str]:
    """The event fields a search reads: every field it tests, after macro expansion, in every command,
    except those an earlier command of the same search created (`rex` groups, `eval` targets, the `stats`
    aggregate). A text is parsed as a plain search (`SplQuery`); pass a `SplStatsQuery` for a transforming
    search (a correlation): each `multisearch` subsearch is walked, then `bin`, `stats` and what follows.

    detpack.engines.spl has no API for this, so the parsed commands are walked.
    """
    parsed = query if isinstance(query, SplQuery | SplStatsQuery) else SplQuery.parse(query, macros or {})
    if isinstance(parsed, SplQuery):
        return _walk_commands(parsed.commands, set(), set())[1]
    if isinstance(parsed.source, _Multisearch):
        created: set[str] = set()
        read: set[str] = set()
        for subsearch in parsed.source.searches:
            made, reads = _walk_commands(subsearch, set(), set())
            created |= made
            read |= reads
    else:
        created, read = _walk_commands([parsed.source], set(), set())
    return _walk_commands(parsed.commands, created, read)[1]
