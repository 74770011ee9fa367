"""`detpack new`: scaffold a rule, its fixture stubs and its ADS entry, where and as the pack expects them.

What the scaffold writes is valid content (``detpack validate`` accepts it) that is not finished yet:
- the rule's detection is a placeholder on a real field of the data source (value ``detpack-placeholder``);
- the fixture holds four placeholder events in the data source's native format (two attack variants and
  two look-alikes, the minimum `detpack validate` requires)
  that the placeholder detection does not match, so ``detpack test`` fails with a MISSED verdict (see
  ``placeholder_events`` for how each data source gets its events);
- prose the engineer must write (description, false positives, ADS sections, expectation notes) says
  ``TODO(detpack new)``.

``placeholder_findings`` finds both markers, line by line: ``detpack validate`` reports them as warnings,
``detpack test`` as errors, so nothing scaffolded passes the tests until real events are recorded and the
placeholders are replaced.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from detpack.attack import AttackSnapshot, Tactic, Technique, load_attack
from detpack.content.ads import AdsDocument, parse_ads
from detpack.content.datasources import DataSource
from detpack.content.fixtures import FIXTURE_SUFFIXES, FixtureEvent, bind_expectations
from detpack.content.pack import Pack
from detpack.content.yamlfile import parse_yaml
from detpack.findings import ContentError, Finding, Severity
from detpack.replay import load_differences
from detpack.validate.rules import FILE_NAME

PLACEHOLDER = "detpack-placeholder"  # in placeholder events and the placeholder detection value
TODO = "TODO(detpack new)"  # in prose the engineer has to write
ADS_ID = re.compile(r"^DP-ADS-(\d{4})$")
TECHNIQUE = re.compile(r"^(?:attack\.)?(t\d{4}(?:\.\d{3})?)$", re.IGNORECASE)
# The ADS schema's platform names that fit a container pack; a technique's other platforms are left out.
ADS_PLATFORMS = ("Containers", "Linux")
# A field each known data source's rules usually start from; others use a text field of a recorded event.
PLACEHOLDER_FIELDS = {
    "kubernetes_audit": "verb",
    "linux_process_creation": "CommandLine",
    "docker_events": "Action",
}
# Data sources with events written for the purpose; the others get copies of recorded benign events.
TEMPLATE_SOURCES = {
    "kubernetes_audit": "json_lines",
    "docker_events": "json_lines",
    "linux_process_creation": "sysmon_linux_syslog",
}
# Text fields that make a good start for a placeholder detection, in order of preference.
TEXT_FIELDS = ("rule", "query", "exe", "comm", "proctitle", "Configuration", "State", "service", "Image")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


class ScaffoldError(Exception):
    """The request cannot be scaffolded (unknown data source or ADS, a file exists, ...): a usage error."""


@dataclass(frozen=True)
class NewRuleRequest:
    behaviour: str  # what the rule detects, in a few words: the rule and ADS title, and the file names
    datasource: str  # a datasources/<name>.yml
    technique: str  # an ATT&CK v18.1 technique ID: T1610, t1562.001, attack.t1611
    ads: str | None = None  # an existing ADS id to add the rule to
    new_ads: bool = False  # or create a new ADS for it
    name: str | None = None  # the file-name slug (default: from the behaviour)
    author: str = "detpack contributors"
    today: datetime.date = field(default_factory=datetime.date.today)
    rule_id: str | None = None  # default: a random UUID


@dataclass(frozen=True)
class FileChange:
    path: str  # pack-relative, forward slashes
    text: str
    created: bool  # True: a new file; False: an existing file (the ADS) updated


@dataclass(frozen=True)
class ScaffoldPlan:
    rule_name: str
    rule_path: str
    fixture_path: str
    expect_path: str
    ads_id: str
    ads_path: str
    technique: Technique
    tactic: Tactic
    datasource: DataSource
    changes: tuple[FileChange, ...]
    placeholder_source: str = ""  # the recorded event the placeholders copy, if they are copies

    @property
    def created(self) -> list[str]:
        return [c.path for c in self.changes if c.created]

    @property
    def updated(self) -> list[str]:
        return [c.path for c in self.changes if not c.created]


# --- names ------------------------------------------------------------------------------------------


def slugify(text: str, separator: str = "_") -> str:
    """'Tunnel client (ngrok) container started' -> 'tunnel_client_ngrok_container_started'."""
    return separator.join(re.findall(r"[a-z0-9]+", text.lower()))


def _truncate_words(slug: str, limit: int, separator: str) -> str:
    if len(slug) <= limit:
        return slug
    cut = slug[:limit]
    return cut.rsplit(separator, 1)[0] if separator in cut else cut


def normalise_technique(text: str, attack: AttackSnapshot) -> Technique:
    match = TECHNIQUE.match(text.strip())
    if match is None:
        raise ScaffoldError(
            f"{text!r} is not an ATT&CK technique ID: write it as T1610 or T1562.001 "
            "(https://attack.mitre.org/techniques/enterprise/)"
        )
    technique_id = match.group(1).upper()
    technique = attack.techniques.get(technique_id)
    if technique is None:
        raise ScaffoldError(f"{technique_id} is not in ATT&CK v{attack.version}, the pack's pinned snapshot")
    if not technique.current:
        state = "revoked" if technique.revoked else "deprecated"
        raise ScaffoldError(
            f"{technique_id} {technique.name} is {state} in ATT&CK v{attack.version}: use the technique "
            "that replaced it"
        )
    if not technique.tactics:
        raise ScaffoldError(f"{technique_id} has no tactic in ATT&CK v{attack.version}")
    return technique


def check_behaviour(text: str) -> str:
    behaviour = " ".join(text.split())
    if _CONTROL.search(text.strip()) or not 10 <= len(behaviour) <= 100:
        raise ScaffoldError(
            "describe the behaviour on one line in 10 to 100 characters, for example "
            "'Tunnel client container started' (it becomes the rule title and the file names)"
        )
    if len(slugify(behaviour)) < 3:
        raise ScaffoldError("the behaviour needs some letters or digits: they make the file names")
    return behaviour[0].upper() + behaviour[1:]


def next_ads_id(pack: Pack) -> str:
    numbers = [0]
    for doc in pack.ads:
        match = ADS_ID.match(str(doc.meta.get("id", "")))
        if match:
            numbers.append(int(match.group(1)))
        file_match = re.match(r"^dp-ads-(\d{4})-", Path(doc.path).name)
        if file_match:
            numbers.append(int(file_match.group(1)))
    return f"DP-ADS-{max(numbers) + 1:04d}"


def _scalar(text: str) -> str:
    """A YAML scalar for text: plain when YAML reads it back unchanged, else double-quoted (JSON)."""
    try:
        plain_ok = yaml.safe_load(f"key: {text}\n") == {"key": text}
    except yaml.YAMLError:
        plain_ok = False
    return text if plain_ok and text.strip() == text else json.dumps(text, ensure_ascii=False)


# --- the rule ---------------------------------------------------------------------------------------


def _is_text(value: object) -> bool:
    """A string that every target indexes as text or keyword: letters, and not an address or a time."""
    if not isinstance(value, str) or not re.search(r"[A-Za-z]", value) or value.lower() in ("true", "false"):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return not re.match(r"^\d{4}-\d\d-\d\d", value)
    return False


def _placeholder_field(ds: DataSource, example: FixtureEvent | None) -> str:
    """A real field of the data source for the placeholder detection: a text field, never a scope field."""
    preferred = PLACEHOLDER_FIELDS.get(ds.name)
    if preferred in ds.fields:
        return str(preferred)
    scope_keys = {key for key, _ in ds.scope}
    if example is not None:
        view = example.view
        texts = [f for f in view if f not in scope_keys and ds.knows_field(f) and _is_text(view[f])]
        for name in (*TEXT_FIELDS, *sorted(texts)):
            if name in texts:
                return name
    candidates = sorted(f for f in ds.fields if f not in scope_keys) or sorted(ds.fields)
    if not candidates:
        raise ScaffoldError(f"{ds.path} lists no fields: a rule cannot be scaffolded for it")
    return candidates[0]


def _rule_text(
    request: NewRuleRequest,
    behaviour: str,
    ds: DataSource,
    technique: Technique,
    tactic: Tactic,
    rule_id: str,
    placeholder_field: str,
) -> str:
    logsource = "\n".join(f"    {key}: {_scalar(value)}" for key, value in ds.logsource)
    url = technique.url or f"https://attack.mitre.org/techniques/{technique.id.replace('.', '/')}/"
    return f"""title: {_scalar(behaviour)}
