"""Linux audit (auditd) events: the record parser, the grouping of records into events, the three views, and
the Sysmon for Linux service data source.

go-libaudit's own test vectors (tests/data/auditd/, Apache-2.0, see the README there) pin the Elastic model's
parsing and coalescing; the other expectations are written by hand from the formats the module docstring of
detpack/ingest/auditd.py describes (the kernel's and auditd's record formats, Splunk's key=value extraction,
Auditbeat and the auditd_manager ingest pipeline).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from sigma.rule import SigmaRule

from detpack.content.datasources import load_datasources
from detpack.content.fixtures import load_fixtures
from detpack.content.pack import Pack, load_pack
from detpack.engines.sqlite import ReferenceTable
from detpack.ingest.auditd import (
    AuditdFormatError,
    auditbeat_document,
    auditd_ecs_document,
    auditd_event,
    auditd_manager_pipeline,
    auditd_reference_view,
    auditd_splunk_fields,
    coalesce,
    group_auditd_lines,
    hex_to_string,
    hex_to_strings,
    parse_auditd_event,
    parse_auditd_record,
    parse_sockaddr,
    record_data,
)
from detpack.ingest.ecs import ecs_document
from detpack.ingest.fields import document_fields, field_known, load_field_list
from detpack.ingest.native import NativeFormatError, parse_native
from detpack.ingest.reference import reference_view
from detpack.ingest.splunk import splunk_event
from detpack.validate.rules import detection_keys

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA = REPO_ROOT / "tests" / "data" / "auditd"
GS = "\x1d"


def hx(text: str) -> str:
    return text.encode().hex().upper()


# --------------------------------------------------------------------------------------------------
# One record
# --------------------------------------------------------------------------------------------------

SERVICE_STOP = (
    "type=SERVICE_STOP msg=audit(1795223123.418:239370): pid=1 uid=0 auid=4294967295 ses=4294967295 "
    'subj=unconfined msg=\'unit=falco-modern-bpf comm="systemd" exe="/usr/lib/systemd/systemd" hostname=? '
    f'addr=? terminal=? res=success\'{GS}UID="root" AUID="unset"'
)


def test_record_header_values_and_enriched_suffix() -> None:
    record = parse_auditd_record(SERVICE_STOP)
    assert (record["type"], record["seconds"], record["millis"], record["serial"]) == (
        "SERVICE_STOP",
        1795223123,
        418,
        239370,
    )
    assert record["node"] is None
    assert record["fields"][:5] == [
        ["pid", "1", ""],
        ["uid", "0", ""],
        ["auid", "4294967295", ""],
        ["ses", "4294967295", ""],
        ["subj", "unconfined", ""],
    ]
    # the user-space message stays one single-quoted value; the views flatten it
    assert record["fields"][5][0] == "msg" and record["fields"][5][2] == "'"
    assert record["fields"][5][1].startswith("unit=falco-modern-bpf comm=")
    assert record["enriched_fields"] == [["UID", "root", '"'], ["AUID", "unset", '"']]


def test_record_with_node_prefix_and_old_header_without_colon() -> None:
    record = parse_auditd_record(
        "node=worker-4 type=DAEMON_END msg=audit(1795262400.117:2305): op=terminate auid=0 pid=1 res=success"
    )
    assert record["node"] == "worker-4"
    assert record["fields"] == [
        ["op", "terminate", ""],
        ["auid", "0", ""],
        ["pid", "1", ""],
        ["res", "success", ""],
    ]
    old = parse_auditd_record(
        "type=DAEMON_CONFIG msg=audit(1490239800.477:34) config changed, auid=0 pid=1512"
    )
    assert [f[0] for f in old["fields"]] == ["auid", "pid"]  # free words carry no field


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("msg=audit(1795223123.418:1): pid=1", "expected an audit record"),
        ("type=SYSCALL msg=audit(1795223123:1): pid=1", "expected an audit record"),
        ("type=syscall msg=audit(1795223123.418:1): pid=1", "expected an audit record"),
        (
            'type=SYSCALL msg=audit(1795223123.418:1): comm="curl exe=/usr/bin/curl',
            "unterminated double-quoted",
        ),
    ],
)
def test_malformed_records_are_refused(line: str, message: str) -> None:
    with pytest.raises(AuditdFormatError, match=message):
        parse_auditd_record(line)


def test_a_user_message_cut_short_keeps_its_pairs() -> None:
    # go-libaudit's own SERVICE_START test vector ends without the closing quote
    line = (
        "type=SERVICE_START msg=audit(1492625990.183:4083): pid=1 uid=0 auid=4294967295 ses=4294967295 "
        'msg=\'unit=rsyslog comm="systemd" exe="/lib/systemd/systemd" hostname=? addr=? terminal=? '
        "res=success"
    )
    view = auditd_reference_view(parse_auditd_event(line))
    assert view["unit"] == "rsyslog" and view["res"] == "success" and view["comm"] == "systemd"


# --------------------------------------------------------------------------------------------------
# Hex and sockaddr decoding
# --------------------------------------------------------------------------------------------------


def test_hex_decoding_of_arguments_and_proctitle() -> None:
    assert hex_to_string(hx("Content-Type: application/json")) == "Content-Type: application/json"
    assert hex_to_string('"-D"') is None  # quoted: written as plain text
    assert hex_to_string("7ffd5c1e2a40") is None  # lower case: a register value, never decoded
    assert hex_to_strings(hx("auditctl\0-e\x000")) == ["auditctl", "-e", "0"]


def test_sockaddr_families() -> None:
    unix = "0100" + hx("/var/run/docker.sock") + "00" * 88
    assert parse_sockaddr(unix) == {"family": "unix", "path": "/var/run/docker.sock"}
    # AF_INET 10.0.4.17 port 5432 (0x1538): family little endian, port and address big endian
    assert parse_sockaddr("020015380A0004110000000000000000") == {
        "family": "ipv4",
        "addr": "10.0.4.17",
        "port": "5432",
    }
    ipv6 = "0A00" + "01BB" + "00000000" + "20010DB8000000000000000000000001" + "00000000"
    assert parse_sockaddr(ipv6) == {"family": "ipv6", "addr": "2001:db8::1", "port": "443"}
    assert parse_sockaddr("1000000000000000") == {"family": "netlink", "saddr": "1000000000000000"}
    with pytest.raises(AuditdFormatError, match="ipv4"):
        parse_sockaddr("0200153800")


# --------------------------------------------------------------------------------------------------
# Records -> events
# --------------------------------------------------------------------------------------------------

EXECVE_EVENT = [
    "type=SYSCALL msg=audit(1795223790.310:241370): arch=c000003e syscall=59 success=yes exit=0 "
    "a0=55d83d3675c0 a1=55d83d3677d8 a2=55d83d367828 a3=8 items=2 ppid=51350 pid=51502 auid=4294967295 "
    'uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="auditctl" '
    'exe="/usr/sbin/auditctl" subj=unconfined key="exec"',
    'type=EXECVE msg=audit(1795223790.310:241370): argc=3 a0="auditctl" a1="-e" a2="0"',
    'type=CWD msg=audit(1795223790.310:241370): cwd="/"',
    'type=PATH msg=audit(1795223790.310:241370): item=0 name="/usr/sbin/auditctl" inode=1313201 dev=08:01 '
    "mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL",
    'type=PATH msg=audit(1795223790.310:241370): item=1 name="/lib64/ld-linux-x86-64.so.2" inode=1315788 '
    "dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL",
    f"type=PROCTITLE msg=audit(1795223790.310:241370): proctitle={hx(chr(0).join(['auditctl', '-e', '0']))}",
]
CONFIG_CHANGE = (
    "type=CONFIG_CHANGE msg=audit(1795223790.314:241371): op=set audit_enabled=0 old=1 auid=4294967295 "
    "ses=4294967295 subj=unconfined res=1"
)


def test_consecutive_records_of_one_serial_are_one_event() -> None:
    text = "\n".join([*EXECVE_EVENT, CONFIG_CHANGE, SERVICE_STOP]) + "\n"
    groups, problems = group_auditd_lines(text)
    assert problems == []
    assert [(g.line, len(g.records)) for g in groups] == [(1, 6), (7, 1), (8, 1)]


def test_interleaved_blank_and_malformed_lines_are_located() -> None:
    text = "\n".join([EXECVE_EVENT[0], CONFIG_CHANGE, EXECVE_EVENT[1], "", "not an audit record"]) + "\n"
    groups, problems = group_auditd_lines(text)
    assert [(p.line, p.code) for p in problems] == [
        (3, "fixture-interleaved"),
        (4, "fixture-blank-line"),
        (5, "fixture-event"),
    ]
    assert "starts at line 1" in problems[0].message
    assert [g.line for g in groups] == [1, 2]


def test_fixture_loader_reports_grouping_problems_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "datasources").mkdir()
    (tmp_path / "datasources" / "linux_auditd.yml").write_text(
        (REPO_ROOT / "datasources" / "linux_auditd.yml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    fixture_dir = tmp_path / "tests" / "fixtures" / "linux_auditd"
    fixture_dir.mkdir(parents=True)
    (fixture_dir / "x.log").write_text("\n".join([EXECVE_EVENT[0], CONFIG_CHANGE, EXECVE_EVENT[1]]) + "\n")
    (fixture_dir / "x.expect.yml").write_text("events: []\n")
    fixtures, findings = load_fixtures(tmp_path, load_datasources(tmp_path))
    assert [(f.path, f.line, f.code) for f in findings] == [
        ("tests/fixtures/linux_auditd/x.log", 3, "fixture-interleaved")
    ]
    assert [(e.line, e.raw.count("\n")) for e in fixtures[0].events] == [(1, 0), (2, 0)]


def test_parse_native_takes_the_lines_of_one_event() -> None:
    native = parse_native("auditd_log", "\n".join(EXECVE_EVENT))
    assert [r["type"] for r in native["records"]] == ["SYSCALL", "EXECVE", "CWD", "PATH", "PATH", "PROCTITLE"]
    with pytest.raises(NativeFormatError, match="one event, found 2"):
        parse_native("auditd_log", "\n".join([EXECVE_EVENT[0], CONFIG_CHANGE]))


# --------------------------------------------------------------------------------------------------
# Reference and Splunk views
# --------------------------------------------------------------------------------------------------


def test_reference_view_merges_the_records_of_an_execve_event() -> None:
    view = auditd_reference_view(parse_auditd_event("\n".join(EXECVE_EVENT)))
    assert view["type"] == ["SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE"]
    # the EXECVE arguments, not the SYSCALL record's argument registers
    assert (view["a0"], view["a1"], view["a2"]) == ("auditctl", "-e", "0")
    assert "a3" not in view
    assert view["argc"] == "3" and view["comm"] == "auditctl" and view["key"] == "exec"
    assert view["name"] == ["/usr/sbin/auditctl", "/lib64/ld-linux-x86-64.so.2"]  # two PATH records
    assert view["item"] == ["0", "1"] and view["ouid"] == "0"  # equal values kept once
    assert view["proctitle"] == hx("auditctl\0-e\x000")  # as written: hex, not decoded
    assert view["cwd"] == "/"


def test_reference_view_of_a_user_space_record_and_a_syscall_without_execve() -> None:
    view = auditd_reference_view(parse_auditd_event(SERVICE_STOP))
    assert view["type"] == "SERVICE_STOP"
    assert (view["unit"], view["comm"], view["exe"], view["res"]) == (
        "falco-modern-bpf",
        "systemd",
        "/usr/lib/systemd/systemd",
        "success",
    )
    assert view["hostname"] == "?" and "msg" not in view
    assert (view["UID"], view["AUID"]) == ("root", "unset")
    connect = parse_auditd_event(
        "type=SYSCALL msg=audit(1492753107.096:9004): arch=c000003e syscall=42 success=no exit=-115 a0=5 "
        'a1=7ffc12ac3ab0 a2=10 a3=4 items=0 ppid=1 pid=1648 comm="python3" exe="/usr/bin/python3.5" '
        'key="net"\n'
        "type=SOCKADDR msg=audit(1492753107.096:9004): saddr=02000050A9FEA9FE0000000000000000"
    )
    view = auditd_reference_view(connect)
    assert (view["a0"], view["a2"]) == ("5", "10")  # no EXECVE: the registers stay
    assert view["saddr"] == "02000050A9FEA9FE0000000000000000"


def test_splunk_view_is_the_reference_view_plus_header_and_default_fields() -> None:
    datasource = load_datasources(REPO_ROOT)["linux_auditd"]
    native = parse_auditd_event("\n".join(EXECVE_EVENT))
    raw = "\n".join(EXECVE_EVENT)
    view = splunk_event(datasource, native, raw)
    reference = auditd_reference_view(native)
    assert {k: view[k] for k in reference} == reference
    assert view["msg"] == "audit(1795223790.310:241370):"
    assert (view["index"], view["sourcetype"], view["source"]) == (
        "linux",
        "linux_audit",
        "/var/log/audit/audit.log",
    )
    assert view["host"] == "detpack-fixture-host" and view["_raw"] == raw
    with_node = parse_auditd_event("node=worker-4 " + SERVICE_STOP)
    assert splunk_event(datasource, with_node, "")["host"] == "worker-4"
    assert auditd_splunk_fields(with_node)["node"] == "worker-4"


# --------------------------------------------------------------------------------------------------
# go-libaudit's vectors: auparse (one record) and aucoalesce (one event)
# --------------------------------------------------------------------------------------------------

AUPARSE_FILES = ("audit-rhel6", "audit-ubuntu16", "audit-ubuntu17", "audit-rhel7")
# Records whose expected data needs what the model leaves out: syscall names outside its table (select,
# rt_sigaction, mknod, ...), and header forms it does not parse (`msg=?`).
AUPARSE_SKIPPED_TYPES = {"UNKNOWN[1329]"}


def _auparse_cases() -> list[tuple[str, str, dict[str, Any]]]:
    cases = []
    for name in AUPARSE_FILES:
        lines = [line for line in (DATA / f"auparse-{name}.log").read_text().split("\n") if line.strip()]
        golden = json.loads((DATA / f"auparse-{name}.log.golden").read_text())
        assert len(lines) == len(golden), name
        cases += [
            (f"{name}:{i}", line, expected)
            for i, (line, expected) in enumerate(zip(lines, golden, strict=True), 1)
        ]
    return cases


def test_auparse_vectors_record_data_and_keys() -> None:
    compared = 0
    for where, line, expected in _auparse_cases():
        if any(line.startswith(f"type={t} ") for t in AUPARSE_SKIPPED_TYPES):
            continue
        record = parse_auditd_record(line)
        data = record_data(record)
        syscall = expected.get("data", {}).get("syscall")
        if (
            syscall is not None
            and data.data.get("syscall") != syscall
            and data.data.get("syscall", "").isdigit()
        ):
            continue  # a syscall name outside the model's table
        assert data.error is None, where
        assert data.data == expected.get("data", {}), where
        assert data.tags == (expected.get("keys") or []), where
        compared += 1
    assert compared >= 40


# The aucoalesce cases of the record types and syscalls the pack's events use (module docstring, E2).
AUCOALESCE_CASES = {
    "ubuntu-16.10-linux-4.8.0": [
        "EXECVE",
        "accept syscall",
        "connect syscall",
        "SERVICE_START",
        "CONFIG_CHANGE update rules",
        "CONFIG_CHANGE remove rule",
        "listen syscall",
    ],
    "rhel-7-linux-3.10.0": ["CONFIG_CHANGE backlog limit", "CONFIG_CHANGE add rule"],
    "ubuntu-17.04-linux-4.10.0": [
        "USER_CMD",
        "EXECVE with multiple keys",
        "getpeername syscall",
        "getsockname syscall",
    ],
    "ubuntu-20.04.6-linux-5.15.0-1034-gcp": ["file_mode_preservation"],
}


@pytest.mark.parametrize(
    ("vectors", "case"), [(v, c) for v, cases in AUCOALESCE_CASES.items() for c in cases]
)
def test_aucoalesce_vectors(vectors: str, case: str) -> None:
    tests = yaml.safe_load((DATA / f"aucoalesce-{vectors}.yaml").read_text())["tests"]
    golden = {
        t["test_name"]: t["event"]
        for t in json.loads((DATA / f"aucoalesce-{vectors}.json.golden").read_text())
    }
    records = [parse_auditd_record(line.strip()) for line in tests[case].strip().split("\n") if line.strip()]
    assert coalesce(records).to_json() == golden[case]


# --------------------------------------------------------------------------------------------------
# Elastic: Auditbeat and the auditd_manager ingest pipeline
# --------------------------------------------------------------------------------------------------


def test_ecs_document_of_an_execve_event() -> None:
    doc = auditd_ecs_document(parse_auditd_event("\n".join(EXECVE_EVENT)))
    assert doc["event"] == {
        "action": "executed",
        "category": ["process"],
        "type": ["start"],
        "kind": "event",
        "outcome": "success",
        "sequence": 241370,
        "dataset": "auditd_manager.auditd",
        "module": "auditd_manager",
    }
    assert doc["process"] == {
        "pid": 51502,
        "parent": {"pid": 51350},
        "title": "auditctl -e 0",
        "name": "auditctl",
        "executable": "/usr/sbin/auditctl",
        "working_directory": "/",
        "args": ["auditctl", "-e", "0"],
    }
    assert doc["auditd"]["message_type"] == "syscall"
    assert doc["auditd"]["data"]["argc"] == 3 and doc["auditd"]["data"]["exit"] == 0  # converted to long
    assert doc["auditd"]["data"]["a0"] == "55d83d3675c0"  # the SYSCALL register stays under auditd.data
    assert "session" not in doc["auditd"]  # unset session left out
    assert doc["user"] == {"id": "0", "group": {"id": "0"}}  # effective = id: removed; auid unset: left out
    assert doc["auditd"]["user"]["selinux"] == {"user": "unconfined"}
    assert doc["tags"] == ["exec", "auditd_manager-auditd"]
    assert doc["file"]["path"] == "/usr/sbin/auditctl" and doc["ecs"] == {"version": "8.2.0"}


def test_ecs_document_of_a_config_change_with_its_syscall() -> None:
    lines = [
        CONFIG_CHANGE,
        "type=SYSCALL msg=audit(1795223790.314:241371): arch=c000003e syscall=44 success=yes exit=60 a0=3 "
        "a1=7ffd5c1e2a40 a2=3c a3=0 items=0 ppid=51350 pid=51502 auid=4294967295 uid=0 gid=0 euid=0 suid=0 "
        'fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="auditctl" exe="/usr/sbin/auditctl" '
        "subj=unconfined key=(null)",
        "type=PROCTITLE msg=audit(1795223790.314:241371): proctitle=" + hx("auditctl\0-e\x000"),
    ]
    doc = auditd_ecs_document(parse_auditd_event("\n".join(lines)))
    assert doc["auditd"]["message_type"] == "config_change"
    assert doc["event"]["action"] == "changed-audit-configuration"
    # the record type's normalisation, then the syscall's (sendto: network connection)
    assert doc["event"]["category"] == ["process", "configuration", "network"]
    assert doc["event"]["type"] == ["change", "connection", "info"]
    data = doc["auditd"]["data"]
    assert (data["op"], data["audit_enabled"], data["old"], data["syscall"]) == ("set", "0", "1", "sendto")
    assert doc["auditd"]["summary"]["object"] == {"primary": "set", "type": "audit-config"}
    assert doc["tags"] == ["auditd_manager-auditd"]  # key=(null): no rule key


def test_ecs_document_of_service_stop_and_of_auditd_own_records() -> None:
    doc = auditd_ecs_document(parse_auditd_event(SERVICE_STOP))
    assert doc["auditd"]["data"] == {"unit": "falco-modern-bpf"}  # '?' values dropped, res -> result
    assert doc["auditd"]["result"] == "success"
    assert doc["event"]["action"] == "stopped-service" and doc["event"]["type"] == ["end"]
    assert doc["process"] == {"pid": 1, "name": "systemd", "executable": "/usr/lib/systemd/systemd"}
    daemon_end = parse_auditd_event(
        "type=DAEMON_END msg=audit(1795223830.218:4471): op=terminate auid=0 pid=51544 subj=unconfined "
        "res=success"
    )
    assert auditd_ecs_document(daemon_end) == {
        "data_stream": {"type": "logs", "dataset": "auditd_manager.auditd", "namespace": "default"},
        "event": {"dataset": "auditd_manager.auditd", "module": "auditd_manager"},
    }


def test_pipeline_failure_on_an_errno_exit_keeps_the_document_as_it_was() -> None:
    # auditd.data.exit is converted to long without ignore_failure: EINPROGRESS fails the pipeline, whose
    # on_failure sets error.message; later processors (the empty-value cleanup) do not run.
    beat = {"auditd": {"data": {"exit": "EINPROGRESS", "argc": "2"}, "summary": {}}, "user": {}}
    doc = auditd_manager_pipeline(beat)
    assert doc["error"]["message"].startswith("field [exit]")
    assert doc["auditd"]["data"] == {"exit": "EINPROGRESS", "argc": 2}
    assert doc["user"] == {} and doc["auditd"]["summary"] == {}


def test_pipeline_renames_and_dashes() -> None:
    beat = {
        "user": {"audit": {"id": "1000"}, "old-auid": {"id": "4294967295"}, "id": "0"},
        "auditd": {"sequence": 7, "data": {"old-ses": "3"}},
        "destination": {"path": "/var/run/docker.sock"},
    }
    doc = auditd_manager_pipeline(beat)
    assert doc["auditd"]["user"] == {"audit": {"id": "1000"}, "old_auid": {"id": "4294967295"}}
    assert doc["user"] == {"id": "0"}
    assert doc["auditd"]["data"] == {"old_ses": "3"}
    assert doc["event"]["sequence"] == 7 and "sequence" not in doc["auditd"]
    assert doc["destination"] == {"address": "/var/run/docker.sock"}


def test_socket_event_gets_destination_and_direction() -> None:
    native = parse_auditd_event(
        "type=SYSCALL msg=audit(1795240519.330:5621558): arch=c000003e syscall=42 success=yes exit=0 a0=5 "
        "a1=7ffd2a1b3c40 a2=6e a3=0 items=1 ppid=41930 pid=41977 auid=4294967295 uid=0 gid=0 euid=0 suid=0 "
        'fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="socat" exe="/usr/bin/socat" '
        'subj=unconfined key="docker_socket"\n'
        "type=SOCKADDR msg=audit(1795240519.330:5621558): saddr=0100" + hx("/var/run/docker.sock") + "00"
    )
    beat = auditbeat_document(coalesce(native["records"]))
    assert beat["destination"] == {"path": "/var/run/docker.sock"}
    assert beat["network"] == {"direction": "egress"}
    assert beat["auditd"]["data"]["socket"] == {"family": "unix", "path": "/var/run/docker.sock"}
    doc = auditd_ecs_document(native)
    assert doc["destination"] == {"address": "/var/run/docker.sock"}
    assert doc["event"]["action"] == "connected-to"


@pytest.fixture(scope="module")
def pack() -> Pack:
    return load_pack(REPO_ROOT)


# Fields the documents carry that the integration does not declare by name. The data stream maps dynamically
# (dynamic: true), so they are indexed: the PATH records of current kernels carry file capability fields
# (cap_fp, cap_fi, cap_fe, cap_fver, cap_frootid) that auditd.paths does not list, and RHEL 7's kernel names
# nametype `objtype`.
UNDECLARED_DYNAMIC = {
    "linux_auditd": tuple(
        f"auditd.paths.{n}" for n in ("cap_fp", "cap_fi", "cap_fe", "cap_fver", "cap_frootid", "objtype")
    ),
    "linux_sysmon_service": (),
}


def _declared(types: Mapping[str, str], name: str) -> bool:
    """Known by name, below an open field, or matched by a wildcard declaration (`auditd.data.a*`), which the
    integration's index template turns into a dynamic template."""
    return field_known(types, name) or any("*" in d and fnmatch.fnmatchcase(name, d) for d in types)


