"""Linux audit (auditd) events: raw `/var/log/audit/audit.log` records, their grouping into events, and the
three views a query runs on.

**The format** (auditd's `log_format = RAW` or `ENRICHED`, one record per line)::

    [node=<host> ]type=<TYPE> msg=audit(<seconds>.<ms>:<serial>): <key>=<value> ...[\\x1d<KEY>=<value> ...]

One audit EVENT is every record that shares `audit(<seconds>.<milliseconds>:<serial>)`: the kernel writes a
syscall event as SYSCALL + EXECVE + CWD + PATH... + PROCTITLE, a rule change as CONFIG_CHANGE (+ SYSCALL +
PROCTITLE on kernels that tie it to the auditctl syscall), and user space (systemd, auditd itself) writes
single-record events such as SERVICE_STOP or DAEMON_END. In a fixture the records of one event are
consecutive lines; the event's line is the line of its first record (`group_auditd_lines`).

Values, as the kernel writes them (`kernel/audit.c` audit_log_untrustedstring / audit_log_n_hex): a string
the kernel considers safe is double-quoted (`comm="curl"`, `a1="--unix-socket"`); a string holding a space,
a double quote, a control character or a byte above 0x7e is written as UPPERCASE hex without quotes
(`a2=2D64207B22496D616765223A22616C70696E65227D`); PROCTITLE is the process's argv with NUL separators,
so it is hex whenever there are two or more arguments; SOCKADDR `saddr` is the raw `struct sockaddr` in hex
(`01002F7661722F72756E2F646F636B65722E736F636B00...` is AF_UNIX `/var/run/docker.sock`); a rule key holding
several keys joins them with 0x01 and is therefore hex. User-space records carry their own key=value list
inside `msg='...'`. `log_format = ENRICHED` (the default of auditd 3.x) appends, after the byte 0x1d, the
interpreted values under upper-case names (`ARCH=x86_64 SYSCALL=execve AUID="alice" UID="root"`).

**The reference (Sigma) view** (`auditd_reference_view`) is one flat mapping per event, named as SigmaHQ's
`product: linux, service: auditd` rules name the fields: `type`, the keys exactly as the records write them
(`a0`, `a1`, `argc`, `syscall`, `success`, `exe`, `comm`, `key`, `auid`, `uid`, `op`, `audit_enabled`,
`unit`, `res`, `name`, `saddr`, `proctitle`, ...), the keys of a user-space record's `msg='...'`, the
upper-case ENRICHED keys, and `node`. Values are the text of the record with the surrounding quotes removed
and NOT hex-decoded: that is what a SIEM that indexes the raw file searches (Splunk's key=value extraction
knows nothing about the kernel's hex encoding), so a rule that matches here matches the same bytes there.
(The Elastic integration does decode: see below.) A field present in several records of the event:

* `type` lists the event's record types, in record order (`[SYSCALL, EXECVE, CWD, PATH, PROCTITLE]`);
* otherwise every distinct value is kept, in record order: one value gives a plain field, several give a
  multi-valued field that matches when any value matches (CONFIG_CHANGE and SYSCALL both carry `auid`,
  `ses`, `subj`; two PATH records give two `name` values);
* except `a0` to `a3`: in an execve event the SYSCALL record's `a0`-`a3` are the raw syscall argument
  registers (pointers, in hex) and the EXECVE record's `a0`... are the argument strings; the view keeps the
  EXECVE record's values only, so `a2` means "the third argument" as SigmaHQ's EXECVE rules use it.

Real SIEMs that index the raw file (Splunk) keep each RECORD as its own event, so a query can only combine
fields of one record. The pack's auditd rules therefore each test one record type (`type: EXECVE` with
`a0`..., `type: SERVICE_STOP` with `unit`, `type: CONFIG_CHANGE` with `audit_enabled`);
`tests/test_ingest_auditd.py` checks that every rule gives the same verdict on this merged view as on the
records one by one.

**The Splunk view** (`auditd_splunk_fields`): the Splunk Add-on for Unix and Linux leaves `KV_MODE` unset on
its audit sourcetypes, so Splunk's automatic key/value extraction runs (docs: props.conf `KV_MODE = auto` is
the default; "Splunk ... extracts field/value pairs ... separated by an equal sign"); values are the text
after `=` up to the next space, or the text between double quotes. Splunk indexes each line as its own
event; see above for why the merged view gives the same verdicts for the pack's rules. Modelled:

* SK1 every `key=value` pair of the record, quotes removed, not hex-decoded (as in the reference view);
* SK2 the pairs inside a user-space record's `msg='...'` are fields of their own (`unit`, `comm`, `exe`,
  `res`): Splunk's own auditd content searches `type=SERVICE_STOP unit IN (...)` on the raw records
  (splunk/security_content detections/endpoint/linux_auditd_osquery_service_stop.yml, sourcetype
  `auditd`, data source "Linux Auditd Service Stop"); ASSUMPTION: the closing `'` of `msg='...'` is not
  part of the last value;
* SK3 the ENRICHED upper-case pairs after 0x1d are fields too (the same detection reports `UID`);
  ASSUMPTION: Splunk's extraction ends a value at the 0x1d byte as it does at a space;
* SK4 `msg` is the record header `audit(<seconds>.<ms>:<serial>):`; `source` is `/var/log/audit/audit.log`,
  `host` the `node=` name when auditd writes one (`name_format`), otherwise `HOST_PLACEHOLDER`.

**The Elastic view** (`auditd_ecs_document`): the `auditd_manager` integration (data stream
`auditd_manager.auditd`) runs Auditbeat's auditd module inside Elastic Agent. It does not read audit.log:
it receives the kernel's records over the audit netlink socket, groups them by serial (go-libaudit's
reassembler), normalises them with go-libaudit (`auparse` + `aucoalesce`) and turns the result into an
ECS document (`auditbeat/module/auditd/audit_linux.go` buildMetricbeatEvent), which the integration's
ingest pipeline (`default.yml`) finishes. Modelled from the sources (elastic/go-libaudit @bc9ea458,
Apache-2.0; elastic/beats audit_linux.go @03a003f3; the pipeline @0b849853 in
`../shared/reference-events/elastic-ingest-pipelines/auditd_manager.auditd/default.yml`):

* E1 `auparse` Data(): lower-case `key=value` pairs only (the ENRICHED suffix is auditd's and never reaches
  the netlink socket, so the model drops it); values `""`, `?`, `?,`, `(null)` dropped; `msg='...'`
  flattened; `auid`/`old-auid`/`ses` 4294967295 or -1 -> `unset`; `subj` split into `subj_user`,
  `subj_role`, `subj_domain`, `subj_level`, `subj_category`; `success`/`res` -> `result` (`success` or
  `fail`); negative `exit` -> errno name; `key` -> tags (hex keys split on 0x01, `key=value` keys keep the
  value); hex decoding of `cwd`, SYSCALL `exe`, EXECVE `a0`.., PROCTITLE (NUL -> space), PATH `name`,
  USER_CMD `cmd`, USER_LOGIN `acct`; SYSCALL `arch` and `syscall` translated to names; SOCKADDR `saddr`
  replaced by `family` and `path` (unix) or `addr`/`port` (ipv4/ipv6).
* E2 `aucoalesce` CoalesceMessages: one record is a simple event; several records are a compound event
  whose first non-SYSCALL record (if it is the first) names the event type and whose SYSCALL record gives
  the data; PATH records -> `paths`, SOCKADDR -> `socket_*` data and source/destination, EXECVE -> process
  args, other records' keys added when new; uid/gid keys -> user ids; then the normalisation of the syscall
  or record type (`aucoalesce/normalizations.yaml`): the action (`executed`, `connected-to`,
  `stopped-service`, `changed-audit-configuration`, ...), the object, ECS event category and type; then
  pid/ppid/proctitle/comm/exe/cwd move to the process.
* E3 Auditbeat: `event.action`, `event.outcome`, `event.category`/`event.type`/`event.kind`, `auditd.*`
  (`message_type` lower-case, `sequence`, `result`, `session` unless unset, `data` with `socket_x` ->
  `socket.x`, `summary`, `paths`), `user.*` ids (unset ones left out), `process.*` (pid and parent pid as
  numbers), `file.*`, `source`/`destination`, `network.direction`, `tags` (the rule keys, then the stream's
  tags, `auditd_manager-auditd` by default, which the agent appends). The ids are not
  resolved to names: that needs the collecting host's user database, which a recorded event does not carry.
* E4 ingest pipeline: `ecs.version`, `-` -> `_` in every key, `user.audit`/`user.selinux`/... moved under
  `auditd.user.*`, `source.path`/`destination.path` -> `.address`, `auditd.sequence` -> `event.sequence`,
  `auditd.data.id` -> `event.id`, the listed `auditd.data` counters converted to numbers (a failed
  conversion, such as `exit` `EINPROGRESS`, is the pipeline's failure: `error.message` is set and the
  remaining processors do not run), empty values removed.

Not modelled: records of types the fixtures do not use are parsed but only the normalisations listed in
`_SYSCALL_NORMS` and `_RECORD_NORMS` are applied (others get go-libaudit's default, or none); the syscall
name tables cover x86_64 and aarch64 for the syscalls in `_SYSCALLS` only (others stay numbers).
Records that auditd writes itself (DAEMON_START, DAEMON_END, DAEMON_ROTATE, ...) never reach the netlink
socket: the Elastic integration never indexes them, so their Elastic view is an empty document.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

AUDITD_FORMAT = "auditd_log"
ENRICHED_SEPARATOR = "\x1d"
AUDIT_LOG_SOURCE = "/var/log/audit/audit.log"
ECS_DATASET = "auditd_manager.auditd"
ECS_MODULE = "auditd_manager"
PIPELINE_ECS_VERSION = "8.2.0"
UNSET_IDS = ("4294967295", "-1")
# The data stream's `tags` variable (manifest.yml default), appended to every event by the agent.
STREAM_TAGS = ("auditd_manager-auditd",)


class AuditdFormatError(ValueError):
    """A line is not an audit record, or records do not form events; the message says what is wrong."""


# --------------------------------------------------------------------------------------------------
# One record
# --------------------------------------------------------------------------------------------------

_HEADER = re.compile(
    r"^(?:node=(?P<node>\S+) )?type=(?P<type>[A-Z][A-Z0-9_]*(?:\[\d+\])?) "
    r"msg=audit\((?P<seconds>\d+)\.(?P<millis>\d{3}):(?P<serial>\d+)\):?(?P<body>.*)$"
)
# A key is letters, digits, `_`, `-` and the `[n]` of a split EXECVE argument (`a1[0]`); a value is
# double-quoted, single-quoted (user-space `msg='...'`, possibly cut short), or a run without spaces.
_PAIR = re.compile(
    r"""(?P<key>[A-Za-z0-9_][A-Za-z0-9_\-\[\]]*)=(?P<value>"[^"]*"?|'[^']*'?|[^\s"'\x1d][^\s\x1d]*|)"""
)


