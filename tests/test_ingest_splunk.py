"""The Splunk view of fixture events (detpack/ingest/splunk.py), and every converted rule run on it.

Each naming rule of the ingest model is pinned by one test whose comment names where it comes from (the
rule labels J1-J9, A1-A3 and S1-S6 are those of the module docstring). The end-to-end tests convert every rule
with the pack's Splunk pipeline, run the SPL with detpack's evaluator over the Splunk view of every fixture
event, and compare the hits with the events' `*.expect.yml`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest

from detpack.content.datasources import DataSource, load_datasources
from detpack.content.fixtures import FixtureEvent
from detpack.content.pack import Pack, load_pack
from detpack.content.rules import RuleFile
from detpack.content.yamlfile import YamlDocument
from detpack.convert import TARGETS, convert_pack, convert_rule, pipeline_for
from detpack.correlation import building_blocks, run_engine, timestamp_field
from detpack.engines.spl import SplEvent, SplQuery, SplStatsQuery
from detpack.ingest.native import parse_sysmon_linux_syslog
from detpack.ingest.reference import flatten, reference_view
from detpack.ingest.splunk import (
    HOST_PLACEHOLDER,
    JSON_NULL_TEXT,
    SOURCE_PLACEHOLDER,
    SYSMON_LINUX_SOURCE,
    SplunkViewError,
    definition_scope,
    json_fields,
    query_fields,
    splunk_event,
)
from detpack.ingest.timestamps import parse_timestamp
from detpack.offline import configure_offline
from detpack.replay import load_differences
from detpack.validate.pack import validate_pack
from detpack.validate.rules import detection_keys
from tests.conftest import REPO_ROOT

DEFAULTS = ("index", "sourcetype", "source", "host", "_raw")


def datasource(name: str) -> DataSource:
    return load_datasources(REPO_ROOT)[name]


def json_view(document: str) -> SplEvent:
    """The Splunk view of a kubernetes_audit line, without the default fields."""
    view = splunk_event(datasource("kubernetes_audit"), None, document)
    return {name: value for name, value in view.items() if name not in DEFAULTS}


def spl(text: str, event: SplEvent) -> bool:
    return SplQuery.parse(text, {}).matches(event)


# --------------------------------------------------------------------------------------------------
# JSON extraction (kubernetes_audit, docker_events)
# --------------------------------------------------------------------------------------------------


def test_j1_nested_keys_are_joined_with_dots() -> None:
    # spath: "A location path is composed of one or more location steps, separated by periods. An example
    # of this is vendorProductSet.product.desc."
    # https://docs.splunk.com/Documentation/Splunk/9.4.0/SearchReference/Spath
    view = json_view(
        '{"verb":"get","objectRef":{"resource":"pods","subresource":"exec"},"a":{"b":{"c":"d"}}}'
    )
    assert view == {
        "verb": "get",
        "objectRef.resource": "pods",
        "objectRef.subresource": "exec",
        "a.b.c": "d",
    }


def test_j2_every_list_level_appends_braces() -> None:
    # spath examples: path="commits{}.author.name" reads a key of every element of the commits list
    # https://help.splunk.com/en/splunk-enterprise/search/spl2-search-reference/spath-command/spath-command-examples
    # splunk/security_content data_sources/kubernetes_audit.yml lists sourceIPs{} and user.groups{}.
    view = json_view(
        '{"sourceIPs":["198.51.100.7"],"user":{"groups":["system:masters","system:authenticated"]},'
        '"requestObject":{"spec":{"containers":[{"image":"alpine","command":["sh","-c","id"]},'
        '{"image":"busybox"}]}},"matrix":[[1,2],[3]]}'
    )
    assert view == {
        "sourceIPs{}": ["198.51.100.7"],
        "user.groups{}": ["system:masters", "system:authenticated"],
        "requestObject.spec.containers{}.image": ["alpine", "busybox"],
        "requestObject.spec.containers{}.command{}": ["sh", "-c", "id"],
        "matrix{}{}": ["1", "2", "3"],
    }
    assert "sourceIPs" not in view and "requestObject.spec.containers.image" not in view


def test_j3_a_field_under_a_list_is_multivalue_and_matches_on_any_value() -> None:
    # HEC indexed extraction: for "wins":["regionals","nationals"], "the wins property is a multi-value JSON
    # array" https://help.splunk.com/splunk-enterprise/get-data-in/collect-http-event-data/automate-indexed-field-extractions-with-http-event-collector
    # A Pod whose SECOND container is the privileged one (design guide, section 5).
    view = json_view(
        '{"requestObject":{"spec":{"containers":['
        '{"name":"app","securityContext":{"privileged":false}},'
        '{"name":"log-helper","securityContext":{"privileged":true}}]}}}'
    )
    assert view["requestObject.spec.containers{}.securityContext.privileged"] == ["false", "true"]
    assert spl('"requestObject.spec.containers{}.securityContext.privileged"=true', view)
    one = json_view('{"sourceIPs":["10.0.0.1"]}')
    assert one["sourceIPs{}"] == ["10.0.0.1"]  # one element is still a list of values
    assert spl('"sourceIPs{}"="10.0.0.0/8"', one)
    assert not spl("sourceIPs=*", one)  # the un-braced name does not exist


def test_j4_values_are_the_json_text_of_the_leaf() -> None:
    # Splunk extracts text from _raw: numbers as written, booleans as the JSON tokens true/false, strings
    # with JSON escapes decoded (spath reference, "Usage"; the SPL evaluator's value rules).
    view = json_view(
        '{"code":201,"ratio":1.50,"big":1795053133204117331,"exp":1e3,"neg":-0.0,'
        '"on":true,"off":false,"uri":"/api?a=1\\u0026b=2","empty":""}'
    )
    assert view == {
        "code": "201",
        "ratio": "1.50",
        "big": "1795053133204117331",
        "exp": "1e3",
        "neg": "-0.0",
        "on": "true",
        "off": "false",
        "uri": "/api?a=1&b=2",
        "empty": "",
    }
    assert spl("code=201 on=true off=false", view)
    assert spl('uri="*&b=2"', view)


def test_j5_keys_are_kept_verbatim() -> None:
    # splunk/security_content data_sources/kubernetes_audit.yml lists
    # annotations.authorization.k8s.io/decision: the dots and the slash of the key stay.
    view = json_view(
        '{"annotations":{"authorization.k8s.io/decision":"allow","pod-security.kubernetes.io/enforce-policy":'
        '"privileged:latest"},"user":{"extra":{"authentication.kubernetes.io/node-name":["worker-2"]}}}'
    )
    assert view == {
        "annotations.authorization.k8s.io/decision": "allow",
        "annotations.pod-security.kubernetes.io/enforce-policy": "privileged:latest",
        "user.extra.authentication.kubernetes.io/node-name{}": ["worker-2"],
    }
    assert spl('"annotations.authorization.k8s.io/decision"="allow"', view)


def test_j6_empty_objects_and_lists_give_no_field() -> None:
    # An empty object or list has no leaf value to extract (spath auto-extract extracts values).
    view = json_view('{"responseStatus":{"metadata":{},"code":200},"sourceIPs":[],"a":[{}]}')
    assert view == {"responseStatus.code": "200"}
    assert spl("NOT sourceIPs{}=*", view)


def test_j7_json_null_is_the_text_null() -> None:
    # ASSUMPTION (module docstring, J7): no documentation page found; modelled as the literal text "null".
    view = json_view('{"requestObject":{"metadata":{"creationTimestamp":null}},"list":[null,"x"]}')
    assert JSON_NULL_TEXT == "null"
    assert view == {"requestObject.metadata.creationTimestamp": "null", "list{}": ["null", "x"]}
    # So `NOT field=*` (Sigma `field: null`) does not match a JSON null in this model.
    assert not spl("NOT requestObject.metadata.creationTimestamp=*", view)


def test_j8_two_paths_with_the_same_name_make_one_multivalue_field() -> None:
    # Splunk keys fields by name: both values land in the one field.
    view = json_view('{"a.b":"flat","a":{"b":"nested"}}')
    assert view == {"a.b": ["flat", "nested"]}


def test_invalid_json_is_refused() -> None:
    for line, message in (
        ('{"a":', "not valid JSON"),
        ('["a"]', "expected one JSON object"),
        ('{"a":NaN}', "NaN is not JSON"),
    ):
        with pytest.raises(SplunkViewError, match=message):
            json_fields(line)


def test_json_default_fields() -> None:
    # Splunk's default fields: index, sourcetype, source, host, _raw. index and sourcetype come from the
    # data source's splunk.definition; JSON events record no host, so host and source are placeholders.
    raw = '{"Type":"container","Action":"pause","Actor":{"ID":"abc","Attributes":{"image":"falco"}}}'
    view = splunk_event(datasource("docker_events"), None, raw)
    assert view["index"] == "docker"
    assert view["sourcetype"] == "docker:events"
    assert view["source"] == SOURCE_PLACEHOLDER
    assert view["host"] == HOST_PLACEHOLDER
    assert view["_raw"] == raw
    assert view["Actor.Attributes.image"] == "falco"


def test_default_fields_win_over_an_extracted_field_of_the_same_name() -> None:
    view = splunk_event(datasource("docker_events"), None, '{"index":"other","host":"h","x":"1"}')
    assert view["index"] == "docker" and view["host"] == HOST_PLACEHOLDER and view["x"] == "1"


# --------------------------------------------------------------------------------------------------
# The data source's macro definition
# --------------------------------------------------------------------------------------------------


def test_definition_scope_reads_index_and_sourcetype() -> None:
    assert definition_scope('index=linux sourcetype="sysmon:linux" EventID=1') == {
        "index": "linux",
        "sourcetype": "sysmon:linux",
    }
    assert definition_scope('(sourcetype="kube:apiserver:audit") index="k8s"') == {
        "index": "k8s",
        "sourcetype": "kube:apiserver:audit",
    }


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ("index=linux", "no top-level sourcetype"),
        ('sourcetype="a"', "no top-level index"),
        ("index=a OR index=b sourcetype=s", "no top-level index"),
        ("NOT index=a sourcetype=s", "no top-level index"),
        ("index=a* sourcetype=s", "wildcard index"),
        ("index=a index=b sourcetype=s", "names index twice"),
        ('index=a sourcetype=s | regex x="y"', "search terms only"),
        ('index="a', "does not parse"),
    ],
)
def test_definition_scope_refuses_what_it_cannot_read(definition: str, message: str) -> None:
    with pytest.raises(SplunkViewError, match=message):
        definition_scope(definition)


def test_every_data_source_definition_gives_a_scope() -> None:
    for ds in load_datasources(REPO_ROOT).values():
        scope = definition_scope(ds.splunk_definition)
        assert scope["index"] and scope["sourcetype"], ds.name


def test_unknown_fixture_format_is_refused() -> None:
    ds = dataclasses.replace(datasource("docker_events"), fixture_format="cef_lines")
    with pytest.raises(SplunkViewError, match="no Splunk ingest model for fixture format 'cef_lines'"):
        splunk_event(ds, None, "{}")


# --------------------------------------------------------------------------------------------------
# Sysmon for Linux (the Splunk Add-on for Sysmon for Linux)
# --------------------------------------------------------------------------------------------------

SYSMON_LINE = (
    'Nov 21 01:05:22 worker-2 sysmon: <Event><System><Provider Name="Linux-Sysmon" '
    'Guid="{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"/><EventID>1</EventID><Version>5</Version><Level>4</Level>'
    "<Task>1</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords>"
    '<TimeCreated SystemTime="2026-11-21T01:05:22.644517000Z"/><EventRecordID>40091</EventRecordID>'
    '<Correlation/><Execution ProcessID="812" ThreadID="812"/><Channel>Linux-Sysmon/Operational</Channel>'
    '<Computer>node-a</Computer><Security UserId="0"/></System><EventData>'
    '<Data Name="RuleName">-</Data><Data Name="ProcessId">51377</Data><Data Name="Image">/usr/bin/bash</Data>'
    '<Data Name="CommandLine">bash -c id &gt;/dev/null 2&gt;&amp;1</Data>'
    '<Data Name="ParentImage">/usr/bin/containerd-shim-runc-v2</Data><Data Name="User">root</Data>'
    "</EventData></Event>"
)


def sysmon_view(line: str = SYSMON_LINE) -> SplEvent:
    return splunk_event(datasource("linux_process_creation"), parse_sysmon_linux_syslog(line), line)


def test_s1_event_data_names_are_the_field_names() -> None:
    # splunk/security_content data_sources/sysmon_for_linux_eventid_1.yml (supported_TA: Splunk Add-on for
    # Sysmon for Linux) lists Image, CommandLine, ParentImage, User, ProcessId, RuleName, ... as fields.
    view = sysmon_view()
    assert view["Image"] == "/usr/bin/bash"
    assert view["ParentImage"] == "/usr/bin/containerd-shim-runc-v2"
    assert view["User"] == "root"
    assert view["RuleName"] == "-"
    assert view["ProcessId"] == "51377"
    assert "Data" not in view and "EventData" not in view


def test_s1_values_have_xml_entities_decoded() -> None:
    # ASSUMPTION (module docstring): the value is the XML text, entities decoded.
    assert sysmon_view()["CommandLine"] == "bash -c id >/dev/null 2>&1"


def test_s2_s3_system_elements_and_event_code() -> None:
    # The same field list has EventID and EventCode (both), Computer, Channel, Version, Level, Task, Opcode,
    # Keywords, EventRecordID. EventCode: [sysmon-eventid] ... FORMAT = EventCode::$1 (Splunk's Sysmon TA).
    view = sysmon_view()
    assert view["EventID"] == "1" and view["EventCode"] == "1"
    assert view["Computer"] == "node-a"
    assert view["Channel"] == "Linux-Sysmon/Operational"
    assert (view["Version"], view["Level"], view["Task"], view["Opcode"]) == ("5", "4", "1", "0")
    assert view["Keywords"] == "0x8000000000000000"
    assert view["EventRecordID"] == "40091"
    assert "Correlation" not in view  # an empty element holds no value


def test_s4_system_attributes_are_named_by_the_attribute() -> None:
    # The same field list has Name, Guid, SystemTime, ProcessID, ThreadID and UserId.
    view = sysmon_view()
    assert view["Name"] == "Linux-Sysmon"
    assert view["Guid"] == "{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"
    assert view["SystemTime"] == "2026-11-21T01:05:22.644517000Z"
    assert (view["ProcessID"], view["ThreadID"], view["UserId"]) == ("812", "812", "0")
    assert view["ProcessId"] == "51377"  # EventData's ProcessId is a different (case-sensitive) field


def test_s5_sysmon_default_fields() -> None:
    # source per security_content's data source (Syslog:Linux-Sysmon/Operational); host from the syslog
    # header; index and sourcetype from datasources/linux_process_creation.yml's splunk.definition.
    view = sysmon_view()
    assert view["source"] == SYSMON_LINUX_SOURCE == "Syslog:Linux-Sysmon/Operational"
    assert view["host"] == "worker-2"
    assert (view["index"], view["sourcetype"]) == ("linux", "sysmon:linux")
    assert view["_raw"] == SYSMON_LINE
    macros = {"m": datasource("linux_process_creation").splunk_definition}
    assert SplQuery.parse('`m` Image="*/bash" CommandLine="*2>&1"', macros).matches(view)
    other = SYSMON_LINE.replace("<EventID>1</EventID>", "<EventID>5</EventID>")
    assert not SplQuery.parse('`m` Image="*/bash"', macros).matches(sysmon_view(other))


# --------------------------------------------------------------------------------------------------
# query_fields
# --------------------------------------------------------------------------------------------------


def test_query_fields_walks_every_command_after_macro_expansion() -> None:
    macros = {"scope": 'index=k8s sourcetype="kube:apiserver:audit"'}
    text = (
        '`scope` verb IN ("create", "patch") NOT ("requestObject.spec.containers{}.image"="x*" OR a!=1) '
        '| rex field=requestURI "(?<requestURIMatch>command=sh)" '
        '| eval requestURICondition=if(isnotnull(requestURIMatch), "true", "false") '
        '| search requestURICondition="true" OR b=2 '
        "| regex userAgent=\"kubectl\" | where NOT 'c'='d' | table verb"
    )
    assert query_fields(text, macros) == {
        "index",
        "sourcetype",
        "verb",
        "requestObject.spec.containers{}.image",
        "a",
        "requestURI",
        "b",
        "userAgent",
        "c",
        "d",
    }
    assert query_fields(SplQuery.parse('* | regex "x"', {})) == {"_raw"}


def test_query_fields_counts_a_field_read_before_a_command_creates_it() -> None:
    assert query_fields('x=1 | rex field=y "(?<x>.)" | search x=2', {}) == {"x", "y"}


def test_query_fields_reads_a_correlation_search() -> None:
    # A transforming search (SplStatsQuery): the base search's fields, `_time` (bin), the BY fields; the
    # aggregate `stats` creates (event_count) is not an event field, nor an `eval` target of a subsearch.
    macros = {"m": 'index=zeek sourcetype="zeek:conn:json"'}
    single = SplStatsQuery.parse(
        '`m` proto="tcp" conn_state="SF"\n| bin _time span=1h\n'
        "| stats count as event_count by _time id.orig_h id.resp_h\n| search event_count >= 12",
        macros,
    )
    assert query_fields(single) == {
        "index",
        "sourcetype",
        "proto",
        "conn_state",
        "_time",
        "id.orig_h",
        "id.resp_h",
    }
    multi = SplStatsQuery.parse(
        '| multisearch [ search `m` a=1 | eval event_type="r1" ] [ search `m` b=2 | eval event_type="r2" ]\n'
        "| bin _time span=10m\n| stats dc(event_type) as event_type_count by _time c\n"
        "| search event_type_count >= 2",
        macros,
    )
    assert query_fields(multi) == {"index", "sourcetype", "a", "b", "_time", "c"}


# --------------------------------------------------------------------------------------------------
# Names a search cannot read in Splunk: default fields (J9) and Sysmon's System/EventData clash (S6)
# --------------------------------------------------------------------------------------------------

FALCO_LINE = (
    '{"hostname":"worker-5","output":"x","output_fields":{"proc.cmdline":"bash -i"},"priority":"Notice",'
    '"rule":"Redirect STDOUT/STDIN to Network Connection in Container","source":"syscall",'
    '"tags":["container"],"time":"2026-11-18T09:14:27.318204117Z"}'
)


def test_j9_a_json_key_named_like_a_default_field_gives_no_value() -> None:
    # transforms.conf spec, MV_ADD: "Controls what the extractor does when it finds a field which already
    # exists. If set to true, the extractor makes the field a multivalued field and appends the newly found
    # value, otherwise the newly found value is discarded. Default: false." `source` is a default field
    # ("Use default fields", Knowledge Manager Manual), present before any search-time extraction.
    view = splunk_event(datasource("falco_alerts"), None, FALCO_LINE)
    assert view["source"] == SOURCE_PLACEHOLDER
    assert "syscall" not in [value for name, value in view.items() if name != "_raw"]
    assert view["rule"] == "Redirect STDOUT/STDIN to Network Connection in Container"
    macros = {"m": datasource("falco_alerts").splunk_definition}
    assert not SplQuery.parse("`m` source=syscall", macros).matches(view)
    timed = splunk_event(datasource("docker_events"), None, '{"_time":"1","Type":"container"}')
    assert "_time" not in timed  # no time given: the JSON key does not become _time either


def test_s6_event_data_does_not_add_a_value_to_a_system_name() -> None:
    # Event ID 4: <System><Version>3</Version> and <Data Name="Version">1.3.3</Data>. Splunk's Sysmon add-on
    # extracts [sysmon-version] FORMAT = Version::$1 and every Data element; MV_ADD = false keeps one value.
    line = (
        'Nov 21 01:17:31 worker-2 sysmon: <Event><System><Provider Name="Linux-Sysmon" '
        'Guid="{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"/><EventID>4</EventID><Version>3</Version>'
        "<Level>4</Level><Computer>worker-2</Computer></System><EventData>"
        '<Data Name="UtcTime">2026-11-21 01:17:31.204</Data><Data Name="State">Stopped</Data>'
        '<Data Name="Version">1.3.3</Data><Data Name="SchemaVersion">4.81</Data></EventData></Event>'
    )
    view = splunk_event(datasource("linux_sysmon_service"), parse_sysmon_linux_syslog(line), line)
    assert view["Version"] == "3"  # one value, the System element's (S6 ordering assumption)
    assert (view["State"], view["SchemaVersion"], view["EventCode"]) == ("Stopped", "4.81", "4")


def _convert_splunk(logsource: dict[str, str], detection: dict[str, Any]) -> tuple[str | None, str | None]:
    """Convert a one-selection rule with the pack's Splunk pipelines: (query, finding message)."""
    configure_offline()
    data = {
        "title": "t",
        "logsource": logsource,
        "detection": {"selection": detection, "condition": "selection"},
    }
    rule = RuleFile("rules/x/t.yml", YamlDocument("rules/x/t.yml", data))
    query, finding = convert_rule(rule, TARGETS["splunk"], pipeline_for(converted().pack, TARGETS["splunk"]))
    return (query.text if query else None), (finding.message if finding else None)


