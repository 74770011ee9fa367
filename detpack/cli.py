"""The detpack command line: validate, convert, test, build. Each command calls one step of the flow.

Exit codes: 0 success, 1 the content fails (findings or test failures), 2 usage or input errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from detpack.build import run_build
from detpack.content.pack import Pack, find_root, load_pack
from detpack.convert import TARGETS, convert_pack
from detpack.engines.runners import ENGINES
from detpack.findings import ContentError, Finding, Severity
from detpack.offline import configure_offline
from detpack.replay import ReplayResult, replay
from detpack.reports import matrix, write_json, write_junit
from detpack.validate.pack import validate_pack

EXIT_OK, EXIT_CONTENT, EXIT_USAGE = 0, 1, 2


def _load(root: Path | None) -> Pack:
    configure_offline()
    start = (root or Path.cwd()).resolve()
    found = find_root(start) if root is None else start
    if found is None or not (found / "rules").is_dir() or not (found / "datasources").is_dir():
        click.echo(
            f"error: {start} is not a detpack pack (no rules/ and datasources/ folders); "
            "run inside the pack or pass --root",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    try:
        return load_pack(found)
    except ContentError as exc:
        _print_findings(exc.findings)
        sys.exit(EXIT_CONTENT)


def _print_findings(findings: list[Finding]) -> None:
    for finding in findings:
        click.echo(finding.render())


def _summary(findings: list[Finding]) -> tuple[int, int]:
    errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    return errors, len(findings) - errors


root_option = click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Pack root (default: the nearest folder with rules/ and datasources/).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="detpack")
def main() -> None:
    """detpack: Sigma rules and ADS documents for container C2 and monitoring bypass.

    The flow: validate -> convert -> test (execute on fixtures) -> build (package into dist/).
    """


@main.command()
@root_option
def validate(root: Path | None) -> None:
    """Check rules, ADS documents and fixtures; print every problem as file:line."""
    pack = _load(root)
    result = validate_pack(pack)
    _print_findings(result.findings)
    errors, warnings = _summary(result.findings)
    click.echo(
        f"{len(pack.rules)} rules, {len(pack.ads)} ADS, {len(pack.fixtures)} fixtures: "
        f"{errors} errors, {warnings} warnings"
    )
    sys.exit(EXIT_CONTENT if errors else EXIT_OK)


@main.command()
@root_option
@click.option(
    "--target",
    "targets",
    multiple=True,
    type=click.Choice(sorted(TARGETS)),
    help="Target query language (repeatable; default: all).",
)
@click.option("--rule", "rules", multiple=True, help="Rule name (file stem; repeatable; default: all).")
def convert(root: Path | None, targets: tuple[str, ...], rules: tuple[str, ...]) -> None:
    """Convert rules through pipelines/ into SPL, Lucene, EQL and ES|QL, and print the queries."""
    pack = _load(root)
    unknown = sorted(set(rules) - {r.name for r in pack.rules})
    if unknown:
        raise click.BadParameter(f"no rule named {', '.join(unknown)}", param_hint="--rule")
    try:
        queries, findings = convert_pack(pack, set(rules) or None, list(targets) or None)
    except ContentError as exc:
        _print_findings(exc.findings)
        sys.exit(EXIT_CONTENT)
    for query in sorted(queries, key=lambda q: (q.rule, list(TARGETS).index(q.target))):
        click.echo(f"# {query.rule} [{TARGETS[query.target].title}]\n{query.text}\n")
    _print_findings(findings)
    sys.exit(EXIT_CONTENT if findings else EXIT_OK)


def _print_replay(pack: Pack, result: ReplayResult, verbose: bool) -> None:
    notes = {e.key: e.expectation.note for f in pack.fixtures for e in f.events if e.expectation}
    if verbose:
        for verdict in sorted(result.verdicts, key=lambda v: (v.rule, v.event, v.engine)):
            if verdict.fired and verdict.ok and verdict.engine == "sqlite":
                click.echo(f"fired     {verdict.rule} on {verdict.event} ({verdict.engine})")
    for verdict in sorted(result.failures, key=lambda v: (v.rule, v.event, v.engine)):
        if verdict.engine == "sqlite":
            what = "UNEXPECTED HIT" if verdict.fired else "MISSED"
            detail = (
                "fired but the expectation does not list it" if verdict.fired else "did not fire but must"
            )
            click.echo(
                f"{what}: rule {verdict.rule} {detail} on {verdict.event} [{verdict.engine}]"
                f" -- {notes.get(verdict.event, 'no expectation')}"
            )
        else:
            click.echo(
                f"DISAGREES: {verdict.engine} says {'match' if verdict.fired else 'no match'}, the Sigma "
                f"reference says {'match' if verdict.reference else 'no match'}: rule {verdict.rule} on "
                f"{verdict.event} -- query: {result.queries.get((verdict.rule, verdict.engine), '')}"
            )


@main.command()
@root_option
@click.option("--rule", "rules", multiple=True, help="Only these rules (file stems; repeatable).")
@click.option(
    "--engine",
    "engines",
    multiple=True,
    type=click.Choice(list(ENGINES)),
    help="Only these engines (repeatable; default: all five). The reference always runs.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the verdicts as JSON to this file.",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write JUnit XML to this file.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only failures, the matrix and the summary.")
def test(
    root: Path | None,
    rules: tuple[str, ...],
    engines: tuple[str, ...],
    json_path: Path | None,
    junit_path: Path | None,
    quiet: bool,
) -> None:
    """Run every rule over every fixture event in every engine; compare with expectations and reference."""
    pack = _load(root)
    unknown = sorted(set(rules) - {r.name for r in pack.rules})
    if unknown:
        raise click.BadParameter(f"no rule named {', '.join(unknown)}", param_hint="--rule")
    chosen = ["sqlite", *(engines or [e for e in ENGINES if e != "sqlite"])]
    validation = validate_pack(pack)
    findings = [f for f in validation.findings if f.severity is Severity.ERROR]
    targets = sorted({t for e in chosen if (t := ENGINES[e].target)})
    try:
        queries, convert_findings = convert_pack(pack, set(rules) or None, targets)
    except ContentError as exc:
        _print_findings(exc.findings)
        sys.exit(EXIT_CONTENT)
    findings += convert_findings
    result = replay(
        pack, validation.parsed, {(q.rule, q.target): q.text for q in queries}, set(rules) or None, chosen
    )
    findings += result.findings
    _print_findings(findings)
    _print_replay(pack, result, not quiet)
    click.echo(matrix(result))
    if json_path:
        write_json(result, findings, json_path)
    if junit_path:
        write_junit(result, findings, junit_path)
    events = len({v.event for v in result.verdicts})
    hits = sum(1 for v in result.verdicts if v.fired and v.engine == "sqlite")
    click.echo(
        f"{len({v.rule for v in result.verdicts})} rules x {events} events x {len(chosen)} engines: "
        f"{hits} reference hits, {len(result.failures)} failures, {len(findings)} content errors"
    )
    sys.exit(EXIT_CONTENT if result.failures or findings else EXIT_OK)


@main.command()
@root_option
def coverage(root: Path | None) -> None:
    """Print ATT&CK techniques covered by tactic, and each behaviour with its rules or why not."""
    from detpack.coverage import compute_coverage, render

    pack = _load(root)
    try:
        result = compute_coverage(pack)
    except ContentError as exc:
        _print_findings(exc.findings)
        sys.exit(EXIT_CONTENT)
    _print_findings(result.findings)
    click.echo(render(result))
    sys.exit(EXIT_CONTENT if result.unaccounted or result.findings else EXIT_OK)


@main.command()
@root_option
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Output folder (default: <root>/dist).",
)
def build(root: Path | None, output: Path | None) -> None:
    """Validate, convert, test, and package everything into dist/ (only if all of it passes)."""
    pack = _load(root)
    try:
        result = run_build(pack, output or pack.root / "dist")
    except ContentError as exc:
        _print_findings(exc.findings)
        sys.exit(EXIT_CONTENT)
    _print_findings(result.findings)
    if result.replay:
        _print_replay(pack, result.replay, verbose=False)
    if not result.ok:
        click.echo("build failed: nothing was written")
        sys.exit(EXIT_CONTENT)
    click.echo(f"built {len(result.written)} files into {output or pack.root / 'dist'}")
    sys.exit(EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