@dataclass(frozen=True)
class Pair:
    key: str
    value: str  # the text with its quotes removed
    quote: str  # '"', "'" or '' (as written)


def _pairs(text: str, where: str) -> list[Pair]:
    pairs: list[Pair] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char in " \x1d":
            position += 1
            continue
        match = _PAIR.match(text, position)
        if match is None:
            # free text some kernels write before the pairs (AVC: `avc:  denied  { read } for`); a word
            # that is not key=value carries no field
            end = position
            while end < len(text) and text[end] not in " \x1d":
                if text[end] == '"':
                    raise AuditdFormatError(
                        f"{where}: a double quote outside a key=value pair at column {end}"
                    )
                end += 1
            position = end
            continue
        raw = match["value"]
        if raw.startswith('"'):
            if len(raw) < 2 or not raw.endswith('"'):
                raise AuditdFormatError(f"{where}: unterminated double-quoted value of {match['key']}")
            pairs.append(Pair(match["key"], raw[1:-1], '"'))
        elif raw.startswith("'"):
            inner = raw[1:-1] if len(raw) > 1 and raw.endswith("'") else raw[1:]
            pairs.append(Pair(match["key"], inner, "'"))
        else:
            pairs.append(Pair(match["key"], raw, ""))
        position = match.end()
    return pairs


def parse_auditd_record(line: str) -> dict[str, Any]:
    """One audit.log line -> {"type", "seconds", "millis", "serial", "node", "body", "enriched", "fields",
    "enriched_fields"}; `fields` and `enriched_fields` are [key, value, quote] lists in record order."""
    match = _HEADER.match(line.rstrip("\r"))
    if match is None:
        raise AuditdFormatError(
            "expected an audit record: '[node=<host> ]type=<TYPE> msg=audit(<seconds>.<ms>:<serial>): "
            "<key>=<value> ...'"
        )
    body, _, enriched = match["body"].partition(ENRICHED_SEPARATOR)
    where = f"type={match['type']}"
    fields = [[p.key, p.value, p.quote] for p in _pairs(body, where)]
    enriched_fields = [[p.key, p.value, p.quote] for p in _pairs(enriched, where)] if enriched else []
    return {
        "type": match["type"],
        "seconds": int(match["seconds"]),
        "millis": int(match["millis"]),
        "serial": int(match["serial"]),
        "node": match["node"],
        "body": body.strip(" "),
        "enriched": enriched,
        "fields": fields,
        "enriched_fields": enriched_fields,
    }


