"""ADS checks: structure (JSON Schema over the parsed Markdown) and agreement with the rules and fixtures."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from detpack.attack import technique_for_tag
from detpack.content.ads import ADS_SECTIONS, AdsDocument
from detpack.content.fixtures import FixtureFile
from detpack.content.pack import Pack
from detpack.findings import Finding, finding_from_json, finding_to_json
from detpack.result_cache import ResultCache
from detpack.validate.schema import load_validator, schema_findings

FIXTURE_PATH = re.compile(r"^tests/fixtures/[a-z0-9_]+/[A-Za-z0-9_.-]+\.(jsonl|log)$")


def _line_mapper(doc: AdsDocument):  # type: ignore[no-untyped-def]
    def line_of(json_path: tuple[str | int, ...]) -> int:
        if json_path[:1] == ("front_matter",) and doc.front is not None:
            return doc.front.line_of(json_path[1:])
        if json_path[:1] == ("sections",) and len(json_path) > 1:
            section = doc.section(str(json_path[1]))
            if section is not None:
                return section.line
        return doc.title_line or 1

    return line_of


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("`", "")).strip().lower()


def check_structure(doc: AdsDocument, pack: Pack) -> list[Finding]:
    validator = load_validator(pack.root / "schemas" / "ads.schema.json")
    findings = []
    if doc.front is None:
        findings.append(
            Finding(
                doc.path,
                1,
                "ads-front-matter",
                "the ADS has no front matter",
                "start the file with a --- YAML block (see docs/formats.md)",
            )
        )
    findings += schema_findings(validator, doc.as_json(), doc.path, "ads-schema", _line_mapper(doc))
    for title in ADS_SECTIONS:
        if doc.section(title) is None:
            findings.append(
                Finding(
                    doc.path,
                    doc.title_line or 1,
                    "ads-section-missing",
                    f"the ADS has no '## {title}' section",
                    f"add '## {title}' (the ten sections, in order: {', '.join(ADS_SECTIONS)})",
                )
            )
    h1 = [h for h in doc.headings if h[1] == 1]
    if len(h1) != 1:
        findings.append(
            Finding(
                doc.path,
                h1[1][0] if len(h1) > 1 else 1,
                "ads-title",
                "an ADS has exactly one '#' title",
                "keep a single # heading",
            )
        )
    meta = doc.meta
    if meta.get("title") and doc.title and meta["title"] != doc.title:
        findings.append(
            Finding(
                doc.path,
                doc.title_line,
                "ads-title",
                f"the # title differs from the front matter title {meta['title']!r}",
                "make them the same",
            )
        )
    ads_id = str(meta.get("id", ""))
    if ads_id and not Path(doc.path).name.startswith(ads_id.lower() + "-"):
        findings.append(
            Finding(
                doc.path,
                0,
                "ads-filename",
                f"the file name does not start with {ads_id.lower()}-",
                f"rename it to ads/{ads_id.lower()}-<slug>.md",
            )
        )
    return findings


def check_against_rules(doc: AdsDocument, pack: Pack) -> list[Finding]:
    findings: list[Finding] = []
    meta = doc.meta
    front = doc.front
    if front is None:
        return findings
    names = [str(n) for n in meta.get("rules") or []]
    rules = []
    for index, name in enumerate(names):
        rule = pack.rule_by_name(name)
        if rule is None:
            findings.append(
                Finding(
                    doc.path,
                    front.line_of(("rules", index)),
                    "ads-rule-unknown",
                    f"no rule file named {name}.yml under rules/",
                    "list existing rule file stems",
                )
            )
        else:
            rules.append(rule)
    tagged = sorted({t for r in rules for tag in r.tags if (t := technique_for_tag(tag))})
    declared = sorted(str(t) for t in meta.get("attack") or [])
    if rules and tagged != declared:
        missing = sorted(set(tagged) - set(declared))
        extra = sorted(set(declared) - set(tagged))
        detail = "; ".join(
            x
            for x in (
                f"missing {', '.join(missing)}" if missing else "",
                f"not tagged by any rule: {', '.join(extra)}" if extra else "",
            )
            if x
        )
        findings.append(
            Finding(
                doc.path,
                front.line_of(("attack",)),
                "ads-attack-mismatch",
                f"attack must equal the union of its rules' technique tags ({detail})",
                f"set attack: [{', '.join(tagged)}]",
            )
        )
    sources = sorted({ds.name for r in rules if (ds := pack.datasource_of(r))})
    declared_sources = sorted(str(s) for s in meta.get("data_sources") or [])
    if rules and sources != declared_sources:
        findings.append(
            Finding(
                doc.path,
                front.line_of(("data_sources",)),
                "ads-datasource-mismatch",
                f"data_sources {declared_sources} differ from the rules' data sources {sources}",
                f"set data_sources: [{', '.join(sources)}]",
            )
        )
    fp_section = doc.section("False Positives")
    if fp_section is not None:
        fp_text = _normalise(fp_section.text)
        for rule in rules:
            for index, fp in enumerate(rule.data.get("falsepositives") or []):
                if _normalise(str(fp)) not in fp_text:
                    findings.append(
                        Finding(
                            doc.path,
                            fp_section.line,
                            "ads-falsepositive-missing",
                            f"rule {rule.name} lists false positive {str(fp)!r} "
                            f"({rule.path}:{rule.line('falsepositives', index)}) "
                            "but the False Positives section does not",
                            "describe it in the section (quote the rule's wording)",
                        )
                    )
    priority_section = doc.section("Priority")
    priority = str(meta.get("priority", ""))
    if priority_section is not None and priority and priority.lower() not in priority_section.text.lower():
        findings.append(
            Finding(
                doc.path,
                priority_section.line,
                "ads-priority",
                f"the Priority section does not state the front matter's priority {priority!r}",
                f"say '{priority}' and why",
            )
        )
    return findings


def check_validation_section(
    doc: AdsDocument, fixtures: Mapping[str, FixtureFile], blocks: Mapping[str, str]
) -> list[Finding]:
    """The Validation section emulates the attack and names fixtures whose attack events fire every rule
    of the ADS (`fixtures` by path; `blocks`: building blocks, proven through their correlation)."""
    section = doc.section("Validation")
    if section is None:
        return []
    findings: list[Finding] = []
    if not any(content.strip() for _, _, content in section.code_blocks):
        findings.append(
            Finding(
                doc.path,
                section.line,
                "ads-validation-steps",
                "the Validation section has no emulation commands",
                "add a fenced ```bash block with the kubectl/docker/ctr commands that emulate it",
            )
        )
    named = []
    for line, text in section.inline_code:
        if text.startswith("tests/fixtures/"):
            if not FIXTURE_PATH.match(text) or text not in fixtures:
                findings.append(
                    Finding(
                        doc.path,
                        line,
                        "ads-fixture-unknown",
                        f"no fixture file {text}",
                        "name an existing tests/fixtures/<data source>/<scenario>.<jsonl|log>",
                    )
                )
            else:
                named.append(fixtures[text])
    if not named:
        findings.append(
            Finding(
                doc.path,
                section.line,
                "ads-validation-fixtures",
                "the Validation section names no fixture that proves the rules",
                "name the fixture files in backticks, e.g. `tests/fixtures/kubernetes_audit/x.jsonl`",
            )
        )
        return findings
    proven = {
        rule
        for f in named
        for e in f.events
        if e.expectation and e.expectation.kind == "attack"
        for rule in e.expectation.fires
    }
    for name in doc.meta.get("rules") or []:
        if str(name) not in proven and str(name) not in blocks:
            findings.append(
                Finding(
                    doc.path,
                    section.line,
                    "ads-validation-unproven",
                    f"no fixture named in Validation has an attack event that fires {name}",
                    "name the fixture that proves it, or record one",
                )
            )
    return findings


def validate_ads(pack: Pack, cache: ResultCache | None = None) -> list[Finding]:
    """Every ADS check; with a cache, check_structure of a document read before from the same bytes
    (it reads that document alone) comes from it."""
    findings: list[Finding] = []
    keys = {
        index: cache.key("ads-checks", doc.path, doc.digest)
        for index, doc in enumerate(pack.ads)
        if cache is not None and doc.digest
    }
    cached = cache.lookup(keys.values()) if cache is not None else {}
    owners: dict[str, list[AdsDocument]] = defaultdict(list)
    ids: dict[str, AdsDocument] = {}
    from detpack.correlation import building_blocks

    blocks = building_blocks(pack)  # computed once: it reads every rule
    fixtures = {f.path: f for f in pack.fixtures}
    for index, doc in enumerate(pack.ads):
        key = keys.get(index)
        if key is not None and key in cached:
            findings += [finding_from_json(f) for f in cached[key]]
        else:
            structure = check_structure(doc, pack)
            if cache is not None and key is not None:
                cache.add(key, [finding_to_json(f) for f in structure])
            findings += structure
        findings += check_against_rules(doc, pack)
        findings += check_validation_section(doc, fixtures, blocks)
        for name in doc.meta.get("rules") or []:
            owners[str(name)].append(doc)
        ads_id = str(doc.meta.get("id", ""))
        if ads_id in ids and doc.front is not None:
            findings.append(
                Finding(
                    doc.path,
                    doc.front.line_of(("id",)),
                    "ads-duplicate-id",
                    f"id {ads_id} is also used by {ids[ads_id].path}",
                    "give each ADS its own id",
                )
            )
        ids.setdefault(ads_id, doc)
    for rule in pack.rules:
        docs = owners.get(rule.name, [])
        if rule.name in blocks:  # a building block belongs to the ADS of its correlation
            docs = [*docs, *(d for d in owners.get(blocks[rule.name], []) if all(d is not x for x in docs))]
        if not docs:
            findings.append(
                Finding(
                    rule.path,
                    1,
                    "rule-without-ads",
                    "no ADS document lists this rule",
                    f"add {rule.name} to the rules: of the ADS it implements",
                )
            )
        for extra in docs[1:]:
            findings.append(
                Finding(
                    rule.path,
                    1,
                    "rule-in-several-ads",
                    f"listed by {docs[0].path} and {extra.path}",
                    "a rule belongs to one ADS",
                )
            )
    return findings
