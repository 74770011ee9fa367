"""`--changed [REF]`: which content changed since a git ref, and what must be checked again because of it.

Changed files are the difference between REF and the working tree: committed on the branch, staged,
unstaged, and untracked (not ignored) files. The default REF is the merge base of HEAD with ``main``
(or ``origin/main``): what a pull request would add. Outside a git repository, or without either
branch, everything is checked and a notice says why.

What a change selects (``select``):
- rules to run over every fixture: changed rule files, the rules of a changed ADS, every rule of a data
  source whose definition (``datasources/<name>.yml``) or pipeline (``pipelines/*/<name>.yml``) changed,
  the rules named in a changed ``tests/engine-differences.yml``, and the correlation rules built on any
  of those;
- fixtures to run every rule over: changed fixture files and fixtures whose ``.expect.yml`` changed (a
  rule only sees the events of its own data source, so that is every rule of their data sources);
- everything, when the tooling or the rules about content changed: ``schemas/``, the ``detpack`` package,
  ``pyproject.toml``, or a pipeline file that is not named after one data source.

Validation under --changed (``relevant_findings``) still validates the whole pack: the invariants that span
files (unique ids, titles and file names, every rule in exactly one ADS, the ADS's ATT&CK and data sources
equal to its rules', the fixtures an ADS names, expectations naming existing rules) can break in a file the
change did not touch (a renamed rule leaves its ADS pointing at nothing; a copied rule duplicates the id of
the original). Loading and validating everything takes seconds; what --changed narrows is the report: every
finding in a changed file, and every error anywhere (on a branch whose base passes CI, an error in an
unchanged file comes from the change), while warnings in unchanged files are only counted.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from detpack.content.pack import Pack
from detpack.content.yamlfile import load_yaml
from detpack.findings import ContentError, Finding, Severity
from detpack.offline import configure_offline
from detpack.replay import DIFFERENCES_FILE, ReplayResult, load_differences

DEFAULT_BASES = ("main", "origin/main")
CONTENT_DIRS = ("rules/", "ads/", "tests/fixtures/", "pipelines/", "datasources/", "schemas/", "coverage/")
EVERYTHING_PREFIXES = ("schemas/", "detpack/")
EVERYTHING_FILES = ("pyproject.toml",)
GIT_TIMEOUT = 30


class ChangesError(Exception):
    """The ref given to --changed does not exist (a usage error)."""


@dataclass(frozen=True)
class ChangeSet:
    files: frozenset[str]  # pack-relative paths, forward slashes (deleted files included)
    base: str | None  # the commit compared with, None when everything is checked
    description: str  # for people: "since 1a2b3c4d (merge base of HEAD and main)"
    everything: bool = False  # True when the changes could not be determined
    notice: str = ""  # why everything is checked


@dataclass(frozen=True)
class Selection:
    """What --changed checks again."""

    rules: frozenset[str]  # rules that run over every fixture (and convert again)
    fixtures: frozenset[str]  # fixture files every rule runs over
    everything: bool
    reasons: dict[str, str] = field(default_factory=dict)  # rule or fixture -> why it was selected

    def converted(self, pack: Pack) -> set[str]:
        """Rules to convert: the selected ones, and every rule of a data source with a changed fixture."""
        if self.everything:
            return {r.name for r in pack.rules}
        sources = {f.datasource.name for f in pack.fixtures if f.path in self.fixtures}
        return (
            set(self.rules)
            | {r.name for r in pack.rules if (ds := pack.datasource_of(r)) is not None and ds.name in sources}
            | {name for name, (_, source) in correlations(pack).items() if source in sources}
        )

    @property
    def empty(self) -> bool:
        return not self.everything and not self.rules and not self.fixtures

    def summary(self) -> str:
        if self.everything:
            return "every rule over every fixture"
        return (
            f"{len(self.rules)} changed rules over every fixture, "
            f"every rule over {len(self.fixtures)} changed fixtures"
        )


# --- git ----------------------------------------------------------------------------------------------


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"})
    return subprocess.run(
        ["git", "-C", str(root), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        timeout=GIT_TIMEOUT,
        env=env,
        check=False,
    )


def _inside_git(root: Path) -> bool:
    try:
        result = _git(root, "rev-parse", "--is-inside-work-tree")
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0 and result.stdout.strip() == "true"


def _commit(root: Path, ref: str) -> str | None:
    result = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


def repo_prefix(root: Path) -> str:
    """The pack root's path inside its git repository ('' at the top, 'packs/x/' below it)."""
    try:
        result = _git(root, "rev-parse", "--show-prefix")
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def git_user_name(root: Path) -> str | None:
    try:
        result = _git(root, "config", "user.name")
    except (OSError, subprocess.SubprocessError):
        return None
    name = result.stdout.strip()
    return name if result.returncode == 0 and name else None


