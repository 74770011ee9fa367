"""Conversion in worker processes: the same queries and findings, byte for byte and in the same order."""

from __future__ import annotations

import gc
import sys
import threading
import types
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from click.testing import CliRunner, Result

from detpack import convert
from detpack.cli import main
from detpack.content.pack import Pack, load_pack
from detpack.content.rules import RuleFile
from detpack.content.yamlfile import parse_yaml
from detpack.convert import (
    TARGETS,
    JobsError,
    _convert_chunk,
    _job,
    conversion_jobs,
    convert_pack,
    convert_rule,
    pipeline_fingerprint,
    pipeline_for,
)
from detpack.correlation import building_blocks
from detpack.findings import ContentError
from tests.conftest import REPO_ROOT

# A rule Lucene cannot take (PackLuceneBackend refuses `<` with a wildcard): a finding, from a worker too.
REFUSED = (
    "title: refused by lucene\nid: 3e0f5d1c-7a2b-4c9d-8e6f-1a2b3c4d5e6f\n"
    "logsource: {product: docker, service: events}\n"
    "detection:\n  sel:\n    Action: '<x*'\n  condition: sel\n"
)


# A keyword (field-less) detection: pySigma's ES|QL backend raises NotImplementedError, not a SigmaError.
# Before the fix that was a traceback out of `detpack convert`; now it is a finding like any other.
KEYWORDS = (
    "title: keywords\nid: 5b8e2c1d-9f4a-4e3b-a2c1-6d7e8f9a0b1c\n"
    "logsource: {product: docker, service: events}\n"
    "detection:\n  keywords:\n    - nsenter\n  condition: keywords\n"
)