# (data source, Sigma field): fields of a data source that Splunk cannot search under their own name.
UNSEARCHABLE_IN_SPLUNK = {
    ("falco_alerts", "source"): "Splunk default field",  # J9
    ("linux_sysmon_service", "Version"): "System/Version",  # S6
}


@pytest.mark.parametrize(("name", "field"), sorted(UNSEARCHABLE_IN_SPLUNK))
def test_the_splunk_pipeline_refuses_a_field_splunk_cannot_read(name: str, field: str) -> None:
    ds = datasource(name)
    query, message = _convert_splunk(ds.logsource_dict(), {field: "x"})
    assert query is None
    assert message is not None and UNSEARCHABLE_IN_SPLUNK[(name, field)] in message, message
    other = next(f for f in ds.fields if f != field and f != "EventID")
    query, message = _convert_splunk(ds.logsource_dict(), {other: "x"})
    assert message is None and query is not None, f"{name}.{other} should convert: {message}"


def test_every_field_splunk_cannot_read_is_refused() -> None:
    # Which data-source fields collide, worked out from the rules above, not from the code: a JSON data
    # source's field named like a default field (J9), a Sysmon EventData name that is also a System element
    # or attribute of its events (S6). A new collision fails here until its pipeline refuses it.
    defaults = {"index", "sourcetype", "source", "host", "_raw", "_time"}
    system_names = {"EventID", "Version", "Level", "Task", "Opcode", "Keywords", "EventRecordID", "Channel"}
    system_names |= {"Computer", "Name", "Guid", "SystemTime", "ProcessID", "ThreadID", "UserId", "EventCode"}
    found = set()
    for ds in load_datasources(REPO_ROOT).values():
        if ds.fixture_format == "json_lines":
            found |= {(ds.name, f) for f in ds.fields if f in defaults}
        if ds.fixture_format == "sysmon_linux_syslog":
            # EventID and Computer are read from System by the reference view too (no clash)
            found |= {(ds.name, f) for f in ds.fields if f in system_names - {"EventID", "Computer"}}
    assert found == set(UNSEARCHABLE_IN_SPLUNK)