id: {rule_id}
status: experimental
description: |
    {TODO}: starting with "Detects", what the rule matches, why it matters
    and what it deliberately does not match.
references:
    - {url}
author: {_scalar(request.author)}
date: {request.today.isoformat()}
tags:
    - attack.{tactic.shortname}
    - attack.{technique.id.lower()}
logsource:
{logsource}
detection:
    # {TODO}: replace the placeholder with the fields and values of the
    # behaviour, as recorded in the fixture events. The fields: {ds.path}.
    selection:
        {placeholder_field}: '{PLACEHOLDER}'
    condition: selection
falsepositives:
    - "{TODO}: the legitimate activity that looks like this behaviour (also listed in the ADS)"
level: medium
"""


def _falsepositive() -> str:
    return f"{TODO}: the legitimate activity that looks like this behaviour (also listed in the ADS)"


# --- the fixture stubs ------------------------------------------------------------------------------


def _at(today: datetime.date, hour: int) -> datetime.datetime:
    return datetime.datetime.combine(today, datetime.time(hour, 0, 0), tzinfo=datetime.UTC)


def _kubernetes_audit_event(today: datetime.date, index: int, what: str) -> dict[str, Any]:
    moment = _at(today, 9 + index)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": str(uuid.UUID(int=index + 1)),
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/default/configmaps/{PLACEHOLDER}",
        "verb": "get",
        "user": {"username": f"{PLACEHOLDER}-user", "groups": ["system:authenticated"]},
        "sourceIPs": ["192.0.2.10"],
        "userAgent": f"{PLACEHOLDER} ({what})",
        "objectRef": {
            "resource": "configmaps",
            "namespace": "default",
            "name": PLACEHOLDER,
            "apiVersion": "v1",
        },
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": f"{stamp}.000000Z",
        "stageTimestamp": f"{stamp}.001000Z",
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }


def _docker_event(today: datetime.date, index: int, what: str) -> dict[str, Any]:
    moment = _at(today, 9 + index)
    container = f"{index + 1:064x}"
    image = f"{PLACEHOLDER}/{slugify(what, '-')}:latest"
    return {
        "status": "start",
        "id": container,
        "from": image,
        "Type": "container",
        "Action": "start",
        "Actor": {"ID": container, "Attributes": {"image": image, "name": PLACEHOLDER}},
        "scope": "local",
        "time": int(moment.timestamp()),
        "timeNano": int(moment.timestamp()) * 1_000_000_000,
    }


def _generic_json_event(ds: DataSource, index: int, what: str) -> dict[str, Any]:
    event: dict[str, Any] = {}
    scope = dict(ds.scope)
    for name in sorted(ds.fields):
        node = event
        parts = name.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[parts[-1]] = scope.get(name, f"{PLACEHOLDER}-event-{index + 1} ({what})")
    return event


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _sysmon_event(ds: DataSource, today: datetime.date, index: int, what: str) -> str:
    """A Sysmon for Linux syslog line: the process-creation template, or the data source's own fields."""
    moment = _at(today, 9 + index)
    event_id = min((value for key, value in ds.scope if key == "EventID"), default="1")
    prefix = f"{_MONTHS[moment.month - 1]} {moment.day:>2} {moment:%H:%M:%S} {PLACEHOLDER}-host sysmon: "
    data: dict[str, str]
    if event_id == "1":
        data = {
            "RuleName": "-",
            "UtcTime": f"{moment:%Y-%m-%d %H:%M:%S}.000",
            "ProcessGuid": "{00000000-0000-0000-0000-00000000000" + str(index + 1) + "}",
            "ProcessId": str(1000 + index),
            "Image": f"/usr/bin/{PLACEHOLDER}",
            "FileVersion": "-",
            "Description": "-",
            "Product": "-",
            "Company": "-",
            "OriginalFileName": "-",
            "CommandLine": f"{PLACEHOLDER} {slugify(what, '-')}",
            "CurrentDirectory": "/",
            "User": "root",
            "LogonGuid": "{00000000-0000-0000-0000-000000000000}",
            "LogonId": "0",
            "TerminalSessionId": "4294967295",
            "IntegrityLevel": "no level",
            "Hashes": "-",
            "ParentProcessGuid": "{00000000-0000-0000-0000-000000000000}",
            "ParentProcessId": "1",
            "ParentImage": "/usr/lib/systemd/systemd",
            "ParentCommandLine": "/sbin/init",
            "ParentUser": "root",
        }
    else:
        data = {name: f"{PLACEHOLDER} ({what})" for name in sorted(ds.fields - {"EventID", "Computer"})}
        data["UtcTime"] = f"{moment:%Y-%m-%d %H:%M:%S}.000"
    event_data = "".join(f'<Data Name="{name}">{value}</Data>' for name, value in data.items())
    return (
        prefix
        + '<Event><System><Provider Name="Linux-Sysmon" Guid="{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"/>'
        f"<EventID>{event_id}</EventID><Version>5</Version><Level>4</Level><Task>{event_id}</Task>"
        "<Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords>"
        f'<TimeCreated SystemTime="{moment:%Y-%m-%dT%H:%M:%S}.000000000Z"/>'
        f'<EventRecordID>{index + 1}</EventRecordID><Correlation/><Execution ProcessID="1" ThreadID="1"/>'
        f"<Channel>Linux-Sysmon/Operational</Channel><Computer>{PLACEHOLDER}-host</Computer>"
        f'<Security UserId="0"/></System><EventData>{event_data}</EventData></Event>'
    )


