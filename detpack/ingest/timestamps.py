"""When an event happened: the value of its data source's timestamp field as epoch seconds (UTC).

Correlation rules count events inside a time window, so every engine that runs them needs each event's
time: the Sigma reference (a column of the reference table), Splunk (`_time`) and Elasticsearch
(`@timestamp`, set by the ingest models in `detpack.ingest.ecs`). A data source names the field that
holds it in `datasources/<name>.yml` (`timestamp_field`); the field need not be one a rule may name
(Zeek's `ts` becomes `@timestamp` in Elastic and is not a rule field).

Accepted values (`parse_timestamp`):
* a JSON number, or a string holding only a decimal number: seconds since 1970-01-01T00:00:00Z
  (Zeek's `ts` 1700000000.123456, Docker's `time`);
* an RFC 3339 / ISO 8601 date-time `YYYY-MM-DD[T ]hh:mm:ss[.fraction][Z|+hh:mm|-hh:mm]` with up to nine
  fraction digits (Kubernetes' `stageTimestamp` with microseconds, Falco's `time` with nanoseconds,
  Sysmon's `UtcTime` `2024-05-01 10:00:00.123`); without a zone it is UTC.
Anything else (a list, a boolean, a date without a time) is no timestamp: `None`.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

__all__ = ["parse_timestamp"]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_DATE_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})(?:[.,](?P<fraction>\d{1,9}))?"
    r"(?P<zone>Z|z|[+-]\d{2}:?\d{2})?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_timestamp(value: Any) -> float | None:
    """Seconds since the epoch (UTC) for a timestamp value, or None when the value is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _NUMBER.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        return None
    try:
        moment = datetime.fromisoformat(f"{match['date']}T{match['time']}")
    except ValueError:
        return None
    zone = match["zone"]
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if offset >= timedelta(hours=24):
            return None
        moment = moment.replace(tzinfo=timezone(sign * offset))
    else:
        moment = moment.replace(tzinfo=UTC)
    fraction = match["fraction"] or ""
    whole = (moment - _EPOCH) // timedelta(seconds=1)
    return whole + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)
