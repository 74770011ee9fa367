"""The detpack command line: validate, convert, test, build. Each command calls one step of the flow.

Exit codes: 0 success, 1 the content fails (findings or test failures), 2 usage or input errors.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import click

from detpack.changes import (
    ChangesError,
    ChangeSet,
    Selection,
    changed_content,
    changed_files,
    relevant_findings,
    run_selected,
    select,
)
from detpack.content.pack import Pack, find_root, load_pack
from detpack.convert import TARGETS, convert_pack
from detpack.convert_cache import ConvertCache
from detpack.correlation import building_blocks, correlation_unsupported
from detpack.engines.runners import ENGINES
from detpack.findings import ContentError, Finding, Severity, UsageError
from detpack.offline import configure_offline
from detpack.output import FORMATS, Progress, render_findings, render_test, replay_lines
from detpack.replay import ReplayResult, replay
from detpack.reports import write_json, write_junit
from detpack.result_cache import ResultCache
from detpack.scaffold import placeholder_findings
from detpack.validate.pack import ValidationResult, validate_pack

EXIT_OK, EXIT_CONTENT, EXIT_USAGE = 0, 1, 2


@functools.cache
def _result_cache(root: Path) -> ResultCache | None:
    """One result cache per pack for this command (see detpack/result_cache.py; None when turned off)."""
    return ResultCache.for_pack(root)


def _validate(pack: Pack) -> ValidationResult:
    """validate_pack with the pack's result cache; a cache that could not be used is a note, not an error."""
    cache = _result_cache(pack.root)
    result = validate_pack(pack, cache)
    if cache is not None and cache.problem:  # the results are right without it, only slower
        click.echo(f"note: {cache.problem}", err=True)
    return result


def _load(root: Path | None, fmt: str = "text", cache: bool = False) -> Pack:
    """The pack at or above root; with `cache`, ADS documents parsed before come from the result cache."""
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
        return load_pack(found, _result_cache(found) if cache else None)
    except ContentError as exc:
        if fmt == "text":
            _print_findings(exc.findings)
        else:
            summary = {"errors": len(exc.findings), "loaded": False}
            report = render_findings(fmt, exc.findings, "the pack could not be loaded", summary, [])
            click.echo(report, nl=False)
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
MERGE_BASE = "@merge-base"  # --changed without a ref
changed_option = click.option(
    "--changed",
    is_flag=False,
    flag_value=MERGE_BASE,
    default=None,
    metavar="[REF]",
    help="Only what changed since the git ref REF (default: the merge base of HEAD and main): committed, "
    "staged, unstaged and untracked files.",
)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text for people; json; junit (JUnit XML); github (GitHub Actions annotations on the PR's lines).",
)
report_option = click.option(
    "--output",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the report to this file instead of standard output.",
)


def _changes(pack: Pack, changed: str | None) -> ChangeSet | None:
    if changed is None:
        return None
    try:
        changes = changed_files(pack.root, None if changed == MERGE_BASE else changed)
    except ChangesError as exc:
        raise click.BadParameter(str(exc), param_hint="--changed") from None
    if changes.notice:
        click.echo(f"note: {changes.notice}", err=True)
    return changes


def _emit(report: str, path: Path | None) -> None:
    if path is None:
        click.echo(report, nl=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report, encoding="utf-8")


def _repo_prefix(pack: Pack, fmt: str) -> str:
    if fmt != "github":
        return ""
    from detpack.changes import repo_prefix

    return repo_prefix(pack.root)


def _content_files(pack: Pack) -> list[str]:
    files = [r.path for r in pack.rules] + [d.path for d in pack.ads]
    for fixture in pack.fixtures:
        files += [fixture.path, fixture.expect_path]
    return sorted(set(files))