@dataclass(frozen=True)
class PlaceholderEvents:
    events: tuple[tuple[str, ...], ...]  # attack, attack, look-alike, look-alike: the lines of each
    source: str = ""  # "<fixture>:<line>, ..." when the events are copies of recorded benign events
    example: FixtureEvent | None = None  # the recorded event copied first

    @property
    def lines(self) -> tuple[int, ...]:
        """The line each event starts on in the fixture file."""
        starts, line = [], 1
        for event in self.events:
            starts.append(line)
            line += len(event)
        return tuple(starts)


def _recorded_benign_events(pack: Pack, ds: DataSource) -> list[FixtureEvent]:
    """Benign, in-scope events already recorded for the data source: no rule of the pack fires on them.

    Events named in tests/engine-differences.yml are left out: a copy is another event, which the
    documented difference would not cover.
    """
    try:
        documented = {d.event for d in load_differences(pack)}
    except ContentError:
        documented = set()
    found = []
    for fixture in pack.fixtures:
        if fixture.datasource.name != ds.name:
            continue
        if all(event.expectation is None for event in fixture.events):
            bind_expectations(fixture)  # normally done by validation; the findings do not matter here
        for event in fixture.events:
            expectation = event.expectation
            if (
                event.in_scope
                and expectation is not None
                and expectation.kind == "benign"
                and not expectation.fires
                and event.key not in documented
            ):
                found.append(event)
    return found


