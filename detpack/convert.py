"""Convert every rule, through the pack's pipelines (pipelines/<family>/*.yml), into each target's query."""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import re
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sigma.backends.elasticsearch.elasticsearch_eql import EqlBackend
from sigma.backends.elasticsearch.elasticsearch_esql import ESQLBackend
from sigma.backends.elasticsearch.elasticsearch_lucene import LuceneBackend
from sigma.backends.splunk.splunk import SplunkBackend
from sigma.conversion.base import Backend
from sigma.conversion.state import ConversionState
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaValueError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule
from sigma.types import SigmaString

from detpack.content.pack import Pack
from detpack.content.rules import RuleFile
from detpack.findings import ContentError, Finding, UsageError, relpath
from detpack.offline import configure_offline

if TYPE_CHECKING:
    from detpack.convert_cache import ConvertCache


class PackLuceneBackend(LuceneBackend):  # type: ignore[misc]
    """pySigma's Lucene backend escapes only whitespace and * in field names; a query_string field name
    must escape every reserved character (`/` would start a regular expression):
    kubernetes.audit.annotations.authorization_k8s_io/decision -> ...authorization_k8s_io\\/decision."""

    field_escape_pattern: ClassVar[re.Pattern[str]] = re.compile(r"[\s*/+\-=&|><!(){}\[\]^\"~?:\\]")

    def convert_value_str(self, s: SigmaString, state: ConversionState) -> str:
        """Elasticsearch's query_string reads a term starting with `<` or `>` as a range (`f:\\<x` is
        `f < x`: it checks the unescaped text), and a bare AND, OR or NOT as an operator (a syntax error), so
        such a value is phrase-quoted, which ES takes literally. With a wildcard it cannot be quoted (a
        phrase has no wildcards): refused."""
        text = str(s)
        if text[:1] in ("<", ">") or text in ("AND", "OR", "NOT"):
            if s.contains_special():
                raise SigmaValueError(
                    f"the value {text!r} starts with {text[0]!r} and holds a wildcard: Elasticsearch's "
                    "query_string would read it as a range"
                )
            escaped = s.convert(
                self.escape_char, self.wildcard_multi, self.wildcard_single, self.str_quote + "\\", ""
            )
            return f"{self.str_quote}{escaped}{self.str_quote}"
        return str(super().convert_value_str(s, state))


class PackEqlBackend(EqlBackend):  # type: ignore[misc]
    """pySigma's EQL backend back-quotes a field name only for a leading digit, whitespace or '-'; EQL
    needs back-quotes for any character outside identifiers (`/` would be read as division)."""

    field_quote_pattern: ClassVar[re.Pattern[str]] = re.compile(
        r"^\d|.*[^A-Za-z0-9_.@]"
    )  # used with .match()


class PackSplunkBackend(SplunkBackend):  # type: ignore[misc]
    """pySigma's Splunk backend writes a correlation over several base rules (temporal) as
    `` `macro` | multisearch [ search <rule A> | eval event_type="a" ] [...] ``: the data source's macro (the
    pipeline's postprocessing) lands before `multisearch`, which Splunk only accepts as the first command,
    and the subsearches read every index. Here each subsearch is the base rule's finalized query (macro
    included) and the correlation itself gets no prefix:
    ``| multisearch [ search `macro` <rule A> | eval event_type="a" ] [ search `macro` <rule B> | ... ]``.
    Single-rule correlations and detection rules convert exactly as in pySigma."""

    def convert_correlation_search(self, rule: SigmaCorrelationRule, **kwargs: Any) -> str:
        references = rule.referenced_rules
        if len(references) == 1 and len(references[0].rule.get_conversion_result()) == 1:
            return str(super().convert_correlation_search(rule, **kwargs))
        template = self.correlation_search_multi_rule_query_expression
        queries = []
        for reference in references:
            base = reference.rule
            states = base.get_conversion_states()
            for index, query in enumerate(base.get_conversion_result()):
                queries.append(
                    template.format(
                        query=SplunkBackend.finalize_query(
                            self, base, query, index, states[index], "default"
                        ),
                        ruleid=self.convert_correlation_ruleid(base.name or base.id, template),
                        normalization=self.convert_correlation_search_field_normalization_expression(
                            rule.aliases, reference
                        ),
                    )
                )
        return str(
            self.correlation_search_multi_rule_expression.format(
                queries=self.correlation_search_multi_rule_query_expression_joiner.join(queries), **kwargs
            )
        )

    def finalize_query(
        self,
        rule: Any,
        query: Any,
        index: int,
        state: ConversionState,
        output_format: str,
    ) -> Any:
        if (
            isinstance(rule, SigmaCorrelationRule)
            and isinstance(query, str)
            and query.startswith("| multisearch")
        ):
            return getattr(self, f"finalize_query_{output_format}")(rule, query, index, state)
        return super().finalize_query(rule, query, index, state, output_format)