class _GuardedGroup(click.Group):
    """Turns an unexpected exception into one line and exit code 2: content problems are findings, so a
    traceback would only ever be a detpack bug, and a pull request must not be able to dump internals."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except UsageError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except Exception as exc:  # the guard of last resort
            click.echo(f"internal error in detpack (please report): {type(exc).__name__}: {exc}", err=True)
            sys.exit(EXIT_USAGE)


@click.group(cls=_GuardedGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="detpack")
def main() -> None:
    """detpack: Sigma rules and ADS documents for container C2 and monitoring bypass.

    The flow: validate -> convert -> test (execute on fixtures) -> build (package into dist/).
    """


@main.command()
@root_option
@changed_option
@format_option
@report_option
def validate(root: Path | None, changed: str | None, fmt: str, report_path: Path | None) -> None:
    """Check rules, ADS documents and fixtures; print every problem as file:line.

    Placeholders that `detpack new` wrote are warnings here (and errors in `detpack test`).
    With --changed, the whole pack is still validated, because a change can break what spans files
    (unique ids and titles, which ADS owns a rule, the fixtures an ADS names); shown are the findings in
    the changed files and every error elsewhere, while warnings in unchanged files are counted only.
    """
    pack = _load(root, fmt, cache=True)
    changes = _changes(pack, changed)
    result = _validate(pack)
    findings = sorted({*result.findings, *placeholder_findings(pack, Severity.WARNING)})
    hidden = 0
    checked = _content_files(pack)
    if changes is not None:
        findings, hidden = relevant_findings(findings, changes)
        if not changes.everything:
            checked = [f for f in checked if f in changes.files]
            count = len(changed_content(changes))
            click.echo(
                f"validating the pack; showing {count} changed content files {changes.description}", err=True
            )
    errors, warnings = _summary(findings)
    summary_line = (
        f"{len(pack.rules)} rules, {len(pack.ads)} ADS, {len(pack.fixtures)} fixtures: "
        f"{errors} errors, {warnings} warnings"
        + (f" ({hidden} warnings in unchanged files not shown)" if hidden else "")
    )
    summary: dict[str, object] = {
        "rules": len(pack.rules),
        "ads": len(pack.ads),
        "fixtures": len(pack.fixtures),
        "errors": errors,
        "warnings": warnings,
        "hidden": hidden,
        "changed": None if changes is None else sorted(changes.files),
    }
    _emit(
        render_findings(fmt, findings, summary_line, summary, checked, _repo_prefix(pack, fmt)), report_path
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
    by_pair = {(q.rule, q.target): q for q in queries}
    blocks = building_blocks(pack)
    selected = [r for r in pack.rules if not rules or r.name in rules]
    for rule in sorted(selected, key=lambda r: r.name):
        for target in list(targets) or list(TARGETS):
            header = f"# {rule.name} [{TARGETS[target].title}]"
            query = by_pair.get((rule.name, target))
            if query is not None:
                click.echo(f"{header}\n{query.text}\n")
            elif rule.name in blocks:
                click.echo(f"{header}\n# no query: building block of {blocks[rule.name]} (generate: false)\n")
            elif (reason := correlation_unsupported(rule, target)) is not None:
                click.echo(f"{header}\n# no query: {reason}\n")
    _print_findings(findings)
    sys.exit(EXIT_CONTENT if findings else EXIT_OK)


def _print_replay(pack: Pack, result: ReplayResult, verbose: bool) -> None:
    for line in replay_lines(pack, result, verbose):
        click.echo(line)


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
@changed_option
@format_option
@report_option
def test(
    root: Path | None,
    rules: tuple[str, ...],
    engines: tuple[str, ...],
    json_path: Path | None,
    junit_path: Path | None,
    quiet: bool,
    changed: str | None,
    fmt: str,
    report_path: Path | None,
) -> None:
    """Run every rule over every fixture event in every engine; compare with expectations and reference.

    With --changed, only the rules and fixtures changed since REF convert and run again: every changed
    rule over every fixture, and every rule over every changed fixture. A rule counts as changed when its
    file, its ADS, or its data source's definition or pipeline changed, or tests/engine-differences.yml
    changed and names it; a change to schemas/ or the detpack package runs everything.
    """
    pack = _load(root, fmt, cache=True)
    unknown = sorted(set(rules) - {r.name for r in pack.rules})
    if unknown:
        raise click.BadParameter(f"no rule named {', '.join(unknown)}", param_hint="--rule")
    changes = _changes(pack, changed)
    selection: Selection | None = select(pack, changes) if changes is not None else None
    chosen = [e for e in ENGINES if e == "sqlite" or e in (engines or ENGINES)]
    validation = _validate(pack)
    findings = [f for f in validation.findings if f.severity is Severity.ERROR]
    findings += placeholder_findings(pack, Severity.ERROR)
    targets = sorted({t for e in chosen if (t := ENGINES[e].target)})
    wanted: set[str] | None = set(rules) or None
    to_run = {r.name for r in pack.rules} if selection is None else selection.converted(pack)
    if wanted is not None:
        to_run &= wanted
    if selection is not None and changes is not None and not changes.everything:
        click.echo(f"testing {selection.summary()} {changes.description}", err=True)
    cache = ConvertCache.for_pack(pack.root)
    try:
        queries, convert_findings = convert_pack(pack, to_run, targets, cache=cache)
    except ContentError as exc:
        _emit(
            render_findings(fmt, exc.findings, "conversion failed", {"errors": len(exc.findings)}, []), None
        )
        sys.exit(EXIT_CONTENT)
    if cache is not None and cache.problem:  # the run is right without it, only slower
        click.echo(f"note: {cache.problem}", err=True)
    findings += convert_findings
    query_texts = {(q.rule, q.target): q.text for q in queries}
    progress = Progress(chosen, len(to_run & set(validation.parsed)))

    def run(view: Pack, names: set[str] | None) -> ReplayResult:
        if wanted is not None:
            names = wanted if names is None else names & wanted
        return replay(view, validation.parsed, query_texts, names, chosen, progress.step)

    try:
        result = run(pack, None) if selection is None else run_selected(pack, selection, run)
    finally:
        progress.close()
    result.engines = chosen
    findings += [f for f in result.findings if f not in findings]
    if json_path:
        write_json(result, findings, json_path)
    if junit_path:
        write_junit(result, findings, junit_path)
    events = len({v.event for v in result.verdicts})
    hits = sum(1 for v in result.verdicts if v.fired and v.engine == "sqlite")
    summary_line = (
        f"{len({v.rule for v in result.verdicts})} rules x {events} events x {len(chosen)} engines: "
        f"{hits} reference hits, {len(result.failures)} failures, {len(findings)} content errors"
    )
    extra: dict[str, object] = {}
    if changes is not None and selection is not None:
        extra["changed"] = {
            "base": changes.base,
            "everything": selection.everything,
            "files": sorted(changes.files),
            "rules": sorted(selection.rules),
            "fixtures": sorted(selection.fixtures),
        }
    report = render_test(
        fmt, pack, result, findings, summary_line, not quiet, _repo_prefix(pack, fmt), extra or None
    )
    _emit(report, report_path)
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
@click.option(
    "--bump",
    is_flag=True,
    help="Bump the version of every rule whose published content changed (new rules: version 1) in "
    "versions.lock.json, and regenerate CHANGELOG.md.",
)
def build(root: Path | None, output: Path | None, bump: bool) -> None:
    """Validate, convert, test, and package everything into dist/ (only if all of it passes)."""
    pack = _load(root)
    try:
        from detpack.build import run_build  # the publishing code: only this command needs it

        result = run_build(pack, output or pack.root / "dist", bump=bump)
    except ContentError as exc:
        _print_findings(exc.findings)
        sys.exit(EXIT_CONTENT)
    _print_findings(result.findings)
    if result.replay:
        _print_replay(pack, result.replay, verbose=False)
    if not result.ok:
        click.echo("build failed: nothing was written")
        sys.exit(EXIT_CONTENT)
    for name, version in sorted(result.bumped.items()):
        click.echo(f"bumped {name} to version {version}")
    if result.lock_written:
        click.echo(
            f"wrote {', '.join(p.name for p in result.lock_written)}: commit them with the rule changes"
        )
    click.echo(f"built {len(result.written)} files into {output or pack.root / 'dist'}")
    sys.exit(EXIT_OK)


def _interactive() -> bool:
    """Prompt for missing `detpack new` options only when a person is at a terminal."""
    return sys.stdin.isatty()


def _prompt_new(
    pack: Pack,
    behaviour: str | None,
    datasource: str | None,
    technique: str | None,
    ads_id: str | None,
    new_ads: bool,
) -> tuple[str, str, str, str | None, bool]:
    from detpack.attack import load_attack
    from detpack.scaffold import ScaffoldError, check_behaviour, normalise_technique

    def checked(check: Callable[[str], object]) -> Callable[[str], str]:
        def proc(value: str) -> str:
            try:
                check(value)
            except ScaffoldError as exc:
                raise click.UsageError(str(exc)) from None
            return value

        return proc

    if behaviour is None:
        behaviour = click.prompt(
            "Behaviour to detect, in a few words (e.g. 'Tunnel client container started')",
            value_proc=checked(check_behaviour),
        )
    if datasource is None:
        datasource = click.prompt("Data source", type=click.Choice(sorted(pack.datasources)))
    if technique is None:
        technique = click.prompt(
            "ATT&CK v18.1 technique (e.g. T1610)",
            value_proc=checked(lambda v: normalise_technique(v, load_attack())),
        )
    if ads_id is None and not new_ads:
        ids = sorted(str(d.meta.get("id")) for d in pack.ads if d.meta.get("id"))
        for doc in sorted(pack.ads, key=lambda d: str(d.meta.get("id", ""))):
            click.echo(f"  {doc.meta.get('id')}  {doc.title}")
        choice = click.prompt(
            "ADS the rule implements (an id above, or 'new' for a new ADS)",
            type=click.Choice([*ids, "new"], case_sensitive=False),
            default="new",
        )
        new_ads = choice == "new"
        ads_id = None if new_ads else str(choice).upper()
    return str(behaviour), str(datasource), str(technique), ads_id, new_ads


@main.command("new")
@root_option
@click.option(
    "--behaviour", "--behavior", help="What the rule detects, 10-100 characters: the titles and file names."
)
@click.option("--datasource", help="Data source: the name of a datasources/*.yml, e.g. kubernetes_audit.")
@click.option("--technique", help="ATT&CK v18.1 technique ID, e.g. T1610 or T1562.001.")
@click.option("--ads", "ads_id", metavar="DP-ADS-NNNN", help="Add the rule to this existing ADS document.")
@click.option(
    "--new-ads", is_flag=True, help="Create a new ADS document (ads/dp-ads-<next>-<slug>.md) for it."
)
@click.option(
    "--name", help="File-name slug instead of one made from the behaviour, e.g. tunnel_client_started."
)
@click.option("--author", help="The rule's author (default: git config user.name).")
def new(
    root: Path | None,
    behaviour: str | None,
    datasource: str | None,
    technique: str | None,
    ads_id: str | None,
    new_ads: bool,
    name: str | None,
    author: str | None,
) -> None:
    """Scaffold a rule, its fixture stubs and its ADS entry, named and placed as the pack expects.

    Writes rules/<data source>/<prefix><name>.yml (valid, with a placeholder detection),
    tests/fixtures/<data source>/<name>.<ext> with a placeholder attack event and look-alike in the
    data source's native format, <name>.expect.yml, and adds the rule to the ADS (or creates one).
    `detpack validate` accepts the result; `detpack test` fails until real events are recorded and
    every TODO(detpack new) is written. Missing options are prompted for on a terminal; without one
    they are a usage error. Existing files are never overwritten.
    """
    from detpack.changes import git_user_name
    from detpack.scaffold import NewRuleRequest, ScaffoldError, plan_new_rule, technique_label, write_plan

    pack = _load(root)
    if ads_id is not None and new_ads:
        raise click.UsageError("--ads and --new-ads exclude each other: add to an existing ADS or create one")
    missing = [
        option
        for option, value in (
            ("--behaviour", behaviour),
            ("--datasource", datasource),
            ("--technique", technique),
        )
        if value is None
    ]
    if ads_id is None and not new_ads:
        missing.append("--ads DP-ADS-NNNN or --new-ads")
    if missing:
        if not _interactive():
            raise click.UsageError(
                f"missing {', '.join(missing)} (detpack new asks for them only on a terminal)"
            )
        behaviour, datasource, technique, ads_id, new_ads = _prompt_new(
            pack, behaviour, datasource, technique, ads_id, new_ads
        )
    assert behaviour is not None and datasource is not None and technique is not None
    request = NewRuleRequest(
        behaviour=behaviour,
        datasource=datasource,
        technique=technique,
        ads=ads_id,
        new_ads=new_ads,
        name=name,
        author=author or git_user_name(pack.root) or "detpack contributors",
    )
    try:
        plan = plan_new_rule(pack, request)
        write_plan(pack.root, plan)
    except ScaffoldError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    for path in plan.created:
        copied = f" (placeholders: copies of {plan.placeholder_source})" if plan.placeholder_source else ""
        click.echo(f"created {path}{copied if path == plan.fixture_path else ''}")
    for path in plan.updated:
        click.echo(f"updated {path} (rules, attack, data_sources, False Positives, Validation)")
    label = f"{plan.technique.id} {technique_label(plan.technique)}, {plan.tactic.name}"
    click.echo(
        f"\n{plan.rule_name} is tagged attack.{plan.tactic.shortname} and attack.{plan.technique.id.lower()} "
        f"({label}); {plan.ads_id} owns it.\n"
        "Next (CONTRIBUTING.md walks through each step):\n"
        "  1. record two attack variants and two realistic look-alikes in a lab, in place of the\n"
        f"     placeholder events of {plan.fixture_path},\n"
        f"     and describe them in {Path(plan.expect_path).name}\n"
        f"  2. write the detection of {plan.rule_path} from the recorded fields\n"
        f"  3. replace every TODO(detpack new) in the rule and in {plan.ads_path}\n"
        "  4. detpack validate --changed && detpack test --changed"
    )
    sys.exit(EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