# --------------------------------------------------------------------------------------------------
# Every fixture event, and every rule end to end
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Converted:
    pack: Pack
    queries: dict[str, str]  # rule name -> SPL
    macros: dict[str, str]
    blocks: dict[str, str]  # building block -> its correlation (never converted or run alone)
    # (rule, event key) -> reason, for engine spl in tests/engine-differences.yml
    differences: dict[tuple[str, str], str]
    views: dict[str, SplEvent]  # event key -> Splunk view, with _time as detpack test gives it


@cache
def converted() -> Converted:
    configure_offline()
    pack = load_pack(REPO_ROOT)
    validation = validate_pack(pack)  # binds every event's expectation
    assert not validation.errors, "\n".join(str(f) for f in validation.errors)
    queries, findings = convert_pack(pack, targets=["splunk"])
    assert not findings, "\n".join(str(f) for f in findings)
    macros = {ds.splunk_macro: ds.splunk_definition for ds in pack.datasources.values()}
    differences = {(d.rule, d.event): d.reason for d in load_differences(pack) if d.engine == "spl"}
    views = {}
    for ds, event in all_events(pack):
        time_field = timestamp_field(pack.root, ds)
        time = parse_timestamp(event.view.get(time_field)) if time_field else None
        views[event.key] = splunk_event(ds, event.native, event.raw, time=time)
    return Converted(
        pack, {q.rule: q.text for q in queries}, macros, building_blocks(pack), differences, views
    )