def placeholder_events(pack: Pack, ds: DataSource, today: datetime.date) -> PlaceholderEvents:
    """Placeholder events in the data source's native format: two attack variants and two look-alikes.

    Kubernetes audit, Docker events and Sysmon for Linux get events written for the purpose, marked with
    ``detpack-placeholder``. Other data sources get four copies of benign events already recorded for
    them (so every ingest model and engine accepts it and no rule fires), or, for JSON lines without any
    recorded event, an object with every field of the data source.
    """
    whats = (
        "replace with a recorded attack event",
        "replace with a second attack variant (another tool, flag or spelling)",
        "replace with a recorded benign look-alike",
        "replace with a second benign look-alike",
    )
    template = TEMPLATE_SOURCES.get(ds.name) == ds.fixture_format
    if template and ds.name == "kubernetes_audit":
        objects = [_kubernetes_audit_event(today, i, what) for i, what in enumerate(whats)]
        return PlaceholderEvents(tuple((json.dumps(o, separators=(",", ":")),) for o in objects))
    if template and ds.name == "docker_events":
        objects = [_docker_event(today, i, what) for i, what in enumerate(whats)]
        return PlaceholderEvents(tuple((json.dumps(o, separators=(",", ":")),) for o in objects))
    if template:
        return PlaceholderEvents(tuple((_sysmon_event(ds, today, i, what),) for i, what in enumerate(whats)))
    recorded = _recorded_benign_events(pack, ds)
    multi_line = any("\n" in event.raw for event in recorded)  # records of one event on several lines
    if len(recorded) >= 2 or (recorded and not multi_line):
        chosen = [recorded[i % len(recorded)] for i in range(len(whats))]
        return PlaceholderEvents(
            tuple(tuple(event.raw.split("\n")) for event in chosen),
            ", ".join(dict.fromkeys(event.key for event in chosen)),
            chosen[0],
        )
    if ds.fixture_format == "sysmon_linux_syslog":
        return PlaceholderEvents(tuple((_sysmon_event(ds, today, i, what),) for i, what in enumerate(whats)))
    if ds.fixture_format == "json_lines":
        objects = [_generic_json_event(ds, i, what) for i, what in enumerate(whats)]
        return PlaceholderEvents(tuple((json.dumps(o, separators=(",", ":")),) for o in objects))
    raise ScaffoldError(
        f"detpack new has no placeholder event for the fixture format {ds.fixture_format!r} of {ds.name} "
        f"and no recorded event to start from: record the events yourself in tests/fixtures/{ds.name}/ "
        "(see docs/formats.md)"
    )


