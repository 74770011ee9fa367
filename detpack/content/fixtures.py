"""Fixtures: recorded events in their data source's native format, and what each must fire.

tests/fixtures/<data source>/<scenario>.<jsonl|log> holds the events, one per line;
<scenario>.expect.yml beside it says, for every line, whether it is an attack or benign, which rules
must fire on it (every other rule must not), and which rules it is a look-alike for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detpack.content.datasources import DataSource
from detpack.content.yamlfile import YamlDocument, load_yaml, load_yaml_files
from detpack.findings import ContentError, Finding, relpath
from detpack.ingest.auditd import AUDITD_FORMAT, auditd_event, group_auditd_lines
from detpack.ingest.native import MAX_EVENT_BYTES, NativeFormatError, parse_native
from detpack.ingest.reference import View, reference_view
from detpack.result_cache import ResultCache

FIXTURE_SUFFIXES = {"json_lines": ".jsonl", "sysmon_linux_syslog": ".log", AUDITD_FORMAT: ".log"}
MAX_FIXTURE_BYTES = 4 * 1024 * 1024
MAX_FIXTURE_EVENTS = 1000  # lines of one fixture file: every rule runs over every event in five engines


@dataclass(frozen=True)
class Expectation:
    line: int  # the event's line in the fixture file
    decl_line: int  # where the expectation is written in the .expect.yml
    kind: str  # attack | benign
    fires: tuple[str, ...]  # rule names (file stems)
    lookalike_for: tuple[str, ...]
    note: str


@dataclass
class FixtureEvent:
    fixture: str  # fixture file path
    line: int
    raw: str
    native: Any
    view: View
    in_scope: bool
    expectation: Expectation | None = None

    @property
    def key(self) -> str:
        return f"{self.fixture}:{self.line}"


@dataclass
class FixtureFile:
    path: str
    expect_path: str
    datasource: DataSource
    events: list[FixtureEvent] = field(default_factory=list)
    expect_doc: YamlDocument | None = None


def _read_expectations(
    file: Path, shown: str, preloaded: dict[str, YamlDocument | ContentError]
) -> tuple[YamlDocument | None, list[Expectation], list[Finding]]:
    findings: list[Finding] = []
    if not file.exists():
        return (
            None,
            [],
            [
                Finding(
                    shown,
                    0,
                    "fixture-expect-missing",
                    "the fixture has no expectation file",
                    f"create {Path(shown).name} listing every event line (see docs/formats.md)",
                )
            ],
        )
    loaded = preloaded[shown] if shown in preloaded else _load_one(file, shown)
    if isinstance(loaded, ContentError):
        return None, [], loaded.findings
    return loaded, [], findings


def _load_one(file: Path, shown: str) -> YamlDocument | ContentError:
    try:
        return load_yaml(file, shown)
    except ContentError as exc:
        return exc


def load_fixtures(
    root: Path, datasources: dict[str, DataSource], cache: ResultCache | None = None
) -> tuple[list[FixtureFile], list[Finding]]:
    """Every fixture and its expectations (with a cache, expectation files read before from the same bytes
    come from it)."""
    fixtures: list[FixtureFile] = []
    findings: list[Finding] = []
    base = root / "tests" / "fixtures"
    expect_files = sorted((f, relpath(f, root)) for f in base.rglob("*.expect.yml") if f.is_file())
    preloaded = {
        shown: doc for (_, shown), doc in zip(expect_files, load_yaml_files(expect_files, cache), strict=True)
    }
    for file in sorted(base.rglob("*")) if base.exists() else []:
        if file.is_dir():
            continue
        shown = relpath(file, root)
        relative = file.relative_to(base)
        if file.name.endswith(".expect.yml") or file.name == "README.md":
            continue
        if len(relative.parts) != 2 or relative.parts[0] not in datasources:
            findings.append(
                Finding(
                    shown,
                    0,
                    "fixture-location",
                    "fixtures live in tests/fixtures/<data source>/<scenario>.<ext>",
                    f"move it under one of: {', '.join(sorted(datasources))}",
                )
            )
            continue
        ds = datasources[relative.parts[0]]
        suffix = FIXTURE_SUFFIXES[ds.fixture_format]
        if file.suffix != suffix:
            findings.append(
                Finding(
                    shown,
                    0,
                    "fixture-format",
                    f"{ds.name} fixtures are {ds.fixture_format} files ending in {suffix}",
                    f"rename it to {file.stem}{suffix} or move it",
                )
            )
            continue
        if file.stat().st_size > MAX_FIXTURE_BYTES:
            findings.append(
                Finding(
                    shown,
                    0,
                    "fixture-size",
                    f"fixture is over {MAX_FIXTURE_BYTES} bytes",
                    "keep fixtures small: a few realistic events each",
                )
            )
            continue
        expect_file = file.with_name(f"{file.stem}.expect.yml")
        fixture = FixtureFile(shown, relpath(expect_file, root), ds)
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            findings.append(
                Finding(shown, 0, "fixture-encoding", f"not UTF-8: {exc.reason}", "save it as UTF-8")
            )
            continue
        grouped = ds.fixture_format == AUDITD_FORMAT  # one event = several consecutive lines
        if grouped:
            findings.extend(_load_grouped_events(fixture, ds, shown, text))
        lines = text.split("\n") if not grouped else []
        if len(lines) > MAX_FIXTURE_EVENTS + 1:  # + the empty item after the final newline
            findings.append(
                Finding(
                    shown,
                    MAX_FIXTURE_EVENTS + 1,
                    "fixture-size",
                    f"fixture has more than {MAX_FIXTURE_EVENTS} lines",
                    "keep fixtures small: a few realistic events each; split the scenario",
                )
            )
            lines = []
        for number, line in enumerate(lines, start=1):
            if line.strip() == "":
                if number != len(lines):  # the final newline leaves one empty last item
                    findings.append(
                        Finding(
                            shown,
                            number,
                            "fixture-blank-line",
                            "blank line in a fixture",
                            "remove it: every line is one event",
                        )
                    )
                continue
            try:
                native = parse_native(ds.fixture_format, line)
            except NativeFormatError as exc:
                findings.append(
                    Finding(
                        shown,
                        number,
                        "fixture-event",
                        f"invalid {ds.fixture_format} event: {exc}",
                        "record the event exactly as the data source writes it",
                    )
                )
                continue
            view = reference_view(ds.fixture_format, native)
            fixture.events.append(FixtureEvent(shown, number, line, native, view, ds.in_scope(view)))
        doc, _, expect_findings = _read_expectations(expect_file, fixture.expect_path, preloaded)
        findings.extend(expect_findings)
        fixture.expect_doc = doc
        fixtures.append(fixture)
    for file in sorted(base.rglob("*.expect.yml")) if base.exists() else []:
        stems = [file.with_name(file.name[: -len(".expect.yml")] + s) for s in set(FIXTURE_SUFFIXES.values())]
        if not any(s.exists() for s in stems):
            findings.append(
                Finding(
                    relpath(file, root),
                    0,
                    "fixture-expect-orphan",
                    "expectation file without a fixture beside it",
                    "rename it to match its fixture (<scenario>.expect.yml) or delete it",
                )
            )
    return fixtures, findings


def _load_grouped_events(fixture: FixtureFile, ds: DataSource, shown: str, text: str) -> list[Finding]:
    """auditd_log fixtures: the records of one event are consecutive lines sharing msg=audit(...); the
    event is known by the line of its first record (detpack.ingest.auditd.group_auditd_lines)."""
    groups, problems = group_auditd_lines(text)
    findings = [Finding(shown, p.line, p.code, p.message, p.fix) for p in problems]
    for group in groups:
        raw = "\n".join(group.lines)
        too_long = next(
            (i for i, line in enumerate(group.lines) if len(line.encode()) > MAX_EVENT_BYTES), None
        )
        if too_long is not None:
            findings.append(
                Finding(
                    shown,
                    group.line + too_long,
                    "fixture-event",
                    f"invalid {ds.fixture_format} record: longer than {MAX_EVENT_BYTES} bytes",
                    "record the event exactly as the data source writes it",
                )
            )
            continue
        native = auditd_event(group.records)
        view = reference_view(ds.fixture_format, native)
        fixture.events.append(FixtureEvent(shown, group.line, raw, native, view, ds.in_scope(view)))
    return findings


def bind_expectations(fixture: FixtureFile) -> list[Finding]:
    """Attach each expectation to its event; run after the expectation file passed its schema."""
    findings: list[Finding] = []
    doc = fixture.expect_doc
    if doc is None or not isinstance(doc.data, dict):
        return findings
    by_line = {event.line: event for event in fixture.events}
    for index, item in enumerate(doc.data.get("events") or []):
        decl = doc.line_of(("events", index))
        line = int(item["line"])
        expectation = Expectation(
            line=line,
            decl_line=decl,
            kind=str(item["kind"]),
            fires=tuple(str(r) for r in item.get("fires") or ()),
            lookalike_for=tuple(str(r) for r in item.get("lookalike_for") or ()),
            note=str(item.get("note", "")),
        )
        event = by_line.get(line)
        if event is None:
            findings.append(
                Finding(
                    fixture.expect_path,
                    decl,
                    "expect-unknown-event",
                    f"no event on line {line} of {fixture.path}",
                    "point 'line' at an event line of the fixture",
                )
            )
            continue
        if event.expectation is not None:
            findings.append(
                Finding(
                    fixture.expect_path,
                    decl,
                    "expect-duplicate",
                    f"line {line} already has an expectation at line {event.expectation.decl_line}",
                    "keep one expectation per event",
                )
            )
            continue
        event.expectation = expectation
    for event in fixture.events:
        if event.expectation is None:
            findings.append(
                Finding(
                    event.fixture,
                    event.line,
                    "fixture-unexplained",
                    "no expectation explains this event",
                    f"add '- line: {event.line}' with kind, fires and note to {fixture.expect_path}",
                )
            )
    return findings
