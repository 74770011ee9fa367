"""Parse one fixture line in its native format into a structured event."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

MAX_EVENT_BYTES = 256 * 1024
MAX_EVENT_DEPTH = 64  # JSON objects and arrays nested in one event (a Kubernetes audit event uses about 20)
# Integers every engine can hold: Elasticsearch `long` and SQLite INTEGER are signed 64-bit.
MIN_EVENT_INT, MAX_EVENT_INT = -(2**63), 2**63 - 1


class NativeFormatError(ValueError):
    """The line is not a valid event of its format; the message says what is wrong."""


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:  # json.loads would keep the last silently; Elasticsearch refuses the document
            raise NativeFormatError(f"duplicate key {key!r} in one JSON object")
        result[key] = value
    return result


def _json_constant(name: str) -> Any:
    raise NativeFormatError(f"not valid JSON: {name} is not a JSON value")


def _check_json_values(value: Any) -> None:
    """Refuse what the engines cannot index as the event says: nesting deeper than MAX_EVENT_DEPTH,
    numbers outside 64 bits or not finite, and strings holding a lone UTF-16 surrogate (not Unicode).
    Iterative, so the check itself cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_EVENT_DEPTH:
                raise NativeFormatError(f"JSON is nested more than {MAX_EVENT_DEPTH} levels deep")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            _check_text(item)
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int) and not MIN_EVENT_INT <= item <= MAX_EVENT_INT:
            digits = str(item)
            raise NativeFormatError(
                f"integer {digits[:20]}... ({len(digits)} digits) does not fit in 64 bits"
            )
        elif isinstance(item, float) and not math.isfinite(item):
            raise NativeFormatError("a number is too large to be a finite 64-bit float")


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NativeFormatError(
            f"string {text[:40]!r} holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is not text"
        ) from None


def parse_json_line(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line, object_pairs_hook=_json_object, parse_constant=_json_constant)
    except NativeFormatError:
        raise
    except json.JSONDecodeError as exc:
        raise NativeFormatError(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise NativeFormatError(f"JSON is nested more than {MAX_EVENT_DEPTH} levels deep") from None
    except ValueError as exc:  # e.g. an integer longer than Python's int_max_str_digits
        raise NativeFormatError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise NativeFormatError(f"a JSON line must hold one object, found {type(value).__name__}")
    _check_json_values(value)
    return value


_SYSLOG_PREFIX = re.compile(
    r"^(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) (?P<app>[^:\s]+): "
    r"(?P<xml><Event>.*</Event>)\s*$"
)
_XML_NS = re.compile(r"^\{[^}]*\}")


def parse_sysmon_linux_syslog(line: str) -> dict[str, Any]:
    """`Oct 24 17:05:46 host sysmon: <Event>...</Event>` -> {"System", "EventData", "syslog"} dicts."""
    match = _SYSLOG_PREFIX.match(line)
    if not match:
        raise NativeFormatError(
            "expected a syslog line '<Mon dd hh:mm:ss> <host> sysmon: <Event>...</Event>'"
        )
    try:
        root = ElementTree.fromstring(match["xml"])
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise NativeFormatError(f"the <Event> XML is not well-formed or not allowed: {exc}") from None
    system: dict[str, Any] = {}
    event_data: dict[str, Any] = {}
    for section in root:
        tag = _XML_NS.sub("", section.tag)
        if tag == "System":
            for child in section:
                ctag = _XML_NS.sub("", child.tag)
                system[ctag] = (child.text or "") if len(child.attrib) == 0 else dict(child.attrib)
        elif tag == "EventData":
            for data in section:
                name = data.attrib.get("Name")
                if not name:
                    raise NativeFormatError("an EventData <Data> element has no Name attribute")
                event_data[name] = data.text or ""
    if "EventID" not in system:
        raise NativeFormatError("the <Event> has no System/EventID")
    return {
        "syslog": {"timestamp": match["ts"], "hostname": match["host"], "appname": match["app"]},
        "System": system,
        "EventData": event_data,
    }


def parse_native(fixture_format: str, line: str) -> Any:
    if len(line.encode("utf-8", "surrogatepass")) > MAX_EVENT_BYTES:
        raise NativeFormatError(f"event is longer than {MAX_EVENT_BYTES} bytes")
    if fixture_format == "json_lines":
        return parse_json_line(line)
    if fixture_format == "sysmon_linux_syslog":
        return parse_sysmon_linux_syslog(line)
    if fixture_format == "auditd_log":  # the records of one event, one per line (detpack.ingest.auditd)
        from detpack.ingest.auditd import AuditdFormatError, parse_auditd_event

        try:
            return parse_auditd_event(line)
        except AuditdFormatError as exc:
            raise NativeFormatError(str(exc)) from None
    raise NativeFormatError(f"unknown fixture format {fixture_format!r}")