def _expect_text(rule_name: str, fixture_name: str, placeholders: PlaceholderEvents) -> str:
    first, second, lookalike, other = placeholders.lines
    copied = (
        f"# The placeholders are copies of recorded look-alikes ({placeholders.source}).\n"
        if placeholders.source
        else ""
    )
    return f"""# Written by detpack new. Replace the events of {fixture_name} with events recorded in a lab,
# then say here what each one is (docs/formats.md, "Fixtures and expectations"). The pack needs at least
# two attack variants and two benign look-alikes for every rule.
{copied}events:
  - line: {first}
    kind: attack
    fires: [{rule_name}]
    note: "{TODO}: replace the event on line {first} with a recorded attack event, then describe it here"
  - line: {second}
    kind: attack
    fires: [{rule_name}]
    note: "{TODO}: replace the event on line {second} with a second attack variant, then describe it here"
  - line: {lookalike}
    kind: benign
    fires: []
    lookalike_for: [{rule_name}]
    note: "{TODO}: replace the event on line {lookalike} with a recorded benign look-alike, then describe it"
  - line: {other}
    kind: benign
    fires: []
    lookalike_for: [{rule_name}]
    note: "{TODO}: replace the event on line {other} with a second benign look-alike, then describe it"
"""


# --- the ADS ----------------------------------------------------------------------------------------


def technique_label(technique: Technique) -> str:
    """ATT&CK's display name: "Impair Defenses: Disable or Modify Tools" for a sub-technique."""
    parent = load_attack().techniques.get(technique.parent_id) if technique.parent_id else None
    return f"{parent.name}: {technique.name}" if parent is not None else technique.name


def _validation_addition(rule_name: str, behaviour: str, fixture_path: str) -> list[str]:
    return [
        f"Rule `{rule_name}`: {TODO}: the lab steps that reproduce the behaviour,",
        "and what the rule must fire on.",
        "",
        "```bash",
        f"# {TODO}: the commands that reproduce '{behaviour}' in a lab",
        "```",
        "",
        f"- `{fixture_path}`: {TODO}: its attack events and look-alikes.",
    ]


def _new_ads_text(
    ads_id: str,
    request: NewRuleRequest,
    behaviour: str,
    ds: DataSource,
    technique: Technique,
    tactic: Tactic,
    rule_name: str,
    fixture_path: str,
) -> str:
    platforms = [p for p in ADS_PLATFORMS if p in technique.platforms] or list(ADS_PLATFORMS)
    validation = "\n".join(_validation_addition(rule_name, behaviour, fixture_path))
    url = technique.url or f"https://attack.mitre.org/techniques/{technique.id.replace('.', '/')}/"
    return f"""---
id: {ads_id}
title: {_scalar(behaviour)}
status: draft
priority: medium
author: {_scalar(request.author)}
date: {request.today.isoformat()}
platforms: [{", ".join(platforms)}]
data_sources: [{ds.name}]
attack: [{technique.id}]
rules:
  - {rule_name}
---

# {behaviour}

## Goal

{TODO}: in two or three sentences, the adversary behaviour this strategy detects and why it matters to
the SOC.

## Categorization

MITRE ATT&CK Enterprise, pinned to v18.1:

| Technique | Tactic | What this strategy observes |
|---|---|---|
| {technique.id} {technique_label(technique)} | {tactic.name} | {TODO} |

## Strategy Abstract

{TODO}: the data source ({ds.title}) and, step by step, what the rule `{rule_name}` looks for.

## Technical Context

{TODO}: how the behaviour works and what it leaves in the {ds.name} events, so that an analyst who has
never seen it can read the alert.

## Blind Spots and Assumptions

{TODO}: what the strategy assumes (logging enabled, fields present) and the variants of the behaviour
the rule does not see.

## False Positives

Rule strings (each one is a `falsepositives` entry of a rule of this strategy):
- {_falsepositive()}

## Validation

{validation}

## Priority

**Priority: medium.** {TODO}: why this priority, and when an alert should be handled as more urgent.

## Response

{TODO}: the steps an analyst takes when the alert fires: what to check first, what evidence to preserve,
how to contain.

## Additional Resources

- {url}
"""


