"""How `detpack validate` and `detpack test` report, for people and for machines.

- ``text``: for people, as before: ``file:line: error: [code] message (fix: ...)``, the verdicts and the
  matrix; with a progress counter per engine on stderr when stderr is a terminal.
- ``json``: one JSON document (findings; for ``test`` also the verdicts, see ``detpack.reports``).
- ``junit``: JUnit XML (``detpack.reports`` for test verdicts; one test case per content file here).
- ``github``: GitHub Actions workflow commands, so each finding and failure is an annotation on the
  pull request's line: ``::error file=<path>,line=<n>,title=<code>::<message> (fix: ...)``. Properties
  escape ``%``, CR, LF, ``:`` and ``,``; the message escapes ``%``, CR and LF (as ``@actions/core``
  does). Paths are relative to the repository root, which is where GitHub looks for them.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Mapping
from typing import IO, TextIO

from detpack.content.pack import Pack
from detpack.findings import Finding, Severity
from detpack.replay import ReplayResult, Verdict
from detpack.reports import junit_xml, matrix, to_json

FORMATS = ("text", "json", "junit", "github")


# --- GitHub Actions workflow commands ---------------------------------------------------------------


def escape_data(text: str) -> str:
    """The message part of a workflow command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value (file, title): also ':' and ',', which delimit the command's properties."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(
    command: str, message: str, file: str = "", line: int = 0, title: str = "", end_line: int = 0
) -> str:
    properties = []
    if file:
        properties.append(f"file={escape_property(file)}")
    if line > 0:
        properties.append(f"line={line}")
        if end_line > line:
            properties.append(f"endLine={end_line}")
    if title:
        properties.append(f"title={escape_property(title)}")
    head = f"::{command}" + (" " + ",".join(properties) if properties else "")
    return f"{head}::{escape_data(message)}"


def finding_annotation(finding: Finding, prefix: str = "") -> str:
    """One finding as an ::error or ::warning annotation on its file and line."""
    command = "error" if finding.severity is Severity.ERROR else "warning"
    message = finding.message + (f" (fix: {finding.fix})" if finding.fix else "")
    file = prefix + finding.path if finding.path else ""
    return workflow_command(command, message, file, finding.line, finding.code)


# --- findings (validate) ----------------------------------------------------------------------------


def _finding_json(finding: Finding) -> dict[str, object]:
    return {
        "path": finding.path,
        "line": finding.line,
        "code": finding.code,
        "severity": finding.severity.value,
        "message": finding.message,
        "fix": finding.fix,
    }


def findings_json(findings: list[Finding], summary: Mapping[str, object]) -> str:
    document = {"summary": summary, "findings": [_finding_json(f) for f in findings]}
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def findings_junit(findings: list[Finding], checked: list[str], suite: str = "detpack validate") -> str:
    """One test case per checked file (rules, ADS, fixtures, ...); its errors are the failure.

    Warnings go to the case's system-out: JUnit has no warning state, and they do not fail the run.
    """
    by_path: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_path[finding.path].append(finding)
    paths = sorted(set(checked) | set(by_path))
    failed = [p for p in paths if any(f.severity is Severity.ERROR for f in by_path.get(p, []))]
    root = ET.Element("testsuites", name="detpack")
    element = ET.SubElement(
        root, "testsuite", name=suite, tests=str(len(paths)), failures=str(len(failed)), errors="0"
    )
    for path in paths:
        kind = path.split("/", 1)[0] if "/" in path else "pack"
        case = ET.SubElement(element, "testcase", classname=f"detpack.validate.{kind}", name=path or "pack")
        own = sorted(by_path.get(path, []))
        errors = [f for f in own if f.severity is Severity.ERROR]
        warnings = [f for f in own if f.severity is not Severity.ERROR]
        if errors:
            failure = ET.SubElement(
                case,
                "failure",
                message=f"{len(errors)} error{'s' if len(errors) != 1 else ''}: [{errors[0].code}] "
                f"{errors[0].message}",
                type=errors[0].code,
            )
            failure.text = "\n".join(f.render() for f in errors)
        if warnings:
            ET.SubElement(case, "system-out").text = "\n".join(f.render() for f in warnings)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_findings(
    fmt: str,
    findings: list[Finding],
    summary_line: str,
    summary: Mapping[str, object],
    checked: list[str],
    prefix: str = "",
) -> str:
    """The whole report of `detpack validate` in the chosen format."""
    if fmt == "json":
        return findings_json(findings, summary)
    if fmt == "junit":
        return findings_junit(findings, checked)
    if fmt == "github":
        lines = [finding_annotation(f, prefix) for f in findings]
        return "\n".join([*lines, summary_line]) + "\n"
    return "\n".join([*(f.render() for f in findings), summary_line]) + "\n"


# --- test results -----------------------------------------------------------------------------------


