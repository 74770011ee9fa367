"""The Splunk app: one scheduled search per rule, one macro per data source, packaged reproducibly.

Layout of ``dist/splunk/detpack-<version>.tgz`` (one top-level folder, the app id):

    detpack/default/app.conf            launcher version = the pack version; invisible app (no UI)
    detpack/default/savedsearches.conf  one stanza per rule, disabled, no alert actions
    detpack/default/macros.conf         one macro per data source: the SOC redefines it in local/
    detpack/metadata/default.meta       exported to all apps; read for everyone, write for admins
    detpack/README.md                   install, tune, enable

Rule content is untrusted. A .conf value ends at the end of its line, unless the line ends with a backslash
(continuation), and a stanza name ends at ``]``: so every value is checked or folded before it is written
(``conf_value``) and every stanza name sanitised (``stanza_name``); what cannot be written safely is a
located finding, never a broken file. ``read_conf`` is a strict reader used to prove the round trip.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from detpack import __version__
from detpack.content.datasources import DataSource
from detpack.findings import Finding
from detpack.publish.context import PublishedRule

APP_ID = "detpack"
APP_LABEL = "detpack container detections"
APP_AUTHOR = "detpack maintainers"
STANZA_PREFIX = "detpack - "
MAX_STANZA = 200
# Fixed archive metadata: the same input gives the same bytes (2026-01-01T00:00:00Z).
ARCHIVE_MTIME = 1767225600

# Splunk's alert.severity: 1 debug, 2 info, 3 warn, 4 error, 5 severe, 6 fatal.
SEVERITY = {"informational": 2, "low": 3, "medium": 4, "high": 5, "critical": 6}
EARLIEST, LATEST = "-65m@m", "-5m@m"  # hourly, one hour of data, 5 minutes of indexing lag, no gaps

# Characters that end or split a line for some reader (Python's str.splitlines splits on all of them).
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


class ConfValueError(ValueError):
    """A value that cannot be written on one .conf line as it is."""


def conf_value(value: str, *, fold: bool) -> str:
    """The value as it may appear after ``key = ``: one line, no control characters, no trailing backslash.

    fold=True (prose: descriptions, labels): line breaks and runs of whitespace become one space, control
    characters are dropped and trailing backslashes removed. fold=False (searches, definitions): the value
    must already be safe, else ConfValueError says why.
    """
    if fold:
        value = _CONTROL.sub("", _LINE_BREAKS.sub(" ", value).replace("\t", " "))
        value = " ".join(value.split()).rstrip("\\").strip()
        return value
    if _LINE_BREAKS.search(value):
        raise ConfValueError("it contains a line break")
    if _CONTROL.search(value) or "\t" in value:
        raise ConfValueError("it contains a control character")
    if value.rstrip().endswith("\\"):
        raise ConfValueError("it ends with a backslash, which Splunk reads as a line continuation")
    if value != value.strip():
        raise ConfValueError("it starts or ends with whitespace, which Splunk strips")
    return value


def one_line_spl(search: str) -> str:
    """The search on one line: SPL reads a line break outside a quoted string as white space (pySigma writes
    correlation searches over several lines). A line break inside a quoted string is kept, and refused by
    ``conf_value``."""
    out: list[str] = []
    quoted = escaped = False
    for char in search.strip():
        if quoted:
            if char == '"' and not escaped:
                quoted = False
            escaped = char == "\\" and not escaped
        elif char == '"':
            quoted = True
        elif char in "\r\n":
            if out and out[-1] != " ":
                out.append(" ")
            continue
        out.append(char)
    return "".join(out)


def stanza_name(title: str) -> str:
    """A savedsearch stanza name from a rule title: one line, no brackets or backslashes, bounded length."""
    cleaned = re.sub(r"[\[\]\\]", " ", conf_value(title, fold=True))
    cleaned = " ".join(cleaned.split())
    name = STANZA_PREFIX + (cleaned or "untitled")
    return name[:MAX_STANZA].rstrip()


Stanza = tuple[str, list[tuple[str, str]]]


def render_conf(stanzas: Iterable[Stanza], header: str) -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for name, settings in stanzas:
        if _LINE_BREAKS.search(name) or "]" in name or "[" in name:
            raise ConfValueError(f"stanza name {name!r} cannot be written")
        lines += ["", f"[{name}]"]
        for key, value in settings:
            if not re.fullmatch(r"[A-Za-z0-9_.]+", key):
                raise ConfValueError(f"key {key!r} cannot be written")
            lines.append(f"{key} = {value}" if value else f"{key} =")
    return "\n".join(lines) + "\n"


def read_conf(text: str) -> dict[str, dict[str, str]]:
    """A strict .conf reader: stanzas and key = value lines only. Refuses continuation lines, settings
    outside a stanza, duplicate stanzas or keys, and any other line (proves what ``render_conf`` writes)."""
    result: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip() == "" or line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            raise ValueError(f"line {number}: continuation line")
        match = re.fullmatch(r"\[([^\[\]]*)\]", line)
        if match:
            if match.group(1) in result:
                raise ValueError(f"line {number}: duplicate stanza [{match.group(1)}]")
            current = result[match.group(1)] = {}
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.]+) =(?: (.*))?", line)
        if match is None:
            raise ValueError(f"line {number}: not a stanza, setting or comment: {line!r}")
        if current is None:
            raise ValueError(f"line {number}: setting outside a stanza")
        if match.group(1) in current:
            raise ValueError(f"line {number}: duplicate key {match.group(1)}")
        current[match.group(1)] = match.group(2) or ""
    return result


def cron_minute(rule_id: str) -> int:
    """A minute past the hour derived from the rule id, so the searches do not all start at once."""
    try:
        number = uuid.UUID(rule_id).int
    except ValueError:
        number = int(hashlib.sha256(rule_id.encode("utf-8")).hexdigest(), 16)
    return number % 60


@dataclass(frozen=True)
class SplunkApp:
    files: dict[str, bytes]  # path inside the app folder -> content
    stanzas: dict[str, str]  # rule name -> savedsearch stanza name
    skipped: dict[str, str]  # rule name -> why it has no saved search


def _saved_search(rule: PublishedRule, name: str, search: str) -> list[tuple[str, str]]:
    techniques = [t.id for t in rule.techniques]
    annotations: dict[str, list[str]] = {"mitre_attack": techniques}
    if rule.ads is not None:
        annotations["analytic_story"] = [conf_value(rule.ads.title, fold=True)]
    description = (
        f"{rule.text('description')} -- detpack rule {rule.name} v{rule.version} ({rule.rule_id})"
        + (f", ADS {rule.ads_id}" if rule.ads_id else "")
        + f". Data source: {rule.datasource.title} (macro {rule.datasource.splunk_macro})."
    )
    schedule = rule.schedule
    cron = schedule.cron if schedule else f"{cron_minute(rule.rule_id)} * * * *"
    earliest, latest = (schedule.earliest, schedule.latest) if schedule else (EARLIEST, LATEST)
    return [
        ("action.correlationsearch.annotations", json.dumps(annotations, sort_keys=True)),
        ("action.correlationsearch.enabled", "1"),
        ("action.correlationsearch.label", name),
        ("actions", ""),
        ("alert.digest_mode", "0"),
        ("alert.severity", str(SEVERITY.get(rule.level, 4))),
        ("alert.suppress", "0"),
        ("alert.track", "1"),
        ("alert_comparator", "greater than"),
        ("alert_threshold", "0"),
        ("alert_type", "number of events"),
        ("cron_schedule", cron),
        ("description", conf_value(description, fold=True)),
        ("disabled", "1"),
        ("dispatch.earliest_time", earliest),
        ("dispatch.latest_time", latest),
        ("enableSched", "1"),
        ("request.ui_dispatch_app", "search"),
        ("schedule_window", "auto"),
        ("search", search),
    ]


def _macro(ds: DataSource) -> tuple[list[tuple[str, str]] | None, str]:
    try:
        definition = conf_value(ds.splunk_definition.strip(), fold=False)
    except ConfValueError as exc:
        return None, str(exc)
    description = conf_value(
        f"Where the detpack searches find {ds.title}. Redefine it in local/macros.conf to match your "
        "indexes and sourcetypes.",
        fold=True,
    )
    return [("definition", f"({definition})"), ("description", description), ("iseval", "0")], ""


APP_CONF_HEADER = "detpack Splunk app: generated by `detpack build`; do not edit. Override in local/."


def _readme(rules: list[PublishedRule], stanzas: dict[str, str], macros: list[DataSource]) -> str:
    lines = [
        f"# {APP_LABEL} ({APP_ID} {__version__})",
        "",
        "Scheduled searches generated by detpack from its Sigma rules, for adversaries who use containers",
        "(Docker, containerd, Kubernetes) for command and control and to bypass security monitoring.",
        "Every search was executed against recorded attack and look-alike events before it was packaged.",
        "",
        "## Install",
        "",
        "```sh",
        f"$SPLUNK_HOME/bin/splunk install app detpack-{__version__}.tgz",
        "$SPLUNK_HOME/bin/splunk restart",
        "```",
        "",
        "(or Apps > Manage Apps > Install app from file).",
        "",
        "## Tune: one macro per data source",
        "",
        "Each search starts with the macro of its data source. Redefine the macros in",
        "`$SPLUNK_HOME/etc/apps/detpack/local/macros.conf` to point at your indexes and sourcetypes;",
        "never edit `default/`, an upgrade replaces it.",
        "",
        "| macro | default definition |",
        "|---|---|",
    ]
    for ds in macros:
        lines.append(f"| `{ds.splunk_macro}` | `({ds.splunk_definition.strip()})` |")
    lines += [
        "",
        "## Enable",
        "",
        "Every search ships disabled, with no alert action; triggered alerts are tracked",
        "(`alert.track = 1`). Enable the ones you want in `local/savedsearches.conf`:",
        "",
        "```ini",
        f"[{next(iter(stanzas.values()), STANZA_PREFIX + 'Rule title')}]",
        "disabled = 0",
        "```",
        "",
        "Each runs hourly (minute staggered per rule) over `-65m@m` to `-5m@m`. Splunk Enterprise Security",
        "reads the ATT&CK technique IDs from `action.correlationsearch.annotations`.",
        "",
        "## Searches",
        "",
        "| saved search | rule | level | ATT&CK |",
        "|---|---|---|---|",
    ]
    for rule in rules:
        if rule.name in stanzas:
            techniques = ", ".join(t.id for t in rule.techniques)
            lines.append(
                f"| {stanzas[rule.name]} | `{rule.name}` v{rule.version} | {rule.level} | {techniques} |"
            )
    return "\n".join(lines) + "\n"


def build_splunk_app(
    rules: list[PublishedRule], datasources: Iterable[DataSource]
) -> tuple[SplunkApp, list[Finding]]:
    """The app's files; one macro for every data source of the pack, used by a rule yet or not."""
    findings: list[Finding] = []
    stanzas: dict[str, str] = {}
    skipped: dict[str, str] = {}
    saved: list[Stanza] = []
    seen: dict[str, str] = {}
    for rule in rules:
        if "splunk" in rule.unsupported or "splunk" not in rule.queries:
            skipped[rule.name] = rule.unsupported.get("splunk", "no Splunk search")
            continue
        name = stanza_name(rule.title)
        if name.casefold() in seen:
            findings.append(
                Finding(
                    rule.rule.path,
                    rule.rule.line("title"),
                    "splunk-stanza",
                    f"the saved search name {name!r} is also the name of rule {seen[name.casefold()]}",
                    "give the rules titles that differ in more than punctuation and case",
                )
            )
            continue
        try:
            search = conf_value(one_line_spl(rule.queries["splunk"]), fold=False)
        except ConfValueError as exc:
            findings.append(
                Finding(
                    rule.rule.path,
                    rule.rule.line("detection"),
                    "splunk-search",
                    f"the Splunk search cannot be written to savedsearches.conf: {exc}",
                    "change the rule's values so the converted search is one line",
                )
            )
            continue
        seen[name.casefold()] = rule.name
        stanzas[rule.name] = name
        saved.append((name, _saved_search(rule, name, search)))
    macros: list[Stanza] = []
    used = sorted(datasources, key=lambda d: d.name)
    for ds in used:
        settings, problem = _macro(ds)
        if settings is None:
            findings.append(
                Finding(
                    ds.path,
                    0,
                    "splunk-macro",
                    f"splunk.definition cannot be written to macros.conf: {problem}",
                    "write the definition on one line",
                )
            )
            continue
        macros.append((ds.splunk_macro, settings))
    description = conf_value(
        "Detections for container command-and-control and monitoring bypass (Docker, containerd, "
        "Kubernetes), generated by detpack.",
        fold=True,
    )
    app_conf = [
        ("install", [("is_configured", "0"), ("state", "enabled")]),
        ("launcher", [("author", APP_AUTHOR), ("description", description), ("version", __version__)]),
        ("package", [("check_for_updates", "0"), ("id", APP_ID)]),
        ("ui", [("is_visible", "0"), ("label", APP_LABEL)]),
        ("id", [("name", APP_ID), ("version", __version__)]),
    ]
    meta = [
        ("", [("access", "read : [ * ], write : [ admin, sc_admin ]"), ("export", "system")]),
    ]
    files = {
        "default/app.conf": render_conf(app_conf, APP_CONF_HEADER),
        "default/savedsearches.conf": render_conf(saved, APP_CONF_HEADER),
        "default/macros.conf": render_conf(macros, APP_CONF_HEADER),
        "metadata/default.meta": render_conf(meta, APP_CONF_HEADER),
        "README.md": _readme(rules, stanzas, used),
    }
    return SplunkApp({k: v.encode("utf-8") for k, v in files.items()}, stanzas, skipped), findings


def package(files: dict[str, bytes], top: str = APP_ID) -> bytes:
    """A reproducible .tgz: sorted members, fixed mtime, root ownership, 0644 files and 0755 folders."""
    folders = {top}
    for path in files:
        parts = path.split("/")[:-1]
        for end in range(1, len(parts) + 1):
            folders.add(f"{top}/{'/'.join(parts[:end])}")
    entries: list[tuple[str, bytes | None]] = [(f, None) for f in folders]
    entries += [(f"{top}/{path}", content) for path, content in files.items()]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, content in sorted(entries):
            info = tarfile.TarInfo(name)
            info.mtime = ARCHIVE_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.mode, info.size = 0o644, len(content)
                tar.addfile(info, io.BytesIO(content))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=ARCHIVE_MTIME, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def tarball_name() -> str:
    return f"{APP_ID}-{__version__}.tgz"