def _front_matter_bounds(lines: list[str], shown: str) -> tuple[int, int]:
    if not lines or lines[0].strip() != "---":
        raise ScaffoldError(f"{shown} has no front matter: fix it first (detpack validate)")
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return 1, index
    raise ScaffoldError(f"{shown}: the front matter is not closed with ---")


_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)\s*:(.*)$")
_FLOW = re.compile(r"^\s*\[(?P<items>[^\]#]*)\]\s*(?P<comment>#.*)?$")


def _set_front_matter_list(lines: list[str], shown: str, key: str, values: list[str]) -> list[str]:
    """Rewrite one top-level list of the front matter in its own style (flow [a, b] or block - a)."""
    start, end = _front_matter_bounds(lines, shown)
    for index in range(start, end):
        match = _TOP_KEY.match(lines[index])
        if match is None or match.group(1) != key:
            continue
        stop = index + 1
        while stop < end and (lines[stop].startswith((" ", "\t", "-")) or not lines[stop].strip()):
            stop += 1
        while stop > index + 1 and not lines[stop - 1].strip():
            stop -= 1
        rest = match.group(2)
        flow = _FLOW.match(rest)
        if flow is not None and stop == index + 1:
            comment = f"  {flow.group('comment')}" if flow.group("comment") else ""
            new = [f"{key}: [{', '.join(values)}]{comment}"]
        else:
            items = [line for line in lines[index + 1 : stop] if line.lstrip().startswith("-")]
            indent = items[0][: len(items[0]) - len(items[0].lstrip())] if items else "  "
            new = [f"{key}:", *(f"{indent}- {value}" for value in values)]
        return [*lines[:index], *new, *lines[stop:]]
    raise ScaffoldError(f"{shown}: the front matter has no {key}: list")


def _insert_at_section_end(lines: list[str], doc: AdsDocument, title: str, addition: list[str]) -> list[str]:
    section = doc.section(title)
    if section is None:
        raise ScaffoldError(f"{doc.path} has no '## {title}' section: fix it first (detpack validate)")
    end = section.end_line  # 1-based last line of the section
    while end > section.line and not lines[end - 1].strip():
        end -= 1
    return [*lines[:end], "", *addition, *lines[end:]]


def _updated_ads_text(
    doc: AdsDocument, text: str, rule_name: str, ds: DataSource, technique: Technique, addition: list[str]
) -> str:
    meta = doc.meta
    trailing_newline = text.endswith("\n")
    lines = text.split("\n")
    if trailing_newline:
        lines = lines[:-1]
    # Sections first (their line numbers come from the parsed document), then the front matter above them.
    lines = _insert_at_section_end(lines, doc, "Validation", addition)
    lines = _insert_at_section_end(lines, doc, "False Positives", [f"- {_falsepositive()}"])
    rules = [str(r) for r in meta.get("rules") or []]
    lines = _set_front_matter_list(lines, doc.path, "rules", [*rules, rule_name])
    attack = sorted({str(t) for t in meta.get("attack") or []} | {technique.id})
    lines = _set_front_matter_list(lines, doc.path, "attack", attack)
    sources = sorted({str(s) for s in meta.get("data_sources") or []} | {ds.name})
    lines = _set_front_matter_list(lines, doc.path, "data_sources", sources)
    result = "\n".join(lines) + ("\n" if trailing_newline else "")
    # The edit must leave a document whose front matter says what was intended.
    try:
        check = parse_ads(result, doc.path).meta
    except ContentError as exc:
        raise ScaffoldError(f"{doc.path}: could not update it automatically ({exc})") from None
    if (
        [str(r) for r in check.get("rules") or []] != [*rules, rule_name]
        or sorted(str(t) for t in check.get("attack") or []) != attack
        or sorted(str(s) for s in check.get("data_sources") or []) != sources
    ):
        raise ScaffoldError(
            f"{doc.path}: could not update its front matter automatically; add {rule_name} to rules, "
            f"{technique.id} to attack and {ds.name} to data_sources by hand, or use --new-ads"
        )
    return result


