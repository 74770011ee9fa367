"""`detpack build`: validate, convert, test on fixtures, then package into dist/ (only when all pass).

Order: validation, conversion and replay must pass; then every rule's published content is compared with
versions.lock.json (``--bump`` updates the lock instead); then every artifact is rendered in memory and
checked (Kibana schema and query parsing, Splunk .conf safety); only when all of that is clean is dist/
replaced and, with ``--bump``, the lock and CHANGELOG.md written.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detpack.content.pack import Pack
from detpack.convert import Query, convert_pack
from detpack.findings import Finding, Severity
from detpack.publish.catalog import CatalogInputs, build_catalog
from detpack.publish.context import PublishedRule, published_rules
from detpack.publish.kibana import NDJSON_FILE, build_kibana_rules
from detpack.publish.manifest import write_manifest
from detpack.publish.navigator import heatmap_svg, layer_json
from detpack.publish.queries import write_queries
from detpack.publish.splunk_app import build_splunk_app, package, tarball_name
from detpack.publish.versions import (
    CHANGELOG_FILE,
    VersionLock,
    bump_lock,
    check_lock,
    load_lock,
    render_changelog,
    rule_content,
    write_lock,
)
from detpack.replay import ReplayResult, replay
from detpack.validate.pack import validate_pack

LAYER_FILE = "navigator/detpack-layer.json"
HEATMAP_FILE = "navigator/coverage.svg"


@dataclass
class BuildResult:
    findings: list[Finding] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)
    replay: ReplayResult | None = None
    written: list[Path] = field(default_factory=list)
    lock_written: list[Path] = field(default_factory=list)
    bumped: dict[str, int] = field(default_factory=dict)  # rule name -> new version (with --bump)

    @property
    def ok(self) -> bool:
        failures = self.replay.failures if self.replay else []
        return not failures and not any(f.severity is Severity.ERROR for f in self.findings)


@dataclass
class Artifacts:
    files: dict[str, bytes]  # dist-relative path -> content
    details: dict[str, Any]  # for the manifest


def render_artifacts(
    pack: Pack, rules: list[PublishedRule], lock: VersionLock
) -> tuple[Artifacts, list[Finding]]:
    findings: list[Finding] = []
    files: dict[str, bytes] = {}
    app, app_findings = build_splunk_app(rules, pack.datasources.values())
    findings += app_findings
    app_path = f"splunk/{tarball_name()}"
    files[app_path] = package(app.files)
    kibana, kibana_findings = build_kibana_rules(pack.root, rules)
    findings += kibana_findings
    files[NDJSON_FILE] = kibana.ndjson
    svg = heatmap_svg(rules)
    files[LAYER_FILE] = layer_json(rules)
    files[HEATMAP_FILE] = svg
    catalog = build_catalog(CatalogInputs(rules, app.stanzas, svg))
    files.update({f"catalog/{path}": content for path, content in catalog.items()})
    files[CHANGELOG_FILE] = render_changelog(lock).encode("utf-8")
    details: dict[str, Any] = {
        "artifacts": {
            "splunk_app": app_path,
            "kibana_rules": NDJSON_FILE,
            "navigator_layer": LAYER_FILE,
            "coverage_heatmap": HEATMAP_FILE,
            "catalog": "catalog/index.html",
            "changelog": CHANGELOG_FILE,
        },
        "versions": {r.name: r.version for r in rules},
        "splunk": {"saved_searches": app.stanzas, "skipped": app.skipped},
        "kibana": {
            "rules": {
                str(body["rule_id"]): {"language": body["language"], "name": body["name"]}
                for body in kibana.rules
            },
            "skipped": kibana.skipped,
        },
    }
    return Artifacts(files, details), findings


def run_build(pack: Pack, out: Path, bump: bool = False) -> BuildResult:
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
    rules = published_rules(pack, queries, result.replay.documented_errors)
    contents = [rule_content(rule) for rule in rules]
    lock, lock_findings = load_lock(pack.root)
    if bump:
        lock_findings = [f for f in lock_findings if f.code != "version-lock-missing"]
    result.findings += lock_findings
    if not result.ok:
        return result
    if bump:
        new_lock = bump_lock(lock, contents)
        result.bumped = {
            str(entry["name"]): int(entry["version"])
            for rule_id, entry in new_lock.rules.items()
            if entry != lock.rules.get(rule_id) and not entry.get("removed_in")
        }
        lock = new_lock
    else:
        result.findings += check_lock(lock, contents)
    if not result.ok:
        return result
    for rule in rules:
        rule.version = lock.version_of(rule.rule_id)
    artifacts, artifact_findings = render_artifacts(pack, rules, lock)
    result.findings += artifact_findings
    if not result.ok:
        return result
    if bump:
        result.lock_written = write_lock(pack.root, lock)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    result.written = write_queries(queries, out)
    for relative, content in sorted(artifacts.files.items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        result.written.append(path)
    result.written.append(write_manifest(pack, out, artifacts.details))
    return result