@pytest.fixture(scope="module")
def pack() -> Pack:
    """The pack plus two rules that fail to convert, in the middle so order matters."""
    real = load_pack(REPO_ROOT)
    extra = [
        RuleFile(path, parse_yaml(text, path))
        for path, text in (
            ("rules/docker_events/refused.yml", REFUSED),
            ("rules/docker_events/keywords.yml", KEYWORDS),
        )
    ]
    rules = [*real.rules]
    rules[len(rules) // 2 : len(rules) // 2] = extra
    return Pack(real.root, real.datasources, rules, real.ads, real.fixtures)


class _CountingPool(ProcessPoolExecutor):
    started: list[int] = []  # noqa: RUF012 - shared on purpose: the test reads what the code under test made

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _CountingPool.started.append(kwargs["max_workers"])


@pytest.mark.parametrize("method", ["chosen", "spawn"])
def test_workers_give_the_serial_result(method: str, pack: Pack, monkeypatch: pytest.MonkeyPatch) -> None:
    serial = convert_pack(pack, jobs=1)
    queries, findings = serial
    assert len(queries) > 200
    assert [(f.path, f.line, f.code) for f in findings] == [
        ("rules/docker_events/refused.yml", 4, "convert"),  # Lucene comes before ES|QL
        ("rules/docker_events/keywords.yml", 4, "convert"),
    ]
    assert findings[0].message.startswith("cannot convert to Elasticsearch Lucene query string: ")
    assert findings[1].message.startswith("cannot convert to Elastic ES|QL: String value expressions")
    assert {q.target for q in queries if q.rule == "keywords"} == {"splunk", "lucene", "eql"}

    monkeypatch.setattr(convert, "PARALLEL_MIN_CONVERSIONS", 0)  # the pack alone is below the threshold
    monkeypatch.setattr(convert, "ProcessPoolExecutor", _CountingPool)
    if method == "spawn":  # what runs when fork is unsafe: fresh interpreters, rules sent pickled
        monkeypatch.setattr(convert, "_start_method", lambda: "spawn")
    _CountingPool.started.clear()
    frozen = gc.get_freeze_count()
    assert convert_pack(pack, jobs=2) == serial
    assert _CountingPool.started == [2]
    assert gc.get_freeze_count() == frozen  # the collector is as it was (fork freezes it meanwhile)


def test_a_shared_backend_converts_like_a_fresh_one_for_every_rule(pack: Pack) -> None:
    """pySigma's backends convert rule after rule (its `convert` does); each rule here had its own backend
    before. Nothing may carry over from one rule to the next: every rule, in pack order, through one backend
    per target, gives what a backend of its own gives."""
    blocks = building_blocks(pack)
    rules = [r for r in pack.rules if not r.is_correlation and r.name not in blocks]
    targets = [
        (name, (pack.root / "pipelines" / t.pipeline_family).resolve(), pipeline_fingerprint(pack, t))
        for name, t in TARGETS.items()
    ]
    shared = _convert_chunk([_job(r) for r in rules], targets)
    for (name, _directory, _fingerprint), results in zip(targets, shared, strict=True):
        target = TARGETS[name]
        for rule, result in zip(rules, results, strict=True):
            query, finding = convert_rule(rule, target, pipeline_for(pack, target))
            assert result == (query if query is not None else finding), (rule.name, name)


def test_detpack_jobs_sets_the_number_of_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETPACK_JOBS", "3")
    assert conversion_jobs() == 3
    monkeypatch.setenv("DETPACK_JOBS", " 1 ")
    assert conversion_jobs() == 1
    monkeypatch.delenv("DETPACK_JOBS")
    assert conversion_jobs() >= 1
    for wrong in ("0", "two", "-1", "2.5", "\u00b2"):  # "²" passes str.isdigit but not int()
        monkeypatch.setenv("DETPACK_JOBS", wrong)
        with pytest.raises(JobsError, match="DETPACK_JOBS") as error:
            conversion_jobs()
        assert isinstance(error.value, ValueError)
        assert "use a whole number >= 1" in str(error.value)


ONE_RULE = "docker_events_container_committed_to_image"


def _convert_cli(jobs: str) -> Result:
    return CliRunner().invoke(
        main,
        ["convert", "--rule", ONE_RULE, "--target", "splunk", "--root", str(REPO_ROOT)],
        env={"DETPACK_JOBS": jobs},
    )


@pytest.mark.parametrize("wrong", ["abc", "0", "-1", "2.5", "\u00b2", "1e3"])
def test_a_wrong_detpack_jobs_is_a_usage_error(wrong: str) -> None:
    """Before the fix: `internal error in detpack (please report): ValueError: ...` (or int()'s own message
    for "²"). Now: one line that names the variable, the value, what is allowed and the fix; exit 2."""
    result = _convert_cli(wrong)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr == (
        f"error: DETPACK_JOBS={wrong!r} is not a number of worker processes: use a whole number >= 1 "
        "(1 converts in this process), or unset it to use every CPU\n"
    )
    assert "internal error" not in result.output


@pytest.mark.parametrize("jobs", ["1", "2", ""])
def test_a_valid_detpack_jobs_converts(jobs: str) -> None:
    result = _convert_cli(jobs)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.startswith(f"# {ONE_RULE} [Splunk SPL]\n`detpack_docker_events` ")


def test_fork_only_when_nothing_else_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jpype", types.SimpleNamespace(isJVMStarted=lambda: False))
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    assert convert._start_method() == "fork"
    monkeypatch.setattr(threading, "active_count", lambda: 2)  # another thread may hold a lock
    assert convert._start_method() == "spawn"
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.setitem(sys.modules, "jpype", types.SimpleNamespace(isJVMStarted=lambda: True))
    assert convert._start_method() == "spawn"  # the Lucene engine's JVM has threads of its own


def test_a_worker_that_reads_other_pipelines_stops(pack: Pack) -> None:
    """The files changed between this process loading them and a spawned worker loading them: the
    worker's queries would not belong to the pipeline the cache keys name."""
    target = TARGETS["splunk"]
    directory = (pack.root / "pipelines" / target.pipeline_family).resolve()
    assert len(pipeline_fingerprint(pack, target)) == 64
    rule = next(r for r in pack.rules if not r.is_correlation)
    with pytest.raises(ContentError) as error:
        _convert_chunk([_job(rule)], [("splunk", directory, "0" * 64)])
    assert error.value.findings[0].message == "the pipeline files changed during conversion"
    assert error.value.findings[0].path == "pipelines/splunk"