# --- the plan ---------------------------------------------------------------------------------------


def plan_new_rule(pack: Pack, request: NewRuleRequest) -> ScaffoldPlan:
    """Everything detpack new would write, checked: nothing exists yet, the names are valid and unique."""
    attack = load_attack()
    behaviour = check_behaviour(request.behaviour)
    ds = pack.datasources.get(request.datasource)
    if ds is None:
        raise ScaffoldError(
            f"no data source {request.datasource!r}: use one of {', '.join(sorted(pack.datasources))} "
            "(datasources/*.yml)"
        )
    technique = normalise_technique(request.technique, attack)
    tactic = attack.tactics[technique.tactics[0]]
    if request.new_ads == (request.ads is not None):
        raise ScaffoldError("say where the rule belongs: --ads DP-ADS-NNNN (an existing ADS) or --new-ads")

    slug = slugify(request.name) if request.name else slugify(behaviour)
    if request.name and slug != request.name:
        raise ScaffoldError(
            f"--name {request.name!r}: use lowercase letters, digits and underscores ({slug!r})"
        )
    if slug.startswith(ds.rule_file_prefix):
        slug = slug[len(ds.rule_file_prefix) :]
    slug = _truncate_words(slug, 70 - len(ds.rule_file_prefix), "_")
    rule_name = ds.rule_file_prefix + slug
    if not FILE_NAME.match(rule_name):
        raise ScaffoldError(
            f"the rule file name {rule_name!r} must be 10 to 70 lowercase letters, digits and underscores: "
            "pass a longer --name"
        )
    if pack.rule_by_name(rule_name) is not None:
        raise ScaffoldError(f"a rule named {rule_name} exists already: pass another --name")
    title_key = behaviour.strip().lower()
    clash = next((r for r in pack.rules if r.title.strip().lower() == title_key), None)
    if clash is not None:
        raise ScaffoldError(
            f"{clash.path} has the title {behaviour!r} already: describe the behaviour differently"
        )

    rule_path = f"rules/{ds.name}/{rule_name}.yml"
    suffix = FIXTURE_SUFFIXES.get(ds.fixture_format)
    if suffix is None:
        raise ScaffoldError(f"{ds.path}: unknown fixture format {ds.fixture_format!r}")
    fixture_path = f"tests/fixtures/{ds.name}/{slug}{suffix}"
    expect_path = f"tests/fixtures/{ds.name}/{slug}.expect.yml"
    rule_id = request.rule_id or str(uuid.uuid4())
    placeholders = placeholder_events(pack, ds, request.today)
    addition = _validation_addition(rule_name, behaviour, fixture_path)

    changes = [
        FileChange(
            rule_path,
            _rule_text(
                request,
                behaviour,
                ds,
                technique,
                tactic,
                rule_id,
                _placeholder_field(ds, placeholders.example),
            ),
            True,
        ),
        FileChange(fixture_path, "\n".join(line for e in placeholders.events for line in e) + "\n", True),
        FileChange(expect_path, _expect_text(rule_name, Path(fixture_path).name, placeholders), True),
    ]
    if request.new_ads:
        ads_id = next_ads_id(pack)
        ads_slug = _truncate_words(slugify(behaviour, "-"), 60, "-")
        ads_path = f"ads/{ads_id.lower()}-{ads_slug}.md"
        text = _new_ads_text(ads_id, request, behaviour, ds, technique, tactic, rule_name, fixture_path)
        changes.append(FileChange(ads_path, text, True))
    else:
        wanted = str(request.ads).strip().upper()
        doc = next((d for d in pack.ads if str(d.meta.get("id", "")).upper() == wanted), None)
        if doc is None:
            known = ", ".join(sorted(str(d.meta.get("id")) for d in pack.ads if d.meta.get("id")))
            raise ScaffoldError(f"no ADS with id {request.ads!r}: use one of {known}, or --new-ads")
        ads_id, ads_path = wanted, doc.path
        text = (pack.root / doc.path).read_text(encoding="utf-8")
        changes.append(
            FileChange(ads_path, _updated_ads_text(doc, text, rule_name, ds, technique, addition), False)
        )

    for change in changes:
        if change.created and (pack.root / change.path).exists():
            raise ScaffoldError(
                f"{change.path} exists already: detpack new never overwrites; pass another --name"
            )
    _check_generated(changes, rule_path, expect_path)
    return ScaffoldPlan(
        rule_name,
        rule_path,
        fixture_path,
        expect_path,
        ads_id,
        ads_path,
        technique,
        tactic,
        ds,
        tuple(changes),
        placeholders.source,
    )