def _split_z(text: str) -> set[str]:
    return {item for item in text.split("\0") if item}


def changed_files(root: Path, ref: str | None = None) -> ChangeSet:
    """Files that differ between REF (default: the merge base with main) and the working tree."""
    if not _inside_git(root):
        return ChangeSet(
            frozenset(), None, "everything", True, f"{root} is not in a git repository: checking everything"
        )
    if ref is not None:
        if ref.startswith("-") or not ref.strip():
            raise ChangesError(f"{ref!r} is not a git ref")
        base = _commit(root, ref)
        if base is None:
            raise ChangesError(f"no commit {ref!r} in this repository (try main, origin/main, HEAD~1)")
        description = f"since {ref} ({base[:12]})"
    else:
        base = None
        description = ""
        for candidate in DEFAULT_BASES:
            if _commit(root, candidate) is None:
                continue
            merge_base = _git(root, "merge-base", "HEAD", candidate)
            if merge_base.returncode == 0 and merge_base.stdout.strip():
                base = merge_base.stdout.strip()
                description = f"since {base[:12]} (the merge base of HEAD and {candidate})"
                break
        if base is None:
            return ChangeSet(
                frozenset(),
                None,
                "everything",
                True,
                "no main or origin/main branch to compare with: checking everything "
                "(pass --changed REF to compare with another ref)",
            )
    diff = _git(root, "diff", "--name-only", "--no-renames", "-z", "--relative", base, "--")
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "-z")
    if diff.returncode != 0 or untracked.returncode != 0:
        message = (diff.stderr or untracked.stderr).strip()
        return ChangeSet(
            frozenset(), None, "everything", True, f"git failed ({message}): checking everything"
        )
    files = frozenset(path.replace("\\", "/") for path in _split_z(diff.stdout) | _split_z(untracked.stdout))
    return ChangeSet(files, base, description)


# --- what a change selects ----------------------------------------------------------------------------


def correlations(pack: Pack) -> dict[str, tuple[frozenset[str], str]]:
    """Each valid correlation rule: the names of its base rules and its data source."""
    from detpack.correlation import resolve_correlations  # imports convert, which imports the pack modules

    configure_offline()  # pySigma parses correlation rules with its (otherwise downloaded) ATT&CK data
    try:
        valid, _ = resolve_correlations(pack)
    except ContentError:
        return {}
    return {name: (frozenset(b.name for b in c.bases), c.datasource.name) for name, c in valid.items()}


def _differences_rules(pack: Pack) -> set[str]:
    path = pack.root / DIFFERENCES_FILE
    if not path.exists():
        return set()
    try:
        doc = load_yaml(path, DIFFERENCES_FILE)
    except ContentError:
        return set()  # replay reports the broken file
    items = doc.data.get("differences") if isinstance(doc.data, dict) else None
    return {str(i["rule"]) for i in items or [] if isinstance(i, dict) and "rule" in i}