def all_events(pack: Pack) -> list[tuple[DataSource, FixtureEvent]]:
    return [(fixture.datasource, event) for fixture in pack.fixtures for event in fixture.events]


FIXTURE_FILES = sorted(
    str(path.relative_to(REPO_ROOT))
    for path in (REPO_ROOT / "tests" / "fixtures").glob("*/*")
    if path.suffix in (".jsonl", ".log")
)
RULES = sorted(path.stem for path in (REPO_ROOT / "rules").glob("*/*.yml"))


def _text(value: Any) -> str:
    if value is None:
        return JSON_NULL_TEXT
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _values(value: Any) -> list[str]:
    return [_text(item) for item in value] if isinstance(value, list) else [_text(value)]


def _sigma_spelling(view: Mapping[str, Any]) -> dict[str, list[str]]:
    """Splunk field names with the list markers removed: the names the reference (Sigma) view uses."""
    spelled: dict[str, list[str]] = {}
    for name, value in view.items():
        if name not in DEFAULTS and name != "_time":
            spelled.setdefault(name.replace("{}", ""), []).extend(_values(value))
    return spelled


def test_fixture_files_are_found() -> None:
    assert len(FIXTURE_FILES) >= 3 and len(RULES) >= 3


def _what_splunk_indexes(ds: DataSource, native: Any) -> tuple[str | None, Any]:
    """(the sourcetype a managed-cluster record is indexed under, or None for the data source's own; the
    event Splunk extracts fields from). Written from the module docstring's rules A1-A3, not from the code."""
    if ds.name == "kubernetes_audit" and native.get("category") in ("kube-audit", "kube-audit-admin"):
        return "mscs:storage:blob:json", native  # A1, A2: the record itself, the audit event one string
    if ds.name == "kubernetes_audit" and "protoPayload" in native:
        kinds = {
            "cloudaudit.googleapis.com%2Factivity": "google:gcp:pubsub:audit:admin_activity",
            "cloudaudit.googleapis.com%2Fdata_access": "google:gcp:pubsub:audit:data_access",
        }
        return kinds[native["logName"].rsplit("/", 1)[-1]], native  # A3
    return None, None