def _check_generated(changes: list[FileChange], rule_path: str, expect_path: str) -> None:
    """The generated YAML must parse (a behaviour or author with odd characters must not break it)."""
    for change in changes:
        if change.path in (rule_path, expect_path):
            try:
                parse_yaml(change.text, change.path)
            except ContentError as exc:  # pragma: no cover - _scalar quotes everything YAML would misread
                raise ScaffoldError(
                    f"internal error: the scaffolded {change.path} is not valid YAML: {exc}"
                ) from None


def write_plan(root: Path, plan: ScaffoldPlan) -> None:
    """Create the new files (never overwriting) and update the ADS; on failure, remove what was created."""
    created: list[Path] = []
    try:
        for change in plan.changes:
            target = root / change.path
            if change.created:
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("x", encoding="utf-8", newline="\n") as handle:
                    created.append(target)
                    handle.write(change.text)
        for change in plan.changes:
            if not change.created:
                target = root / change.path
                temporary = target.with_name(target.name + ".detpack-new.tmp")
                temporary.write_text(change.text, encoding="utf-8", newline="\n")
                temporary.replace(target)
    except FileExistsError as exc:
        for path in created:
            path.unlink(missing_ok=True)
        raise ScaffoldError(f"{exc.filename} exists already: detpack new never overwrites") from None
    except OSError:
        for path in created:
            path.unlink(missing_ok=True)
        raise


# --- placeholders left in the pack ------------------------------------------------------------------


def placeholder_findings(pack: Pack, severity: Severity = Severity.ERROR) -> list[Finding]:
    """Every line that still holds a placeholder detpack new wrote, in rules, ADS documents and fixtures."""
    files = [r.path for r in pack.rules] + [d.path for d in pack.ads]
    for fixture in pack.fixtures:
        files += [fixture.path, fixture.expect_path]
    findings: list[Finding] = []
    for shown in sorted(set(files)):
        path = pack.root / shown
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # loading reported it already
        if PLACEHOLDER not in text and TODO not in text:
            continue
        for number, line in enumerate(text.split("\n"), start=1):
            if PLACEHOLDER in line or TODO in line:
                findings.append(_placeholder_finding(shown, number, line, pack, severity))
    return findings


def _placeholder_finding(shown: str, number: int, line: str, pack: Pack, severity: Severity) -> Finding:
    if any(f.path == shown for f in pack.fixtures) and PLACEHOLDER in line:
        return Finding(
            shown,
            number,
            "placeholder-event",
            "this is the placeholder event detpack new wrote, not a recorded one",
            "record the real event in a lab in the data source's native format and put it on this line "
            "(CONTRIBUTING.md, 'Record real events')",
            severity,
        )
    if shown.startswith("rules/") and PLACEHOLDER in line:
        return Finding(
            shown,
            number,
            "placeholder-detection",
            "the detection is still detpack new's placeholder",
            "write the detection from the fields and values of the recorded attack events",
            severity,
        )
    asked = line[line.index(TODO) :] if TODO in line else line.strip()
    asked = asked if len(asked) <= 100 else asked[:97] + "..."
    return Finding(
        shown,
        number,
        "placeholder-text",
        f"still says {asked!r}",
        "write what it asks for and remove the TODO",
        severity,
    )