def select(pack: Pack, changes: ChangeSet) -> Selection:
    all_rules = frozenset(r.name for r in pack.rules)
    all_fixtures = frozenset(f.path for f in pack.fixtures)
    if changes.everything:
        return Selection(all_rules, all_fixtures, True, {"*": changes.notice})
    files = changes.files
    everything = sorted(f for f in files if f.startswith(EVERYTHING_PREFIXES) or f in EVERYTHING_FILES)
    pipelines = sorted(f for f in files if f.startswith("pipelines/") and f.endswith((".yml", ".yaml")))
    odd_pipelines = [p for p in pipelines if Path(p).stem not in pack.datasources]
    if everything or odd_pipelines:
        why = f"{(everything + odd_pipelines)[0]} changed: it can change every rule's result"
        return Selection(all_rules, all_fixtures, True, {"*": why})

    reasons: dict[str, str] = {}

    def add(names: Iterable[str], why: str) -> None:
        for name in sorted(names):
            reasons.setdefault(name, why)

    add((r.name for r in pack.rules if r.path in files), "the rule changed")
    for doc in pack.ads:
        if doc.path in files:
            add((str(n) for n in doc.meta.get("rules") or [] if str(n) in all_rules), f"{doc.path} changed")
    changed_sources = {Path(p).stem: p for p in pipelines}
    changed_sources.update({Path(p).stem: p for p in files if p.startswith("datasources/")})
    for rule in pack.rules:
        ds = pack.datasource_of(rule)
        if ds is not None and ds.name in changed_sources:
            add([rule.name], f"{changed_sources[ds.name]} changed")
    if DIFFERENCES_FILE in files:
        add(_differences_rules(pack) & all_rules, f"{DIFFERENCES_FILE} changed")
    for name, (bases, _) in correlations(pack).items():  # a correlation runs again when a base rule does
        changed_bases = sorted(bases & reasons.keys())
        if changed_bases:
            add([name], f"its base rule {changed_bases[0]} is selected")
    rules = frozenset(reasons)
    fixtures = frozenset(f.path for f in pack.fixtures if f.path in files or f.expect_path in files)
    for fixture in sorted(fixtures):
        reasons.setdefault(fixture, "the fixture or its expectations changed")
    return Selection(rules, fixtures, False, reasons)


def changed_content(changes: ChangeSet) -> list[str]:
    return sorted(f for f in changes.files if f.startswith(CONTENT_DIRS) or f == DIFFERENCES_FILE)


# --- findings and results under --changed -------------------------------------------------------------


def relevant_findings(findings: list[Finding], changes: ChangeSet) -> tuple[list[Finding], int]:
    """Findings to show under --changed: all in changed files, and every error elsewhere.

    A change can break invariants that span files: a duplicate id is reported on one of the two rules,
    a renamed rule on the ADS that still lists it. On a branch whose base passes CI every error in an
    unchanged file comes from the change, so errors are always shown; warnings only in changed files.
    Returns (shown, number hidden).
    """
    if changes.everything:
        return findings, 0
    shown = [f for f in findings if f.path in changes.files or f.severity is Severity.ERROR]
    return shown, len(findings) - len(shown)


def run_selected(
    pack: Pack,
    selection: Selection,
    run: Callable[[Pack, set[str] | None], ReplayResult],
) -> ReplayResult:
    """Run the selected rules over every fixture, and every other rule over the changed fixtures only.

    ``run(pack, rule_names)`` is one replay; the second one gets a pack view that holds only the changed
    fixtures. Documented differences of events outside that view cannot be judged there, so their
    'difference-stale' findings are dropped from it (the first run judges them for the selected rules).
    """
    if selection.everything:
        return run(pack, None)
    results: list[ReplayResult] = []
    if selection.rules:
        results.append(run(pack, set(selection.rules)))
    others = selection.converted(pack) - set(selection.rules)
    if others and selection.fixtures:
        view = replace(pack, fixtures=[f for f in pack.fixtures if f.path in selection.fixtures])
        partial = run(view, others)
        judged = _differences_judged_by(pack, selection.fixtures)
        partial.findings = [f for f in partial.findings if f.code != "difference-stale" or f.line in judged]
        results.append(partial)
    return merge_results(results)


def _differences_judged_by(pack: Pack, fixtures: frozenset[str]) -> set[int]:
    """Lines of tests/engine-differences.yml whose entry a run over only these fixtures can judge.

    An entry for one event can be judged when its fixture is in the run. An entry for "all" (the target
    cannot run the rule) cannot: whether an engine accepts a query can depend on the events it indexes
    (ES|QL's columns come from the documents), so the full run of the rule judges it.
    """
    try:
        differences = load_differences(pack)
    except ContentError:
        return set()
    return {d.line for d in differences if d.event != "all" and d.event.rsplit(":", 1)[0] in fixtures}


def merge_results(results: list[ReplayResult]) -> ReplayResult:
    if not results:
        return ReplayResult()
    merged = ReplayResult(engines=list(results[0].engines))
    for result in results:
        merged.verdicts += result.verdicts
        merged.queries.update(result.queries)
        merged.findings += [f for f in result.findings if f not in merged.findings]
        merged.documented_errors.update(result.documented_errors)
    return merged