def _notes(pack: Pack) -> dict[str, str]:
    return {e.key: e.expectation.note for f in pack.fixtures for e in f.events if e.expectation}


def _verdict_order(verdict: Verdict) -> tuple[str, str, str]:
    return (verdict.rule, verdict.event, verdict.engine)


def _expectation_text(verdict: Verdict, notes: dict[str, str]) -> tuple[str, str]:
    what = "UNEXPECTED HIT" if verdict.fired else "MISSED"
    detail = "fired but the expectation does not list it" if verdict.fired else "did not fire but must"
    return what, (
        f"rule {verdict.rule} {detail} on {verdict.event} [{verdict.engine}] -- "
        f"{notes.get(verdict.event, 'no expectation')}"
    )


def _disagreement_text(verdict: Verdict, result: ReplayResult) -> str:
    return (
        f"{verdict.engine} says {'match' if verdict.fired else 'no match'}, the Sigma "
        f"reference says {'match' if verdict.reference else 'no match'}: rule {verdict.rule} on "
        f"{verdict.event} -- query: {result.queries.get((verdict.rule, verdict.engine), '')}"
    )


def replay_lines(pack: Pack, result: ReplayResult, verbose: bool) -> list[str]:
    """The verdicts for people: every reference hit (verbose), every failure with the event's note."""
    notes = _notes(pack)
    lines = []
    if verbose:
        for verdict in sorted(result.verdicts, key=_verdict_order):
            if verdict.fired and verdict.ok and verdict.engine == "sqlite":
                lines.append(f"fired     {verdict.rule} on {verdict.event} ({verdict.engine})")
    for verdict in sorted(result.failures, key=_verdict_order):
        if verdict.engine == "sqlite":
            what, text = _expectation_text(verdict, notes)
            lines.append(f"{what}: {text}")
        else:
            lines.append(f"DISAGREES: {_disagreement_text(verdict, result)}")
    return lines


def replay_annotations(pack: Pack, result: ReplayResult, prefix: str = "") -> list[str]:
    """Failures as annotations: a missed or unexpected hit on the fixture's event line, a disagreeing
    engine on the rule's detection."""
    notes = _notes(pack)
    lines = []
    for verdict in sorted(result.failures, key=_verdict_order):
        if verdict.engine == "sqlite":
            what, text = _expectation_text(verdict, notes)
            fixture, _, line = verdict.event.rpartition(":")
            lines.append(
                workflow_command(
                    "error",
                    text,
                    prefix + fixture,
                    int(line) if line.isdigit() else 0,
                    f"{what} {verdict.rule}",
                )
            )
        else:
            rule = pack.rule_by_name(verdict.rule)
            path, line_no = (rule.path, rule.line("detection")) if rule is not None else ("", 0)
            lines.append(
                workflow_command(
                    "error",
                    _disagreement_text(verdict, result),
                    prefix + path if path else "",
                    line_no,
                    f"DISAGREES {verdict.engine} {verdict.rule}",
                )
            )
    return lines


def render_test(
    fmt: str,
    pack: Pack,
    result: ReplayResult,
    findings: list[Finding],
    summary_line: str,
    verbose: bool,
    prefix: str = "",
    extra: dict[str, object] | None = None,
) -> str:
    """The whole report of `detpack test` in the chosen format."""
    if fmt == "json":
        document = to_json(result, findings)
        if extra:
            document.update(extra)
        return json.dumps(document, indent=2, sort_keys=True) + "\n"
    if fmt == "junit":
        return junit_xml(result, findings)
    if fmt == "github":
        lines = [finding_annotation(f, prefix) for f in findings] + replay_annotations(pack, result, prefix)
        return "\n".join([*lines, matrix(result), summary_line]) + "\n"
    lines = [f.render() for f in findings] + replay_lines(pack, result, verbose)
    return "\n".join([*lines, matrix(result), summary_line]) + "\n"


# --- progress ---------------------------------------------------------------------------------------


class Progress:
    """A counter per engine on one line of stderr, rewritten in place; silent when stderr is not a terminal.

    ``step(engine, rule)`` is called by the replay after each (rule, engine) run; ``total`` is the number
    of rules each engine will run.
    """

    def __init__(self, engines: list[str], total: int, stream: IO[str] | None = None) -> None:
        self.stream: TextIO | IO[str] = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.engines = engines
        self.total = total
        self.done: dict[str, int] = dict.fromkeys(engines, 0)
        self.width = 0

    def step(self, engine: str, rule: str) -> None:
        if engine not in self.done:
            return
        self.done[engine] += 1
        if self.enabled:
            text = "testing: " + "  ".join(f"{e} {self.done[e]}/{self.total}" for e in self.engines)
            self.width = max(self.width, len(text))
            self.stream.write("\r" + text.ljust(self.width))
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
