"""`detpack build`: validate, convert, test on fixtures, then package into dist/ (only when all pass)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from detpack.content.pack import Pack
from detpack.convert import Query, convert_pack
from detpack.findings import Finding, Severity
from detpack.publish.manifest import write_manifest
from detpack.publish.queries import write_queries
from detpack.replay import ReplayResult, replay
from detpack.validate.pack import validate_pack


@dataclass
class BuildResult:
    findings: list[Finding] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)
    replay: ReplayResult | None = None
    written: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        failures = self.replay.failures if self.replay else []
        return not failures and not any(f.severity is Severity.ERROR for f in self.findings)


def run_build(pack: Pack, out: Path) -> BuildResult:
    result = BuildResult()
    validation = validate_pack(pack)
    result.findings += validation.findings
    queries, convert_findings = convert_pack(pack)
    result.queries = queries
    result.findings += convert_findings
    result.replay = replay(pack, validation.parsed, {(q.rule, q.target): q.text for q in queries})
    result.findings += result.replay.findings
    if not result.ok:
        return result
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    result.written = write_queries(queries, out)
    result.written.append(write_manifest(pack, out))
    return result