def test_every_produced_field_is_in_the_field_list(pack: Pack) -> None:
    for datasource in ("linux_auditd", "linux_sysmon_service"):
        field_list = load_field_list(datasource)
        assert field_list.dynamic
        events = [e for f in pack.fixtures if f.datasource.name == datasource for e in f.events]
        assert events, datasource
        for event in events:
            doc = ecs_document(datasource, event.native)
            unknown = [
                n
                for n in document_fields(doc)
                if not _declared(field_list.fields, n) and n not in UNDECLARED_DYNAMIC[datasource]
            ]
            assert not unknown, f"{event.key}: {unknown}"


# --------------------------------------------------------------------------------------------------
# The merged view gives every auditd rule the verdict it has on the records one by one
# --------------------------------------------------------------------------------------------------


def test_each_auditd_rule_has_the_same_verdict_on_the_merged_event_and_on_its_records(pack: Pack) -> None:
    """Splunk keeps each record as its own event: a search fires on an audit event when one record matches.
    The reference and Splunk views merge the records; this holds for the pack's rules because each tests the
    fields of one record type (datasources/linux_auditd.yml)."""
    events = [e for f in pack.fixtures if f.datasource.name == "linux_auditd" for e in f.events]
    rules = [r for r in pack.rules if (ds := pack.datasource_of(r)) is not None and ds.name == "linux_auditd"]
    assert len(rules) >= 8 and len(events) >= 40
    record_views: list[dict[str, Any]] = []
    owner: list[int] = []
    for index, event in enumerate(events):
        for record in event.native["records"]:
            record_views.append(auditd_reference_view(auditd_event([record])))
            owner.append(index)
    for rule in rules:
        fields = {key.split("|")[0] for _, key in detection_keys(rule)} - {""}
        sigma = SigmaRule.from_dict(rule.data)
        merged = ReferenceTable.build([e.view for e in events], fields)
        merged_hits = merged.matches(merged.query_for(sigma))
        per_record = ReferenceTable.build(record_views, fields)
        record_hits = {
            owner[i] for i in per_record.matches(per_record.query_for(SigmaRule.from_dict(rule.data)))
        }
        assert merged_hits == record_hits, (
            f"{rule.name}: merged {sorted(merged_hits)} per record {sorted(record_hits)}"
        )
        assert merged_hits, rule.name