@dataclass(frozen=True)
class Target:
    name: str
    title: str
    backend: type[Backend]
    pipeline_family: str  # folder under pipelines/
    extension: str


TARGETS: dict[str, Target] = {
    "splunk": Target("splunk", "Splunk SPL", PackSplunkBackend, "splunk", ".spl"),
    "lucene": Target("lucene", "Elasticsearch Lucene query string", PackLuceneBackend, "ecs", ".lucene"),
    "eql": Target("eql", "Elastic EQL", PackEqlBackend, "ecs", ".eql"),
    "esql": Target("esql", "Elastic ES|QL", ESQLBackend, "ecs", ".esql"),
}


@dataclass(frozen=True)
class Query:
    rule: str  # rule name (file stem)
    target: str
    text: str


@cache
def _load_family(pipelines_dir: Path) -> ProcessingPipeline:
    findings: list[Finding] = []
    combined = ProcessingPipeline()
    files = sorted(pipelines_dir.glob("*.yml"))
    digest = hashlib.sha256()
    for file in files:
        shown = relpath(file, pipelines_dir.parent.parent)
        raw = file.read_bytes()
        digest.update(f"{file.name}\0{len(raw)}\0".encode())
        digest.update(raw)
        try:
            combined = combined + ProcessingPipeline.from_yaml(raw.decode("utf-8"))
        except (SigmaError, ValueError, TypeError, KeyError) as exc:
            findings.append(
                Finding(
                    shown,
                    0,
                    "pipeline",
                    f"pySigma cannot load this pipeline: {exc}",
                    "see pySigma's processing pipeline documentation",
                )
            )
    if findings:
        raise ContentError(findings)
    _FINGERPRINTS[pipelines_dir] = digest.hexdigest()
    return combined


_FINGERPRINTS: dict[Path, str] = {}  # pipelines dir -> sha256 of the files _load_family read


def pipeline_for(pack: Pack, target: Target) -> ProcessingPipeline:
    return _load_family((pack.root / "pipelines" / target.pipeline_family).resolve())


def pipeline_fingerprint(pack: Pack, target: Target) -> str:
    """The sha256 of the pipeline files that `pipeline_for` loaded (names and bytes), for cache keys: the
    pipeline object is kept for the life of the process, so this is the hash of what was read, not of what
    the files hold now."""
    directory = (pack.root / "pipelines" / target.pipeline_family).resolve()
    _load_family(directory)
    return _FINGERPRINTS[directory]


@dataclass(frozen=True)
class _Job:
    """One detection rule to convert, as a worker process receives it (picklable, no Pack)."""

    path: str
    name: str
    data: dict[str, Any]
    line: int  # of `detection`, for findings