def _system_values(native: Mapping[str, Any]) -> dict[str, str]:
    """S2-S4: the names a Sysmon event's System section gives, with their values."""
    values: dict[str, str] = {}
    for tag, content in native["System"].items():
        if isinstance(content, Mapping):
            values.update({str(k): str(v) for k, v in content.items()})
        elif content:
            values[str(tag)] = str(content)
    return values


@pytest.mark.parametrize("fixture_file", FIXTURE_FILES)
def test_every_fixture_event_has_a_splunk_view(fixture_file: str) -> None:
    pack = converted().pack
    fixture = next(f for f in pack.fixtures if f.path == fixture_file)
    assert fixture.events, fixture_file
    scope = definition_scope(fixture.datasource.splunk_definition)
    for event in fixture.events:
        view = splunk_event(fixture.datasource, event.native, event.raw)
        where = f"{event.key} ({fixture.datasource.name})"
        assert view["_raw"] == event.raw, where
        managed_sourcetype, indexed = _what_splunk_indexes(fixture.datasource, event.native)
        sourcetype = managed_sourcetype or scope["sourcetype"]
        assert (view["index"], view["sourcetype"]) == (scope["index"], sourcetype), where
        assert view["source"] and view["host"], where
        # The Splunk view holds every value of the event Splunk indexes (the reference view, or a managed-
        # cluster record as written), under the Splunk spelling of its name; an empty list (J6) has no field,
        # a default field's name keeps the default value (J9), a System name keeps the System value (S6).
        spelled = _sigma_spelling(view)
        reference = (
            flatten(indexed)
            if indexed is not None
            else reference_view(fixture.datasource.fixture_format, event.native)
        )
        system = (
            _system_values(event.native) if fixture.datasource.fixture_format == "sysmon_linux_syslog" else {}
        )
        for name, value in reference.items():
            if isinstance(value, list) and not value:
                assert name not in spelled, f"{where}: {name} is an empty list, Splunk has no field for it"
                continue
            if name in DEFAULTS or name == "_time":
                assert view.get(name) != value, (
                    f"{where}: the event's own {name}={value!r} reached Splunk (J9)"
                )
                continue
            expected = [system[name]] if name in system else _values(value)
            assert spelled.get(name) == expected, (
                f"{where}: the reference view has {name}={value!r}, the Splunk view has {spelled.get(name)!r}"
            )
        if fixture.datasource.fixture_format == "json_lines":
            extra = set(spelled) - set(reference)
            assert not extra, f"{where}: Splunk fields with no reference counterpart: {sorted(extra)}"
        if managed_sourcetype is not None:  # A1, A3: the audit event's own fields are not extracted
            unwrapped = reference_view(fixture.datasource.fixture_format, event.native)
            hidden = {"verb", "objectRef.resource", "user.username"} & set(unwrapped)
            assert not hidden & set(spelled), (
                f"{where}: {sorted(hidden & set(spelled))} extracted from a record"
            )