def event_key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """The records of one event share node, timestamp and serial."""
    return (record["node"], record["seconds"], record["millis"], record["serial"])


def header_text(record: Mapping[str, Any]) -> str:
    return f"audit({record['seconds']}.{record['millis']:03d}:{record['serial']}):"


# --------------------------------------------------------------------------------------------------
# Records -> events
# --------------------------------------------------------------------------------------------------


@dataclass
class LineGroup:
    """The lines of one event in a fixture: `line` is the first record's line number."""

    line: int
    lines: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class GroupProblem:
    line: int
    code: str
    message: str
    fix: str


def group_auditd_lines(text: str) -> tuple[list[LineGroup], list[GroupProblem]]:
    """Split a fixture's text into events: consecutive lines with the same audit(...) header.

    A line that is not a record, a blank line, and a record whose event already ended earlier in the file
    (its records interleaved with another event's) are problems; the rest still forms events.
    """
    groups: list[LineGroup] = []
    problems: list[GroupProblem] = []
    finished: dict[tuple[Any, ...], int] = {}
    current: LineGroup | None = None
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if line.strip() == "":
            if number != len(lines):  # the final newline leaves one empty last item
                problems.append(
                    GroupProblem(number, "fixture-blank-line", "blank line in a fixture", "remove it")
                )
            continue
        try:
            record = parse_auditd_record(line)
        except AuditdFormatError as exc:
            problems.append(
                GroupProblem(
                    number,
                    "fixture-event",
                    f"invalid auditd_log record: {exc}",
                    "record the lines exactly as auditd writes them to /var/log/audit/audit.log",
                )
            )
            continue
        key = event_key(record)
        if current is not None and event_key(current.records[0]) == key:
            current.lines.append(line)
            current.records.append(record)
            continue
        if current is not None:
            finished[event_key(current.records[0])] = current.line
        if key in finished:
            problems.append(
                GroupProblem(
                    number,
                    "fixture-interleaved",
                    f"this record belongs to the event {header_text(record)} that starts at line "
                    f"{finished[key]}, but another event's records come in between",
                    "keep the records of one event on consecutive lines (as the kernel emits them)",
                )
            )
            current = None
            continue
        current = LineGroup(number, [line], [record])
        groups.append(current)
    return groups, problems