def _convert_job(
    job: _Job, target: Target, backend: Backend | None, pipeline: ProcessingPipeline
) -> Query | Finding:
    """One rule to one target. The rule is parsed afresh: pipelines modify the rule object in place. With
    `backend`, that backend converts (pySigma's backends convert rule after rule, as `convert` does; the
    pipeline's state is reset for each rule); without, a new one."""
    try:
        sigma_rule = SigmaRule.from_dict(job.data)
        if backend is None:
            backend = target.backend(processing_pipeline=pipeline)
        queries = backend.convert_rule(sigma_rule)
    except (SigmaError, NotImplementedError) as exc:  # pySigma's backends raise the latter for some
        # features they lack, e.g. ES|QL for a keyword (field-less) detection
        return Finding(
            job.path,
            job.line,
            "convert",
            f"cannot convert to {target.title}: {exc}",
            CONVERT_FIX,
        )
    if len(queries) != 1 or not isinstance(queries[0], str):
        return Finding(
            job.path,
            job.line,
            "convert",
            f"{target.title} conversion gave {len(queries)} queries, expected one",
            "split the rule so each condition is one query",
        )
    return Query(job.name, target.name, queries[0])


CONVERT_FIX = "change the rule to use only what this target supports, or the pipeline"


def _job(rule: RuleFile) -> _Job:
    return _Job(rule.path, rule.name, rule.data, rule.line("detection"))


def convert_rule(
    rule: RuleFile, target: Target, pipeline: ProcessingPipeline
) -> tuple[Query | None, Finding | None]:
    """One rule to one target, with a backend of its own."""
    result = _convert_job(_job(rule), target, None, pipeline)
    return (result, None) if isinstance(result, Query) else (None, result)


_TargetSpec = tuple[str, Path, str]  # target name, pipelines dir, fingerprint of the pipeline files


def _convert_chunk(jobs: list[_Job], targets: list[_TargetSpec]) -> list[list[Query | Finding]]:
    """Every job to every target, one backend per target: [target][job]. Runs in a worker process as well
    as in this one; a worker that reads other pipeline files than this process did (they changed during
    the run) stops, since its queries would not be those of the pipeline the cache keys name."""
    configure_offline()
    results: list[list[Query | Finding]] = []
    for name, pipelines_dir, fingerprint in targets:
        target = TARGETS[name]
        pipeline = _load_family(pipelines_dir)
        if _FINGERPRINTS[pipelines_dir] != fingerprint:
            shown = f"pipelines/{pipelines_dir.name}"
            raise ContentError(
                [Finding(shown, 0, "pipeline", "the pipeline files changed during conversion", "run again")]
            )
        backend = target.backend(processing_pipeline=pipeline)
        results.append([_convert_job(job, target, backend, pipeline) for job in jobs])
    return results


JOBS_VARIABLE = "DETPACK_JOBS"
PARALLEL_MIN_CONVERSIONS = 400  # below this, starting worker processes costs more than they save
CHUNKS_PER_WORKER = 4  # several chunks per worker, so one slow chunk does not leave a core idle


class JobsError(UsageError):
    """DETPACK_JOBS is not a number of worker processes."""

    def __init__(self, value: str) -> None:
        super().__init__(
            f"{JOBS_VARIABLE}={value!r} is not a number of worker processes: use a whole number >= 1 "
            "(1 converts in this process), or unset it to use every CPU"
        )


def conversion_jobs() -> int:
    """Worker processes for conversion: DETPACK_JOBS when set (1 converts in this process), else the CPUs
    this process may run on. Raises JobsError for any other value (0, -1, 2.5, abc, non-ASCII digits)."""
    value = os.environ.get(JOBS_VARIABLE, "").strip()
    if not value:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if re.fullmatch(r"[0-9]+", value) is None or int(value) < 1:
        raise JobsError(value)
    return int(value)


def _start_method() -> str:
    """fork when nothing can break in the child: no other Python thread and no JVM (the Lucene engine's)
    running in this process, whose locks a forked child would inherit held; else spawn."""
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return "spawn"
    jpype = sys.modules.get("jpype")
    if jpype is not None and jpype.isJVMStarted():
        return "spawn"
    return "fork"


