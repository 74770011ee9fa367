"""The Splunk view of fixture events (detpack/ingest/splunk.py), and every converted rule run on it.

Each naming rule of the ingest model is pinned by one test whose comment names where it comes from (the
rule labels J1-J8 and S1-S5 are those of the module docstring). The end-to-end tests convert every rule
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
from detpack.convert import convert_pack
from detpack.engines.spl import SplEvent, SplQuery
from detpack.ingest.native import parse_sysmon_linux_syslog
from detpack.ingest.reference import reference_view
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
from detpack.offline import configure_offline
from detpack.validate.pack import validate_pack
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


# --------------------------------------------------------------------------------------------------
# Every fixture event, and every rule end to end
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Converted:
    pack: Pack
    queries: dict[str, str]  # rule name -> SPL
    macros: dict[str, str]


@cache
def converted() -> Converted:
    configure_offline()
    pack = load_pack(REPO_ROOT)
    validation = validate_pack(pack)  # binds every event's expectation
    assert not validation.errors, "\n".join(str(f) for f in validation.errors)
    queries, findings = convert_pack(pack, targets=["splunk"])
    assert not findings, "\n".join(str(f) for f in findings)
    macros = {ds.splunk_macro: ds.splunk_definition for ds in pack.datasources.values()}
    return Converted(pack, {q.rule: q.text for q in queries}, macros)


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
        if name not in DEFAULTS:
            spelled.setdefault(name.replace("{}", ""), []).extend(_values(value))
    return spelled


def test_fixture_files_are_found() -> None:
    assert len(FIXTURE_FILES) >= 3 and len(RULES) >= 3


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
        assert (view["index"], view["sourcetype"]) == (scope["index"], scope["sourcetype"]), where
        assert view["source"] and view["host"], where
        # The Splunk view holds every value of the reference (Sigma) view, under the Splunk spelling of its
        # name; only an empty list (no value, J6) is missing.
        spelled = _sigma_spelling(view)
        reference = reference_view(fixture.datasource.fixture_format, event.native)  # every field
        for name, value in reference.items():
            if isinstance(value, list) and not value:
                assert name not in spelled, f"{where}: {name} is an empty list, Splunk has no field for it"
                continue
            assert spelled.get(name) == _values(value), (
                f"{where}: the reference view has {name}={value!r}, the Splunk view has {spelled.get(name)!r}"
            )
        if fixture.datasource.fixture_format == "json_lines":
            extra = set(spelled) - set(reference)
            assert not extra, f"{where}: Splunk fields with no reference counterpart: {sorted(extra)}"


def _diagnose(query: SplQuery, view: SplEvent, reference: Mapping[str, Any]) -> list[str]:
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


@pytest.mark.parametrize("rule", RULES)
def test_converted_rule_hits_exactly_the_expected_events(rule: str) -> None:
    state = converted()
    assert rule in state.queries, f"{rule}: the Splunk pipeline did not convert it"
    query = SplQuery.parse(state.queries[rule], state.macros)
    failures = []
    fired = 0
    for ds, event in all_events(state.pack):
        assert event.expectation is not None, f"{event.key}: no expectation bound"
        view = splunk_event(ds, event.native, event.raw)
        hit = query.matches(view)
        expected = rule in event.expectation.fires
        fired += hit
        if hit != expected:
            reference = reference_view(ds.fixture_format, event.native)
            detail = "; ".join(_diagnose(query, view, reference)) or "no field-name disagreement found"
            verdict = "fired but the expectation does not list it" if hit else "did not fire but must"
            failures.append(f"{event.key}: {verdict} ({detail})")
    assert not failures, f"{rule}: {state.queries[rule]}\n" + "\n".join(failures)
    assert fired, f"{rule} fired on no event"


@pytest.mark.parametrize("rule", RULES)
def test_pipeline_names_only_fields_the_splunk_view_has(rule: str) -> None:
    # Every field the converted query reads must be spelled as Splunk spells it wherever the event has the
    # data: if an event's reference (Sigma) view has the field, its Splunk view must have the query's name.
    state = converted()
    query = SplQuery.parse(state.queries[rule], state.macros)
    rule_file = state.pack.rule_by_name(rule)
    assert rule_file is not None
    source = state.pack.datasource_of(rule_file)
    assert source is not None
    problems = []
    for ds, event in all_events(state.pack):
        if ds.name != source.name:
            continue
        view = splunk_event(ds, event.native, event.raw)
        reference = reference_view(ds.fixture_format, event.native)
        problems += [f"{event.key}: {note}" for note in _diagnose(query, view, reference)]
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