def auditd_event(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The native form of one event: its records, in order."""
    if not records:
        raise AuditdFormatError("an audit event has at least one record")
    return {"records": [copy.deepcopy(dict(record)) for record in records]}


def parse_auditd_event(text: str) -> dict[str, Any]:
    """The records of ONE event (lines joined with newlines) -> its native form."""
    groups, problems = group_auditd_lines(text)
    if problems:
        raise AuditdFormatError(problems[0].message)
    if len(groups) != 1:
        raise AuditdFormatError(f"expected the records of one event, found {len(groups)} events")
    return auditd_event(groups[0].records)


def _records(native: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    records = native.get("records")
    if not isinstance(records, list) or not records:
        raise AuditdFormatError("expected a parsed audit event with its records")
    return records


# --------------------------------------------------------------------------------------------------
# Reference (Sigma) and Splunk views
# --------------------------------------------------------------------------------------------------


def _record_pairs(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, value) of a record as written: user-space `msg='...'` flattened, ENRICHED pairs appended."""
    out: list[tuple[str, str]] = []
    for key, value, quote in record["fields"]:
        if key == "msg" and quote == "'":
            out.extend((p.key, p.value) for p in _pairs(value, f"type={record['type']} msg"))
        else:
            out.append((key, value))
    out.extend((key, value) for key, value, _ in record["enriched_fields"])
    return out


_REGISTER_ARGS = ("a0", "a1", "a2", "a3")


def _merged(native: Mapping[str, Any]) -> dict[str, Any]:
    records = _records(native)
    has_execve = any(r["type"] == "EXECVE" for r in records)
    bags: dict[str, list[str]] = {"type": list(dict.fromkeys(str(r["type"]) for r in records))}
    node = records[0].get("node")
    if node:
        bags["node"] = [str(node)]
    for record in records:
        for key, value in _record_pairs(record):
            if key in ("type", "node"):
                continue
            if has_execve and record["type"] == "SYSCALL" and key in _REGISTER_ARGS:
                continue
            values = bags.setdefault(key, [])
            if value not in values:
                values.append(value)
    return {key: values if len(values) > 1 else values[0] for key, values in bags.items()}


def auditd_reference_view(native: Mapping[str, Any]) -> dict[str, Any]:
    """The Sigma view of one event (module docstring: the merged records, values as written)."""
    return _merged(native)


def auditd_splunk_fields(native: Mapping[str, Any]) -> dict[str, Any]:
    """The fields Splunk's key/value extraction gives the event's records (rules SK1-SK4), merged."""
    view = _merged(native)
    headers = []
    for record in _records(native):
        text = header_text(record)
        if text not in headers:
            headers.append(text)
    view["msg"] = headers if len(headers) > 1 else headers[0]
    return view


def auditd_host(native: Mapping[str, Any]) -> str | None:
    node = _records(native)[0].get("node")
    return str(node) if node else None


# --------------------------------------------------------------------------------------------------
# Hex and sockaddr decoding (go-libaudit auparse/hex.go, sockaddr.go)
# --------------------------------------------------------------------------------------------------

_UPPER_HEX = re.compile(r"^(?:[0-9A-F]{2})+$")


def hex_bytes(text: str) -> bytes | None:
    """Upper-case hex of even length -> bytes; anything else (quoted text, lower case) -> None."""
    if not _UPPER_HEX.match(text):
        return None
    return bytes.fromhex(text)


def hex_to_string(text: str) -> str | None:
    """hexToString: decode, cut at the first NUL."""
    data = hex_bytes(text)
    if data is None:
        return None
    return data.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def hex_to_strings(text: str) -> list[str] | None:
    """hexToStrings: decode, split on NUL (a trailing NUL gives a last empty string)."""
    data = hex_bytes(text)
    if data is None:
        return None
    return [part.decode("utf-8", "surrogateescape") for part in data.split(b"\x00")]


def parse_sockaddr(text: str) -> dict[str, str]:
    """A SOCKADDR `saddr` -> family and address fields, as go-libaudit parseSockaddr names them."""
    if len(text) < 4:
        raise AuditdFormatError(f"invalid saddr {text!r}: too short")
    try:
        family = int(text[2:4] + text[0:2], 16)  # host order (little endian)
    except ValueError:
        raise AuditdFormatError(f"invalid saddr {text!r}: not hex") from None
    if family == 1:
        path = hex_to_string(text[4:])
        if path is None:
            raise AuditdFormatError(f"invalid saddr {text!r}: the unix path is not hex")
        return {"family": "unix", "path": path}
    if family == 2:
        if len(text) < 16:
            raise AuditdFormatError(f"invalid socket address size family=ipv4: {len(text)}")
        port = int(text[4:8], 16)
        address = ".".join(str(int(text[i : i + 2], 16)) for i in range(8, 16, 2))
        return {"family": "ipv4", "addr": address, "port": str(port)}
    if family == 10:
        if len(text) < 48:
            raise AuditdFormatError(f"invalid socket address size family=ipv6: {len(text)}")
        port = int(text[4:8], 16)
        flow = int(text[8:16], 16)
        out = {
            "family": "ipv6",
            "addr": str(ipaddress.IPv6Address(bytes.fromhex(text[16:48]))),
            "port": str(port),
        }
        if flow > 0:
            out["flow"] = str(flow)
        return out
    if family == 16:
        return {"family": "netlink", "saddr": text}
    return {"family": str(family), "saddr": text}


# --------------------------------------------------------------------------------------------------
# go-libaudit auparse: one record's data (E1)
# --------------------------------------------------------------------------------------------------

_ARCHES = {0xC000003E: "x86_64", 0xC00000B7: "aarch64", 0x40000003: "i386"}
# The syscalls the fixtures and go-libaudit's test vectors use, per architecture (zaudit_syscalls.go).
_SYSCALLS: dict[str, dict[int, str]] = {
    "x86_64": {
        0: "read", 1: "write", 2: "open", 3: "close", 16: "ioctl", 41: "socket", 42: "connect",
        43: "accept", 44: "sendto", 45: "recvfrom", 46: "sendmsg", 47: "recvmsg", 49: "bind", 50: "listen",
        51: "getsockname", 52: "getpeername", 54: "setsockopt", 56: "clone", 57: "fork", 58: "vfork",
        59: "execve", 60: "exit", 62: "kill", 82: "rename", 87: "unlink", 90: "chmod", 92: "chown",
        101: "ptrace", 103: "syslog", 159: "adjtimex", 161: "chroot", 165: "mount", 166: "umount2",
        175: "init_module", 176: "delete_module", 200: "tkill", 231: "exit_group", 234: "tgkill",
        257: "openat", 263: "unlinkat", 265: "linkat", 272: "unshare", 288: "accept4", 308: "setns",
        313: "finit_module", 321: "bpf", 322: "execveat",
    },
    "aarch64": {
        37: "linkat", 40: "mount", 51: "chroot", 56: "openat", 97: "unshare", 105: "init_module",
        106: "delete_module", 116: "syslog", 117: "ptrace", 129: "kill", 198: "socket", 200: "bind",
        201: "listen", 202: "accept", 203: "connect", 206: "sendto", 207: "recvfrom", 211: "sendmsg",
        212: "recvmsg", 221: "execve", 242: "accept4", 268: "setns", 273: "finit_module", 280: "bpf",
        281: "execveat",
    },
}  # fmt: skip
_ERRNO = {
    1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 9: "EBADF", 11: "EAGAIN", 12: "ENOMEM",
    13: "EACCES", 14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL",
    95: "EOPNOTSUPP", 98: "EADDRINUSE", 101: "ENETUNREACH", 104: "ECONNRESET", 110: "ETIMEDOUT",
    111: "ECONNREFUSED", 113: "EHOSTUNREACH", 115: "EINPROGRESS",
}  # fmt: skip
_GO_PAIR = re.compile(r"""([a-z0-9_-]+)=((?:[^"'\s]+)|'(?:\\'|[^'])*'|"(?:\\"|[^"])*")""")
_DROPPED_VALUES = ("", "?", "?,", "(null)")
_SELINUX_PARTS = ("_user", "_role", "_domain", "_level", "_category")


@dataclass
class RecordData:
    data: dict[str, str]
    tags: list[str]
    error: str | None = None


def _go_pairs(text: str) -> dict[str, tuple[str, str]]:
    """extractKeyValuePairs: key -> (value as written, value without quotes); msg='...' flattened."""
    out: dict[str, tuple[str, str]] = {}
    for match in _GO_PAIR.finditer(text):
        key, orig = match.group(1), match.group(2)
        value = orig.strip("'\" ")
        if value in _DROPPED_VALUES:
            continue
        if key == "msg":
            out.update(_go_pairs(value))
            continue
        out[key] = (orig, value)
    return out


def record_data(record: Mapping[str, Any]) -> RecordData:
    """go-libaudit AuditMessage.Data() and Tags() for one record (E1)."""
    text = str(record["body"])
    if record["type"] == "LOGIN":  # normalizeAuditMessage: `old auid=` / `new ses=` of older kernels
        text = text.replace("old ", "old_", 2).replace("new ", "new_", 2)
    if record["type"] == "AVC":
        avc = re.search(r"avc:\s+(\w+)\s+\{\s*(.*?)\s*\}\s+for\s+", text)
        if avc:
            text = f"seresult={avc.group(1)} seperms={','.join(avc.group(2).split())} {text[avc.end() :]}"
    pairs = _go_pairs(text)
    values = {key: value for key, (_, value) in pairs.items()}
    originals = {key: orig for key, (orig, _) in pairs.items()}
    tags: list[str] = []
    for key in ("auid", "old-auid", "ses"):
        if values.get(key) in UNSET_IDS:
            values[key] = "unset"
    if "subj" in values:
        context = values.pop("subj")
        for suffix, part in zip(_SELINUX_PARTS, context.split(":", len(_SELINUX_PARTS) - 1), strict=False):
            values["subj" + suffix] = part
    result = values.pop("success", None)
    if result is None:
        result = values.pop("res", None)
    if result is not None:
        lowered = result.lower()
        values["result"] = "success" if lowered in ("yes", "1") or lowered.startswith("suc") else "fail"
    exit_code = values.get("exit")
    if exit_code is not None:
        try:
            number = int(exit_code)
        except ValueError:
            return RecordData(values, tags, f"failed to parse exit: {exit_code!r}")
        if number < 0 and -number in _ERRNO:
            values["exit"] = _ERRNO[-number]
    if "key" in values:
        del values["key"]
        decoded = hex_bytes(originals["key"])
        if decoded is not None:
            tags = decoded.decode("utf-8", "surrogateescape").split("\x01")
        else:
            raw_key = pairs["key"][1]
            tags = [raw_key.split("=", 1)[1]] if "=" in raw_key else [raw_key]

    def hex_decode(key: str) -> None:
        if key in values:
            strings = hex_to_strings(originals[key])
            if strings:
                values[key] = " ".join(strings)

    hex_decode("cwd")
    kind = record["type"]
    if kind == "SYSCALL":
        arch_text = values.get("arch")
        if arch_text is None:
            return RecordData(values, tags, "arch key not found")
        arch = _ARCHES.get(int(arch_text, 16), arch_text)
        values["arch"] = arch
        syscall = values.get("syscall")
        if syscall is not None and syscall.isdigit():
            values["syscall"] = _SYSCALLS.get(arch, {}).get(int(syscall), syscall)
        hex_decode("exe")
    elif kind == "SOCKADDR":
        saddr = values.pop("saddr", None)
        if saddr is None:
            return RecordData(values, tags, "saddr key not found")
        values.update(parse_sockaddr(saddr))
    elif kind == "PROCTITLE":
        hex_decode("proctitle")
    elif kind == "USER_CMD":
        hex_decode("cmd")
    elif kind == "EXECVE":
        count = int(values.get("argc", "0"))
        for index in range(count):
            key = f"a{index}"
            if key not in values:
                return RecordData(values, tags, f"failed to find arg {key}")
            decoded_arg = hex_to_string(originals[key])
            if decoded_arg is not None:
                values[key] = decoded_arg
    elif kind == "PATH":
        if "obj" in values:
            context = values.pop("obj")
            for suffix, part in zip(
                _SELINUX_PARTS, context.split(":", len(_SELINUX_PARTS) - 1), strict=False
            ):
                values["obj" + suffix] = part
        hex_decode("name")
    elif kind in ("TTY", "USER_TTY"):
        hex_decode("data")
    elif kind == "USER_LOGIN":
        hex_decode("acct")
    return RecordData(values, tags)


# --------------------------------------------------------------------------------------------------
# go-libaudit aucoalesce: one event (E2)
# --------------------------------------------------------------------------------------------------

_RECORD_NUMBERS = {
    "LOGIN": 1006, "USER_AUTH": 1100, "USER_ACCT": 1101, "USER_MGMT": 1102, "CRED_ACQ": 1103,
    "CRED_DISP": 1104, "USER_START": 1105, "USER_END": 1106, "USER_AVC": 1107, "USER_CHAUTHTOK": 1108,
    "USER_ERR": 1109, "CRED_REFR": 1110, "USYS_CONFIG": 1111, "USER_LOGIN": 1112, "USER_LOGOUT": 1113,
    "USER_CMD": 1123, "SYSTEM_BOOT": 1127, "SYSTEM_SHUTDOWN": 1128, "SYSTEM_RUNLEVEL": 1129,
    "SERVICE_START": 1130, "SERVICE_STOP": 1131, "SOFTWARE_UPDATE": 1138, "DAEMON_START": 1200,
    "DAEMON_END": 1201, "DAEMON_ABORT": 1202, "DAEMON_CONFIG": 1203, "DAEMON_RECONFIG": 1204,
    "DAEMON_ROTATE": 1205, "DAEMON_RESUME": 1206, "DAEMON_ACCEPT": 1207, "DAEMON_CLOSE": 1208,
    "DAEMON_ERR": 1209, "SYSCALL": 1300, "PATH": 1302, "IPC": 1303, "SOCKETCALL": 1304,
    "CONFIG_CHANGE": 1305, "SOCKADDR": 1306, "CWD": 1307, "EXECVE": 1309, "EOE": 1320,
    "BPRM_FCAPS": 1321, "CAPSET": 1322, "NETFILTER_CFG": 1325, "PROCTITLE": 1327, "AVC": 1400,
    "ANOM_PROMISCUOUS": 1700, "ANOM_ABEND": 1701,
}  # fmt: skip

# The daemon's own records: written to audit.log by auditd, never sent to the netlink socket.
DAEMON_RECORDS = frozenset(name for name, number in _RECORD_NUMBERS.items() if 1200 <= number <= 1299)


def event_category(record_type: str) -> str:
    """GetAuditEventType (aucoalesce/event_type.go) for the record types the model knows."""
    number = _RECORD_NUMBERS.get(record_type)
    if number is None:
        return "unknown"
    if 1100 <= number <= 1106 or 1108 <= number <= 1110 or 1112 <= number <= 1113:
        return "user-login"
    if number in (1127, 1128, 1129, 1130, 1131):
        return "system-services"
    if number in (1111, 1305, 1325):
        return "configuration"
    if number in (1123,):
        return "user-space"
    if 1200 <= number <= 1299:
        return "audit-daemon"
    if number in (1107, 1400):
        return "mac-decision"
    if number in (1700, 1701):
        return "anomaly"
    if 1300 <= number <= 1304 or 1306 <= number <= 1327:
        return "audit-rule"
    return "unknown"


@dataclass(frozen=True)
class Normalization:
    action: str = ""
    object_what: str = ""
    object_primary: tuple[str, ...] = ()
    object_secondary: tuple[str, ...] = ()
    object_path_index: int = 0
    how: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    type: tuple[str, ...] = ()
    kind: str = ""


_PROCESS = ("process",)
_NETWORK = ("network",)
# aucoalesce/normalizations.yaml, for the syscalls and record types the pack's events use.
_DEFAULT_SYSCALL_NORM = Normalization(category=_PROCESS, type=("info",))
_SYSCALL_NORMS: dict[str, Normalization] = {
    **dict.fromkeys(
        ("execve", "execveat"),
        Normalization("executed", "file", category=_PROCESS, type=("start",)),
    ),
    "listen": Normalization("listen-for-connections", "socket", category=_NETWORK, type=("start",)),
    **dict.fromkeys(
        ("accept", "accept4"),
        Normalization("accepted-connection-from", "socket", category=_NETWORK, type=("connection", "start")),
    ),
    "bind": Normalization("bound-socket", "socket", category=_NETWORK, type=("start",)),
    "connect": Normalization("connected-to", "socket", category=_NETWORK, type=("connection", "start")),
    **dict.fromkeys(
        ("recv", "recvfrom", "recvmsg", "recvmmsg"),
        Normalization("received-from", "socket", category=_NETWORK, type=("connection", "info")),
    ),
    **dict.fromkeys(
        ("send", "sendto", "sendmsg", "sendmmsg"),
        Normalization("sent-to", "socket", category=_NETWORK, type=("connection", "info")),
    ),
    **dict.fromkeys(
        ("kill", "tkill", "tgkill"),
        Normalization("killed-pid", "process", category=_PROCESS, type=("end",)),
    ),
}
_AUDIT_CONFIG_OBJECT = ("op", "key", "audit_enabled", "audit_pid", "audit_backlog_limit", "audit_failure")
_RECORD_NORMS: dict[str, Normalization] = {
    "USER_CMD": Normalization("ran-command", "process", ("cmd",), category=_PROCESS, type=("start",)),
    "SYSTEM_BOOT": Normalization("booted-system", "system", category=("host",), type=("start",)),
    "SYSTEM_SHUTDOWN": Normalization("shutdown-system", "system", category=("host",), type=("end",)),
    "SERVICE_START": Normalization(
        "started-service", "service", ("unit",), category=_PROCESS, type=("start",)
    ),
    "SERVICE_STOP": Normalization("stopped-service", "service", ("unit",), category=_PROCESS, type=("end",)),
    "CONFIG_CHANGE": Normalization(
        "changed-audit-configuration",
        "audit-config",
        _AUDIT_CONFIG_OBJECT,
        category=("process", "configuration"),
        type=("change",),
    ),
    "DAEMON_ABORT": Normalization("aborted-auditd-startup", "service", category=_PROCESS, type=("end",)),
    "DAEMON_CONFIG": Normalization(
        "changed-auditd-configuration", "service", category=("process", "configuration"), type=("change",)
    ),
    "DAEMON_END": Normalization("shutdown-audit", "service", category=_PROCESS, type=("end",)),
    "DAEMON_ROTATE": Normalization("rotated-audit-logs", "service", category=_PROCESS, type=("change",)),
    "DAEMON_START": Normalization("started-audit", "service", category=_PROCESS, type=("start",)),
}


@dataclass
class CoalescedEvent:
    """aucoalesce.Event (the fields the model fills)."""

    timestamp: str
    sequence: int
    category: str
    record_type: str
    result: str = "unknown"
    session: str = ""
    tags: list[str] = field(default_factory=list)
    actor_primary: str = ""
    actor_secondary: str = ""
    action: str = ""
    object_type: str = ""
    object_primary: str = ""
    object_secondary: str = ""
    how: str = ""
    user_ids: dict[str, str] = field(default_factory=dict)
    user_selinux: dict[str, str] = field(default_factory=dict)
    process: dict[str, Any] = field(default_factory=dict)
    file: dict[str, Any] | None = None
    source: dict[str, str] | None = None
    destination: dict[str, str] | None = None
    direction: str = ""
    data: dict[str, str] = field(default_factory=dict)
    paths: list[dict[str, str]] = field(default_factory=list)
    ecs_category: list[str] = field(default_factory=list)
    ecs_type: list[str] = field(default_factory=list)
    ecs_outcome: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The JSON go-libaudit's Event marshals to (json tags and omitempty as in coalesce.go)."""
        summary: dict[str, Any] = {"actor": {}}
        if self.actor_primary:
            summary["actor"]["primary"] = self.actor_primary
        if self.actor_secondary:
            summary["actor"]["secondary"] = self.actor_secondary
        if self.action:
            summary["action"] = self.action
        obj = {k: v for k, v in (("type", self.object_type), ("primary", self.object_primary)) if v}
        if self.object_secondary:
            obj["secondary"] = self.object_secondary
        summary["object"] = obj
        if self.how:
            summary["how"] = self.how
        user: dict[str, Any] = {}
        if self.user_ids:
            user["ids"] = dict(self.user_ids)
        if self.user_selinux:
            user["selinux"] = dict(self.user_selinux)
        out: dict[str, Any] = {
            "@timestamp": self.timestamp,
            "sequence": self.sequence,
            "category": self.category,
            "record_type": self.record_type,
        }
        if self.result:
            out["result"] = self.result
        out["session"] = self.session
        if self.tags:
            out["tags"] = list(self.tags)
        out["summary"] = summary
        out["user"] = user
        out["process"] = {k: v for k, v in self.process.items() if v not in ("", None, [])}
        if self.file is not None:
            out["file"] = dict(self.file)
        if self.source is not None:
            out["source"] = dict(self.source)
        if self.destination is not None:
            out["destination"] = dict(self.destination)
        if self.direction:
            out["network"] = {"direction": self.direction}
        if self.data:
            out["data"] = dict(self.data)
        if self.paths:
            out["paths"] = [dict(p) for p in self.paths]
        ecs_event: dict[str, Any] = {}
        if self.ecs_category:
            ecs_event["category"] = list(self.ecs_category)
        if self.ecs_type:
            ecs_event["type"] = list(self.ecs_type)
        if self.ecs_outcome:
            ecs_event["outcome"] = self.ecs_outcome
        out["ecs"] = {
            "event": ecs_event,
            "user": {"effective": {}, "target": {}, "changes": {}},
            "group": {},
        }
        return out


def _timestamp(record: Mapping[str, Any]) -> str:
    moment = datetime.fromtimestamp(int(record["seconds"]), UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    millis = int(record["millis"])
    if millis:
        text += "." + f"{millis:03d}".rstrip("0")  # Go's RFC3339Nano trims trailing zeros
    return text + "Z"


def _new_event(special: Mapping[str, Any] | None, syscall: Mapping[str, Any] | None) -> CoalescedEvent:
    head = special if special is not None else syscall
    assert head is not None
    event = CoalescedEvent(
        timestamp=_timestamp(head),
        sequence=int(head["serial"]),
        category=event_category(str(head["type"])),
        record_type=str(head["type"]).lower(),
    )
    source = syscall if syscall is not None else head
    parsed = record_data(source)
    if parsed.error is not None:
        event.warnings.append(parsed.error)
    data = dict(parsed.data)
    event.result = data.pop("result", "unknown")
    if "ses" in data:
        event.session = data.pop("ses")
    if "auid" in data:
        event.actor_primary = data["auid"]
    if "uid" in data:
        event.actor_secondary = data["uid"]
    event.tags = list(parsed.tags)
    for key, value in data.items():
        if key.endswith("uid") or key.endswith("gid"):
            event.user_ids[key] = value
        elif key.startswith("subj_"):
            event.user_selinux[key[5:]] = value
        else:
            event.data[key] = value
    return event


def coalesce(records: Sequence[Mapping[str, Any]]) -> CoalescedEvent:
    """aucoalesce.CoalesceMessages for the records of one event (E2)."""
    records = [r for r in records if r["type"] != "EOE"]
    if not records:
        raise AuditdFormatError("messages is empty")
    if len(records) == 1:
        event = _new_event(records[0], None)
    else:
        special = None
        syscall = None
        for index, record in enumerate(records):
            if index == 0 and record["type"] != "SYSCALL":
                special = record
                continue
            if record["type"] == "SYSCALL":
                syscall = record
                break
        if syscall is None:
            raise AuditdFormatError("missing syscall message in compound event")
        event = _new_event(special, syscall)
        for record in records:
            kind = record["type"]
            if kind == "SYSCALL":
                event.data.pop("items", None)
            elif kind == "PATH":
                event.paths.append(record_data(record).data)
            elif kind == "SOCKADDR":
                _add_sockaddr(record, event)
            elif kind == "EXECVE":
                _add_execve(record, event)
            else:
                parsed = record_data(record)
                for key, value in parsed.data.items():
                    if key in event.data:
                        event.warnings.append(f"duplicate key ({key}) from {kind} message")
                        continue
                    event.data[key] = value
    _apply_normalization(event)
    for key, target in (("pid", "pid"), ("ppid", "ppid"), ("proctitle", "title"), ("comm", "name"),
                        ("exe", "exe"), ("cwd", "cwd")):  # fmt: skip
        event.process[target] = event.data.pop(key, "")
    return event


def _add_sockaddr(record: Mapping[str, Any], event: CoalescedEvent) -> None:
    try:
        parsed = record_data(record)
    except AuditdFormatError as exc:
        event.warnings.append(f"failed to parse SOCKADDR message: {exc}")
        return
    syscall = event.data.get("syscall")
    if syscall is None:
        event.warnings.append("failed to add SOCKADDR data because syscall is unknown")
        return
    for key, value in parsed.data.items():
        event.data["socket_" + key] = value
    address = {
        k: parsed.data[s] for k, s in (("ip", "addr"), ("port", "port"), ("path", "path")) if s in parsed.data
    }
    if syscall in ("recvfrom", "recvmsg", "accept", "accept4"):
        event.source = address or None
        event.direction = "ingress"
    elif syscall in ("connect", "sendto", "sendmsg"):
        event.destination = address or None
        event.direction = "egress"


def _add_execve(record: Mapping[str, Any], event: CoalescedEvent) -> None:
    parsed = record_data(record)
    if parsed.error is not None:
        event.warnings.append(f"failed to parse EXECVE message: {parsed.error}")
        return
    argc = parsed.data.get("argc")
    if argc is None:
        event.warnings.append("argc key not found in EXECVE message")
        return
    event.data["argc"] = argc
    event.process["args"] = [parsed.data[f"a{index}"] for index in range(int(argc))]


def _apply_normalization(event: CoalescedEvent) -> None:
    exe = event.data.get("exe", event.data.get("comm"))
    if exe is not None:
        event.how = exe
        if exe.startswith(("/usr/bin/python", "/usr/bin/sh", "/usr/bin/bash", "/usr/bin/perl")):
            event.how = event.data.get("comm", exe)
    syscall_norm = None
    if "syscall" in event.data:
        syscall_norm = _SYSCALL_NORMS.get(event.data["syscall"], _DEFAULT_SYSCALL_NORM)
    norm = syscall_norm if event.record_type == "syscall" else _RECORD_NORMS.get(event.record_type.upper())
    if norm is None:
        event.warnings.append("no normalization found for event")
        return
    event.ecs_category = list(norm.category)
    event.ecs_type = list(norm.type)
    if syscall_norm is not None and syscall_norm is not norm:
        event.ecs_category += list(syscall_norm.category)
        event.ecs_type += list(syscall_norm.type)
        if event.result == "fail":
            event.ecs_outcome = "failure"
    event.action = norm.action
    event.object_type = norm.object_what
    if norm.object_what in ("file", "filesystem") and event.paths:
        _set_file_object(event, norm.object_path_index)
    elif norm.object_what == "socket":
        if "socket_addr" in event.data:
            event.object_primary = event.data["socket_addr"]
        elif "socket_path" in event.data:
            event.object_primary = event.data["socket_path"]
        if "socket_port" in event.data:
            event.object_secondary = event.data["socket_port"]
    for key in norm.object_primary:
        value = event.data.get(key, event.user_ids.get(key))
        if value is not None:
            event.object_primary = value
            break


def _set_file_object(event: CoalescedEvent, hint: int) -> None:
    index = hint if len(event.paths) > hint else 0
    path = event.paths[index]
    for candidate in event.paths[index:]:
        if candidate.get("nametype") not in ("PARENT", "UNKNOWN"):
            path = candidate
            break
    file: dict[str, Any] = {}
    if "name" in path:
        event.object_primary = path["name"]
        file["path"] = path["name"]
    if "rdev" in path:
        file["device"] = path["rdev"]
    if "inode" in path:
        file["inode"] = path["inode"]
    if "mode" in path:
        mode = int(path["mode"], 8)
        file["mode"] = f"{mode & 0o7777:04o}"
        kind = mode & 0o170000
        event.object_type = {
            0o100000: "file",
            0o040000: "directory",
            0o020000: "character-device",
            0o060000: "block-device",
            0o010000: "named-pipe",
            0o120000: "symlink",
            0o140000: "socket",
        }.get(kind, event.object_type)
    if "ouid" in path:
        file["uid"] = path["ouid"]
    if "ogid" in path:
        file["gid"] = path["ogid"]
    ordered: dict[str, Any] = {
        k: file[k] for k in ("path", "device", "inode", "mode", "uid", "gid") if k in file
    }
    event.file = ordered


# --------------------------------------------------------------------------------------------------
# Auditbeat (E3) and the ingest pipeline (E4)
# --------------------------------------------------------------------------------------------------

_USER_ID_FIELDS = {
    "uid": "id",
    "gid": "group.id",
    "euid": "effective.id",
    "egid": "effective.group.id",
    "suid": "saved.id",
    "sgid": "saved.group.id",
    "fsuid": "filesystem.id",
    "fsgid": "filesystem.group.id",
    "auid": "audit.id",
}


def _put(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _get(doc: Mapping[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _delete(doc: dict[str, Any], path: str) -> Any:
    parts = path.split(".")
    node: Any = doc
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, dict):
        return node.pop(parts[-1], None)
    return None


def auditbeat_document(event: CoalescedEvent) -> dict[str, Any]:
    """buildMetricbeatEvent (E3): the document Auditbeat sends, before the ingest pipeline."""
    outcome = "failure" if event.result == "fail" else event.result
    doc: dict[str, Any] = {
        "@timestamp": _millis_timestamp(event.timestamp),
        "event": {"category": event.category, "action": event.action, "outcome": outcome},
    }
    auditd: dict[str, Any] = {
        "message_type": event.record_type,
        "sequence": event.sequence,
        "result": event.result,
        "data": {},
    }
    for key, value in event.data.items():
        if key.startswith("socket_"):
            _put(auditd["data"], "socket." + key[7:], value)
        else:
            auditd["data"][key] = value
    if event.session != "unset":
        auditd["session"] = event.session
    user: dict[str, Any] = {}
    for key, value in event.user_ids.items():
        if value == "unset":
            continue
        _put(user, _USER_ID_FIELDS.get(key, f"{key}.id"), value)
        if event.user_selinux:
            user["selinux"] = dict(event.user_selinux)
    doc["user"] = user
    process: dict[str, Any] = {}
    for key, target in (("pid", "pid"), ("ppid", "parent.pid")):
        text = event.process.get(key)
        if text and str(text).lstrip("-").isdigit():
            _put(process, target, int(text))
    for key, target in (
        ("title", "title"),
        ("name", "name"),
        ("exe", "executable"),
        ("cwd", "working_directory"),
    ):
        if event.process.get(key):
            process[target] = event.process[key]
    if event.process.get("args"):
        process["args"] = list(event.process["args"])
    if process:
        doc["process"] = process
    if event.file is not None:
        doc["file"] = dict(event.file)
    for name, address in (("source", event.source), ("destination", event.destination)):
        if address is not None:
            doc[name] = dict(address)
    if event.direction:
        doc["network"] = {"direction": event.direction}
    if event.tags:
        doc["tags"] = list(event.tags)
    summary: dict[str, Any] = {}
    for path, value in (
        ("actor.primary", event.actor_primary),
        ("actor.secondary", event.actor_secondary),
        ("object.primary", event.object_primary),
        ("object.secondary", event.object_secondary),
        ("object.type", event.object_type),
        ("how", event.how),
    ):
        if value:
            _put(summary, path, value)
    if summary:
        auditd["summary"] = summary
    if event.paths:
        auditd["paths"] = [dict(p) for p in event.paths]
    doc["auditd"] = auditd
    doc["event"]["kind"] = "event"
    if event.ecs_category:
        doc["event"]["category"] = list(event.ecs_category)
    if event.ecs_type:
        doc["event"]["type"] = list(event.ecs_type)
    if event.ecs_outcome:
        doc["event"]["outcome"] = event.ecs_outcome
    effective = _get(doc, "user.effective.id")
    if effective is not None and effective == _get(doc, "user.id"):
        _delete(doc, "user.effective")
    return doc


def _millis_timestamp(go_timestamp: str) -> str:
    moment = datetime.strptime(go_timestamp.split(".")[0].rstrip("Z"), "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=UTC
    )
    fraction = go_timestamp.split(".")[1].rstrip("Z") if "." in go_timestamp else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + fraction.ljust(3, "0")[:3] + "Z"


_PIPELINE_RENAMES = (
    ("source.path", "source.address"),
    ("destination.path", "destination.address"),
    ("user.audit", "auditd.user.audit"),
    ("user.new_auid", "auditd.user.new_auid"),
    ("user.old_auid", "auditd.user.old_auid"),
    ("file.selinux", "auditd.file.selinux"),
    ("user.selinux", "auditd.user.selinux"),
    ("user.saved", "auditd.user.saved"),
    ("user.filesystem", "auditd.user.filesystem"),
)
_PIPELINE_LONGS = (
    *(
        f"auditd.data.{name}"
        for name in (
            "removed", "items", "lport", "rport", "sport", "dport", "entries", "argc", "seqno", "nargs",
            "socket.port", "old_vcpu", "new_vcpu", "changed", "added",
        )
    ),
    "destination.port",
    "source.port",
    *(f"auditd.data.{name}" for name in ("spid", "opid", "nlnk_pid", "vm_pid", "audit_pid", "exit")),
    "process.pid",
    "process.exit_code",
)  # fmt: skip


class _PipelineFailure(Exception):
    pass


def _underscore_keys(value: Any) -> None:
    if isinstance(value, dict):
        for key in list(value):
            _underscore_keys(value[key])
            if "-" in key:
                value[key.replace("-", "_")] = value.pop(key)


def _to_long(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("boolean")
    if isinstance(value, int):
        return value
    return int(str(value).strip())


def _remove_empty(value: Any) -> None:
    def empty(item: Any) -> bool:
        if isinstance(item, (dict, list)):
            _remove_empty(item)
        return item is None or item == "" or (isinstance(item, (dict, list)) and len(item) == 0)

    if isinstance(value, dict):
        for key in [k for k, item in value.items() if empty(item)]:
            del value[key]
    elif isinstance(value, list):
        value[:] = [item for item in value if not empty(item)]


def auditd_manager_pipeline(document: Mapping[str, Any]) -> dict[str, Any]:
    """The auditd_manager.auditd ingest pipeline (E4) over one Auditbeat document."""
    doc: dict[str, Any] = copy.deepcopy(dict(document))
    try:
        _put(doc, "ecs.version", PIPELINE_ECS_VERSION)
        original = _delete(doc, "event.original")
        if original is not None:
            _put(doc, "auditd.messages", original)
            if isinstance(original, list):
                _put(doc, "event.original", "\n".join(str(line) for line in original))
        _underscore_keys(doc)
        for source, target in _PIPELINE_RENAMES:
            value = _get(doc, source)
            if value is not None and _get(doc, target) is None:
                _delete(doc, source)
                _put(doc, target, value)
        if _get(doc, "event.outcome") == "fail":
            _put(doc, "event.outcome", "failure")
        for source, target in (("auditd.sequence", "event.sequence"), ("auditd.data.id", "event.id")):
            value = _get(doc, source)
            if value is not None and _get(doc, target) is None:
                _delete(doc, source)
                _put(doc, target, value)
        for path in _PIPELINE_LONGS:
            value = _get(doc, path)
            if value is None:
                continue
            try:
                _put(doc, path, _to_long(value))
            except ValueError:
                raise _PipelineFailure(
                    f"field [{path.rsplit('.', 1)[-1]}] of type [{type(value).__name__}] in document "
                    f"cannot be converted: [{value}]"
                ) from None
        tags = doc.get("tags")
        if not (isinstance(tags, list) and "preserve_original_event" in tags):
            _delete(doc, "event.original")
            _delete(doc, "auditd.messages")
        _remove_empty(doc)
    except _PipelineFailure as exc:
        _put(doc, "error.message", str(exc))
    return doc


def auditd_ecs_document(native: Mapping[str, Any]) -> dict[str, Any]:
    """The document the auditd_manager integration indexes for one event (E1-E4), with the fields the agent
    and the index template add (`data_stream.*`, `event.dataset`, `event.module`)."""
    records = _records(native)
    meta: dict[str, Any] = {
        "data_stream": {"type": "logs", "dataset": ECS_DATASET, "namespace": "default"},
        "event": {"dataset": ECS_DATASET, "module": ECS_MODULE},
    }
    kernel = [r for r in records if r["type"] not in DAEMON_RECORDS]
    if not kernel:
        return meta  # never sent to the netlink socket: nothing is indexed (see the module docstring)
    try:
        event = coalesce(kernel)
    except AuditdFormatError as exc:
        doc: dict[str, Any] = {"error": {"message": str(exc)}}
    else:
        beat = auditbeat_document(event)
        beat["tags"] = [*beat.get("tags", []), *STREAM_TAGS]  # the agent appends the stream's tags
        doc = auditd_manager_pipeline(beat)
    doc.setdefault("data_stream", {}).update(meta["data_stream"])
    doc.setdefault("event", {}).update(meta["event"])
    return doc