def _diagnose(query: SplQuery | SplStatsQuery, view: SplEvent, reference: Mapping[str, Any]) -> list[str]:
    """Field-name disagreements between the query and one event's Splunk view."""
    notes = []
    for field in sorted(query_fields(query)):
        if field in view:
            continue
        sigma = field.replace("{}", "")
        named = sorted(name for name in view if name.replace("{}", "") == sigma)
        if named:
            notes.append(f"the query reads {field!r}, the Splunk view names it {named}")
        elif sigma in reference:
            notes.append(f"the query reads {field!r} (Sigma {sigma!r}), the Splunk view has no such field")
    return notes


def _parse(state: Converted, rule: str) -> SplQuery | SplStatsQuery:
    rule_file = state.pack.rule_by_name(rule)
    assert rule_file is not None, rule
    text = state.queries[rule]
    return (
        SplStatsQuery.parse(text, state.macros)
        if rule_file.is_correlation
        else SplQuery.parse(text, state.macros)
    )


def _building_block(state: Converted, rule: str) -> bool:
    """A building block (generate: false) has no search of its own: its search is part of its correlation's,
    which these tests run. True (after checking that) for a building block."""
    if rule not in state.blocks:
        return False
    assert rule not in state.queries, f"{rule} is a building block of {state.blocks[rule]} but was converted"
    assert state.blocks[rule] in state.queries, f"{rule}'s correlation {state.blocks[rule]} was not converted"
    return True