def test_reference_engine_matches_multivalued_fields_named_like_json_each_columns() -> None:
    # `type` and `key` are auditd fields and also columns of SQLite's json_each: the comparison must read
    # the event's field (regression: json_each(type) read json_each's own `type` column)
    views: list[dict[str, Any]] = [
        {"type": ["SYSCALL", "EXECVE"], "key": ["exec", "64bit"]},
        {"type": "SERVICE_STOP", "key": "x"},
    ]
    table = ReferenceTable.build(views, {"type", "key"})
    rule = SigmaRule.from_dict(
        {
            "title": "t",
            "logsource": {"product": "linux", "service": "auditd"},
            "detection": {"s": {"type": "EXECVE", "key": "64bit"}, "condition": "s"},
        }
    )
    assert table.matches(table.query_for(rule)) == {0}


# --------------------------------------------------------------------------------------------------
# Sysmon for Linux service events
# --------------------------------------------------------------------------------------------------


def test_sysmon_service_scope_accepts_event_ids_4_and_16_only() -> None:
    datasource = load_datasources(REPO_ROOT)["linux_sysmon_service"]
    assert datasource.scope == (("EventID", "16"), ("EventID", "4"))
    assert datasource.in_scope({"EventID": "4"}) and datasource.in_scope({"EventID": "16"})
    assert not datasource.in_scope({"EventID": "1"}) and not datasource.in_scope({})


def test_sysmon_service_views(pack: Pack) -> None:
    fixture = next(f for f in pack.fixtures if f.datasource.name == "linux_sysmon_service")
    config = fixture.events[0]  # Event ID 16, /tmp/.s.xml
    assert reference_view("sysmon_linux_syslog", config.native)["Configuration"] == "/tmp/.s.xml"
    doc = ecs_document("linux_sysmon_service", config.native)
    assert doc["event"]["code"] == "16" and doc["event"]["category"] == ["configuration"]
    # the pipeline drops event_data values "-" (no hash): only the configuration path remains
    assert doc["winlog"]["event_data"] == {"Configuration": "/tmp/.s.xml"}
    assert doc["host"]["name"] == "worker-2"
    stopped = ecs_document("linux_sysmon_service", fixture.events[1].native)
    assert stopped["event"]["code"] == "4" and stopped["winlog"]["event_data"]["State"] == "Stopped"
    view = splunk_event(fixture.datasource, fixture.events[1].native, fixture.events[1].raw)
    assert (view["EventCode"], view["State"], view["sourcetype"]) == ("4", "Stopped", "sysmon:linux")
