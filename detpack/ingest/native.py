"""Parse one fixture line in its native format into a structured event."""

from __future__ import annotations

import json
import re
from typing import Any

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

MAX_EVENT_BYTES = 256 * 1024


class NativeFormatError(ValueError):
    """The line is not a valid event of its format; the message says what is wrong."""


def parse_json_line(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise NativeFormatError(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(value, dict):
        raise NativeFormatError(f"a JSON line must hold one object, found {type(value).__name__}")
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
    raise NativeFormatError(f"unknown fixture format {fixture_format!r}")