@pytest.mark.parametrize("rule", RULES)
def test_converted_rule_hits_exactly_the_expected_events(rule: str) -> None:
    # The SPL fires where the expectations say, except where tests/engine-differences.yml records that Splunk
    # differs from the reference (engine spl), and there it must differ. A correlation runs as detpack test
    # runs it: over its data source's events, through detpack.correlation.run_engine.
    state = converted()
    if _building_block(state, rule):
        return
    assert rule in state.queries, f"{rule}: the Splunk pipeline did not convert it"
    rule_file = state.pack.rule_by_name(rule)
    assert rule_file is not None
    source = state.pack.datasource_of(rule_file)
    assert source is not None
    query = _parse(state, rule)
    events = all_events(state.pack)
    if isinstance(query, SplStatsQuery):
        own = [event for ds, event in events if ds.name == source.name]
        indexes = run_engine("spl", state.queries[rule], [state.views[e.key] for e in own], source, {})
        hits = {own[i].key for i in indexes}
    else:
        hits = {event.key for _, event in events if query.matches(state.views[event.key])}
    failures = []
    for ds, event in events:
        assert event.expectation is not None, f"{event.key}: no expectation bound"
        expected = rule in event.expectation.fires
        documented = (rule, event.key) in state.differences
        hit = event.key in hits
        if hit != (expected != documented):
            view = state.views[event.key]
            reference = reference_view(ds.fixture_format, event.native)
            detail = "; ".join(_diagnose(query, view, reference)) or "no field-name disagreement found"
            if documented:
                verdict = (
                    f"agrees with the reference although engine-differences.yml says it differs ({detail})"
                )
            else:
                verdict = (
                    "fired but the expectation does not list it" if hit else "did not fire but must"
                ) + (f" ({detail})")
            failures.append(f"{event.key}: {verdict}")
    assert not failures, f"{rule}: {state.queries[rule]}\n" + "\n".join(failures)
    assert hits, f"{rule} fired on no event"


