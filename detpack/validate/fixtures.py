"""Fixture checks: expectation files follow their schema, explain every event and name real rules."""

from __future__ import annotations

from detpack.content.fixtures import bind_expectations
from detpack.content.pack import Pack
from detpack.findings import Finding
from detpack.validate.schema import load_validator, schema_findings


def validate_fixtures(pack: Pack) -> list[Finding]:
    validator = load_validator(pack.root / "schemas" / "fixture-expectations.schema.json")
    names = {r.name: r for r in pack.rules}
    findings: list[Finding] = []
    attacked: set[str] = set()
    imitated: set[str] = set()
    for fixture in pack.fixtures:
        doc = fixture.expect_doc
        if doc is None:
            continue
        errors = schema_findings(validator, doc.data, fixture.expect_path, "expect-schema", doc.line_of)
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
                if rule is None:
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
        if rule.name not in attacked:
            findings.append(
                Finding(
                    rule.path,
                    1,
                    "rule-without-attack-fixture",
                    "no fixture has an attack event that this rule must fire on",
                    "record an attack event under tests/fixtures/ and list the rule in its fires",
                )
            )
        if rule.name not in imitated:
            findings.append(
                Finding(
                    rule.path,
                    1,
                    "rule-without-lookalike",
                    "no fixture has a benign look-alike for this rule",
                    "record a realistic benign event and list the rule in its lookalike_for",
                )
            )
    return findings