def _convert_jobs(jobs: list[_Job], targets: list[_TargetSpec], workers: int) -> list[list[Query | Finding]]:
    """[target][job], the same whether converted here or by `workers` processes (chunks keep their order)."""
    if workers <= 1 or len(jobs) * len(targets) < PARALLEL_MIN_CONVERSIONS:
        return _convert_chunk(jobs, targets)
    size = max(1, -(-len(jobs) // (workers * CHUNKS_PER_WORKER)))
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    method = _start_method()
    if method == "fork":  # forked workers inherit the loaded pack: their collector need not scan it
        gc.freeze()
    try:
        context = multiprocessing.get_context(method)
        with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=context) as pool:
            parts = list(pool.map(_convert_chunk, chunks, [targets] * len(chunks)))
    finally:
        if method == "fork":
            gc.unfreeze()
    return [[result for part in parts for result in part[index]] for index in range(len(targets))]


def convert_pack(
    pack: Pack,
    rule_names: set[str] | None = None,
    targets: list[str] | None = None,
    *,
    jobs: int | None = None,
    cache: ConvertCache | None = None,
) -> tuple[list[Query], list[Finding]]:
    """Every rule (or `rule_names`) to every target (or `targets`), in target order then pack order.

    Detection rules convert in `jobs` worker processes (default `conversion_jobs()`) when there are enough
    of them; correlations convert here, with their base rules. With `cache`, a rule whose text, pipeline
    and tools are unchanged since an earlier run is not converted again (detpack/convert_cache.py). The
    result is the same, byte for byte and in order, whatever `jobs` and the cache."""
    workers = conversion_jobs() if jobs is None else jobs  # a wrong DETPACK_JOBS fails even on a warm cache
    configure_offline()  # the Elastic backends map ATT&CK tags with pySigma's (downloaded) MITRE data
    from detpack.correlation import building_blocks, convert_correlation  # imports this module

    blocks = building_blocks(pack)  # base rules of correlations (generate: false): no query of their own
    chosen = [
        rule
        for rule in pack.rules
        if (rule_names is None or rule.name in rule_names) and rule.name not in blocks
    ]
    target_list = [TARGETS[name] for name in (list(TARGETS) if targets is None else targets)]
    pipelines = {t.name: pipeline_for(pack, t) for t in target_list}  # pipeline errors raise here
    job_list = [_job(rule) for rule in chosen if not rule.is_correlation]
    results: dict[tuple[str, str], Query | Finding] = {}  # (target, rule path) -> result
    keys: dict[tuple[str, str], str] = {}
    if cache is not None:
        for target in target_list:
            fingerprint = pipeline_fingerprint(pack, target)
            for job in job_list:
                keys[(target.name, job.path)] = cache.key(target.name, fingerprint, job.data)
        found = cache.lookup(set(keys.values()))
        for job in job_list:
            for target in target_list:
                entry = found.get(keys[(target.name, job.path)])
                if entry is not None:
                    results[(target.name, job.path)] = entry.result(job.path, job.name, job.line, target)
    todo_targets = [
        (t.name, (pack.root / "pipelines" / t.pipeline_family).resolve(), pipeline_fingerprint(pack, t))
        for t in target_list
        if any((t.name, job.path) not in results for job in job_list)
    ]
    todo_jobs = [job for job in job_list if any((t, job.path) not in results for t, _, _ in todo_targets)]
    if todo_jobs:
        converted = _convert_jobs(todo_jobs, todo_targets, workers)
        fresh: dict[str, Query | Finding] = {}
        for (target_name, _directory, _fingerprint), per_job in zip(todo_targets, converted, strict=True):
            for job, result in zip(todo_jobs, per_job, strict=True):
                if (target_name, job.path) not in results:
                    results[(target_name, job.path)] = result
                    if cache is not None:
                        fresh[keys[(target_name, job.path)]] = result
        if cache is not None:
            cache.store(fresh)
    queries: list[Query] = []
    findings: list[Finding] = []
    for target in target_list:
        pipeline = pipelines[target.name]
        for rule in chosen:
            query: Query | None
            finding: Finding | None
            if rule.is_correlation:  # with its base rules; nothing when the target cannot express it
                query, finding = convert_correlation(pack, rule, target, pipeline)
            else:
                result = results[(target.name, rule.path)]
                query, finding = (result, None) if isinstance(result, Query) else (None, result)
            if query is not None:
                queries.append(query)
            if finding is not None:
                findings.append(finding)
    return queries, findings