@pytest.mark.parametrize("rule", RULES)
def test_pipeline_names_only_fields_the_splunk_view_has(rule: str) -> None:
    # Every field the converted query reads must be spelled as Splunk spells it wherever the event has the
    # data: if an event's reference (Sigma) view has the field, its Splunk view must have the query's name.
    # Only events the data source's macro selects count: the query cannot see the others whatever their
    # names (events outside the data source's scope, managed-cluster records under another sourcetype).
    state = converted()
    if _building_block(state, rule):
        return
    query = _parse(state, rule)
    rule_file = state.pack.rule_by_name(rule)
    assert rule_file is not None
    source = state.pack.datasource_of(rule_file)
    assert source is not None
    scope = SplQuery.parse(f"`{source.splunk_macro}`", state.macros)
    problems = []
    selected = 0
    for ds, event in all_events(state.pack):
        if ds.name != source.name:
            continue
        view = state.views[event.key]
        if not scope.matches(view):
            managed, _ = _what_splunk_indexes(ds, event.native)
            assert managed is not None or not event.in_scope, (
                f"{event.key}: in scope, but the macro misses it"
            )
            continue
        selected += 1
        reference = reference_view(ds.fixture_format, event.native)
        problems += [f"{event.key}: {note}" for note in _diagnose(query, view, reference)]
    assert selected, f"{rule}: the macro selects no fixture event of {source.name}"
    assert not problems, f"{rule}: {state.queries[rule]}\n" + "\n".join(problems)


def test_a_pipeline_name_mismatch_is_reported_with_rule_field_and_event() -> None:
    # The diagnosis the two tests above print, on a query that spells a list field without its braces.
    state = converted()
    ds, event = next(
        (ds, e)
        for ds, e in all_events(state.pack)
        if ds.name == "kubernetes_audit" and "sourceIPs" in e.native
    )
    view = splunk_event(ds, event.native, event.raw)
    query = SplQuery.parse("`detpack_kubernetes_audit` sourceIPs=*", state.macros)
    assert not query.matches(view)
    assert _diagnose(query, view, reference_view(ds.fixture_format, event.native)) == [
        "the query reads 'sourceIPs', the Splunk view names it ['sourceIPs{}']"
    ]


def test_building_blocks_are_searched_only_through_their_correlation() -> None:
    state = converted()
    assert state.blocks, "the pack has no building block: _building_block above would be dead code"
    for block, correlation in state.blocks.items():
        assert block not in state.queries
        block_file = state.pack.rule_by_name(block)
        assert block_file is not None
        # every field of the building block is read by its correlation's search (the base search comes first)
        read = {name.replace("{}", "") for name in query_fields(_parse(state, correlation))}
        fields = {key.split("|")[0] for _, key in detection_keys(block_file)}
        assert fields and fields <= read, (block, sorted(fields - read))
