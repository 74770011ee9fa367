"""What `detpack test` reports: a verdict matrix for people, JSON and JUnit XML for CI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from detpack.findings import Finding
from detpack.replay import ReplayResult, Verdict


def matrix(result: ReplayResult) -> str:
    """rule x engine: hits on this engine / failures (expectation misses for sqlite, disagreements else)."""
    cells: dict[tuple[str, str], list[Verdict]] = defaultdict(list)
    for verdict in result.verdicts:
        cells[(verdict.rule, verdict.engine)].append(verdict)
    rules = sorted({v.rule for v in result.verdicts})
    if not rules:
        return "no verdicts"
    width = max(len(r) for r in rules)
    header = f"{'rule':<{width}}  " + "  ".join(f"{e:>12}" for e in result.engines)
    lines = [header, "-" * len(header)]
    for rule in rules:
        row = []
        for engine in result.engines:
            verdicts = cells.get((rule, engine), [])
            if not verdicts:
                text = "unsupported~" if (rule, engine) in result.documented_errors else "error"
                row.append(f"{text:>12}")
                continue
            hits = sum(v.fired for v in verdicts)
            bad = sum(not v.ok for v in verdicts)
            documented = sum(v.documented for v in verdicts)
            text = f"{hits} hit" + ("" if hits == 1 else "s")
            text += f" {bad}!" if bad else (f" {documented}~" if documented else " ok")
            row.append(f"{text:>12}")
        lines.append(f"{rule:<{width}}  " + "  ".join(row))
    lines.append(
        "(hits = events the engine matched; N! = failures; N~ / unsupported~ = documented in "
        "tests/engine-differences.yml)"
    )
    return "\n".join(lines)


def to_json(result: ReplayResult, findings: list[Finding]) -> dict[str, object]:
    return {
        "engines": result.engines,
        "summary": {
            "verdicts": len(result.verdicts),
            "hits": sum(v.fired for v in result.verdicts),
            "failures": len(result.failures),
            "findings": len(findings),
        },
        "failures": [_verdict_json(v, result) for v in result.failures],
        "findings": [
            {
                "path": f.path,
                "line": f.line,
                "code": f.code,
                "message": f.message,
                "fix": f.fix,
                "severity": f.severity.value,
            }
            for f in findings
        ],
        "hits": [_verdict_json(v, result) for v in result.verdicts if v.fired],
    }


def _verdict_json(verdict: Verdict, result: ReplayResult) -> dict[str, object]:
    return {
        "rule": verdict.rule,
        "event": verdict.event,
        "engine": verdict.engine,
        "fired": verdict.fired,
        "expected": verdict.expected,
        "reference": verdict.reference,
        "documented_difference": verdict.documented,
        "query": result.queries.get((verdict.rule, verdict.engine), ""),
    }


def write_json(result: ReplayResult, findings: list[Finding], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(result, findings), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_junit(result: ReplayResult, findings: list[Finding], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(result, findings), encoding="utf-8")


def junit_xml(result: ReplayResult, findings: list[Finding]) -> str:
    """One test case per (rule, engine); content findings as failed cases of a 'content' suite."""
    suites = ET.Element("testsuites", name="detpack")
    cells: dict[tuple[str, str], list[Verdict]] = defaultdict(list)
    for verdict in result.verdicts:
        cells[(verdict.rule, verdict.engine)].append(verdict)
    for engine in result.engines:
        cases = sorted((rule, verdicts) for (rule, eng), verdicts in cells.items() if eng == engine)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=engine,
            tests=str(len(cases)),
            failures=str(sum(1 for _, vs in cases if any(not v.ok for v in vs))),
        )
        for rule, verdicts in cases:
            case = ET.SubElement(suite, "testcase", classname=f"detpack.{engine}", name=rule)
            bad = [v for v in verdicts if not v.ok]
            if bad:
                failure = ET.SubElement(case, "failure", message=f"{len(bad)} verdicts differ")
                failure.text = (
                    "\n".join(
                        f"{v.event}: fired={v.fired} expected={v.expected} reference={v.reference}"
                        for v in bad
                    )
                    + "\nquery: "
                    + result.queries.get((rule, engine), "")
                )
    content = ET.SubElement(
        suites, "testsuite", name="content", tests=str(max(len(findings), 1)), failures=str(len(findings))
    )
    if not findings:
        ET.SubElement(content, "testcase", classname="detpack.content", name="no findings")
    for finding in findings:
        case = ET.SubElement(
            content, "testcase", classname="detpack.content", name=f"{finding.path}:{finding.line}"
        )
        ET.SubElement(case, "failure", message=f"[{finding.code}] {finding.message}").text = finding.fix
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
