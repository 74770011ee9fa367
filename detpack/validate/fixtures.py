"""Fixture checks: expectation files follow their schema, explain every event and name real rules."""

from __future__ import annotations

from collections import Counter

from detpack.content.fixtures import bind_expectations
from detpack.content.pack import Pack
from detpack.findings import Finding, finding_from_json, finding_to_json
from detpack.result_cache import ResultCache
from detpack.validate.schema import load_validator, schema_findings

# Every rule is proven by at least two attack variants and two benign look-alikes (docs/formats.md).
MIN_ATTACK_VARIANTS = 2
MIN_LOOKALIKES = 2


def validate_fixtures(pack: Pack, cache: ResultCache | None = None) -> list[Finding]:
    """Every fixture check; with a cache, the JSON Schema check of an expectation file read before from the
    same bytes (it reads that file alone) comes from it."""
    from detpack.correlation import building_blocks

    validator = load_validator(pack.root / "schemas" / "fixture-expectations.schema.json")
    names = {r.name: r for r in pack.rules}
    blocks = building_blocks(pack)  # base rules of correlations that never fire on their own
    findings: list[Finding] = []
    attacked: Counter[str] = Counter()  # rule -> attack events that must fire it
    imitated: Counter[str] = Counter()  # rule -> benign look-alikes of it
    keys = {
        fixture.expect_path: cache.key("expect-schema", fixture.expect_path, fixture.expect_doc.digest)
        for fixture in pack.fixtures
        if cache is not None and fixture.expect_doc is not None and fixture.expect_doc.digest
    }
    cached = cache.lookup(keys.values()) if cache is not None else {}
    for fixture in pack.fixtures:
        doc = fixture.expect_doc
        if doc is None:
            continue
        key = keys.get(fixture.expect_path)
        if key is not None and key in cached:
            errors = [finding_from_json(f) for f in cached[key]]
        else:
            errors = schema_findings(validator, doc.data, fixture.expect_path, "expect-schema", doc.line_of)
            if cache is not None and key is not None:
                cache.add(key, [finding_to_json(f) for f in errors])
        findings += errors
        if errors:
            continue
        findings += bind_expectations(fixture)
        for event in fixture.events:
            expectation = event.expectation
            if expectation is None:
                continue
            for name in (*expectation.fires, *expectation.lookalike_for):
                rule = names.get(name)
                if name in blocks:
                    findings.append(
                        Finding(
                            fixture.expect_path,
                            expectation.decl_line,
                            "expect-building-block",
                            f"{name} is a building block of the correlation {blocks[name]} (generate: false) "
                            "and never fires on its own",
                            f"list {blocks[name]} instead, or set generate: true in it",
                        )
                    )
                elif rule is None:
                    findings.append(
                        Finding(
                            fixture.expect_path,
                            expectation.decl_line,
                            "expect-unknown-rule",
                            f"no rule named {name}",
                            "use a rule file stem from rules/",
                        )
                    )
                elif (ds := pack.datasource_of(rule)) is not None and ds.name != fixture.datasource.name:
                    findings.append(
                        Finding(
                            fixture.expect_path,
                            expectation.decl_line,
                            "expect-wrong-datasource",
                            f"{name} reads {ds.name}, this fixture is {fixture.datasource.name}",
                            "a rule only sees events of its own data source",
                        )
                    )
            both = set(expectation.fires) & set(expectation.lookalike_for)
            if both:
                findings.append(
                    Finding(
                        fixture.expect_path,
                        expectation.decl_line,
                        "expect-contradiction",
                        f"{', '.join(sorted(both))} both fires and is imitated",
                        "a look-alike must not fire the rule it imitates",
                    )
                )
            if not event.in_scope and expectation.fires:
                findings.append(
                    Finding(
                        fixture.expect_path,
                        expectation.decl_line,
                        "expect-out-of-scope",
                        f"event is outside {fixture.datasource.name}'s scope "
                        f"({dict(fixture.datasource.scope)}) and cannot fire a rule",
                        "expect fires: [] for it",
                    )
                )
            if expectation.kind == "attack":
                attacked.update(expectation.fires)
            imitated.update(expectation.lookalike_for)
    for rule in pack.rules:
        if rule.name in blocks:
            continue  # proven through its correlation's fixtures
        if attacked[rule.name] < MIN_ATTACK_VARIANTS:
            findings.append(
                Finding(
                    rule.path,
                    1,
                    "rule-without-attack-fixture",
                    f"{attacked[rule.name]} fixture events are attacks this rule must fire on; the pack "
                    f"requires at least {MIN_ATTACK_VARIANTS} variants (other tools, flags or spellings)",
                    "record attack events under tests/fixtures/ and list the rule in their fires",
                )
            )
        if imitated[rule.name] < MIN_LOOKALIKES:
            findings.append(
                Finding(
                    rule.path,
                    1,
                    "rule-without-lookalike",
                    f"{imitated[rule.name]} fixture events are benign look-alikes of this rule; the pack "
                    f"requires at least {MIN_LOOKALIKES}",
                    "record realistic benign events and list the rule in their lookalike_for",
                )
            )
    return findings
