"""Replay benchmark: events per second and peak memory of each engine over a generated corpus.

    python benchmarks/replay.py [--events 100000] [--engines sqlite,spl,lucene,eql,esql] [--seed 7]

The corpus is made from the pack's own fixtures: every fixture event is copied many times with its
identifiers (audit IDs, container IDs, process IDs, timestamps, pod names, IPs) varied, so the events
have the shapes and hit rates of real data across all the pack's data sources. Each engine runs every
rule of the pack over the whole corpus in its own process (one core), so peak memory is the engine's.
Correlation rules and their building blocks, and rules tests/engine-differences.yml says an engine
cannot run at all, are not run on that engine; each row says how many.
Ingest (native -> the engine's view) is timed separately from query execution.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sigma.rule import SigmaRule

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detpack.content.pack import Pack, load_pack  # noqa: E402
from detpack.convert import convert_pack  # noqa: E402
from detpack.correlation import building_blocks  # noqa: E402
from detpack.engines.runners import ENGINES, RUNNERS  # noqa: E402
from detpack.engines.sqlite import ReferenceTable  # noqa: E402
from detpack.ingest.native import parse_native  # noqa: E402
from detpack.ingest.reference import reference_view  # noqa: E402
from detpack.offline import configure_offline  # noqa: E402
from detpack.replay import load_differences  # noqa: E402
from detpack.validate.pack import validate_pack  # noqa: E402
from detpack.validate.rules import detection_keys  # noqa: E402

HEX = "0123456789abcdef"


def _vary(raw: str, rng: random.Random) -> str:
    """Change identifiers but not the behaviour: hex IDs, UUIDs, numbers in IDs, timestamps' seconds."""
    raw = re.sub(r"[0-9a-f]{64}", lambda m: "".join(rng.choice(HEX) for _ in range(64)), raw)
    raw = re.sub(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        lambda m: "-".join("".join(rng.choice(HEX) for _ in range(n)) for n in (8, 4, 4, 4, 12)),
        raw,
    )
    raw = re.sub(r'"ProcessId">\d+<', lambda m: f'"ProcessId">{rng.randint(1000, 4_000_000)}<', raw)
    raw = re.sub(r":(\d\d)\.(\d+)Z", lambda m: f":{rng.randint(10, 59)}.{m.group(2)}Z", raw)
    return raw


def corpus(pack: Pack, size: int, seed: int) -> dict[str, list[tuple[str, Any]]]:
    """data source -> [(raw line, native event)], `size` events in all, proportional to the fixtures."""
    rng = random.Random(seed)
    events = [(f.datasource, e) for f in pack.fixtures for e in f.events]
    result: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for index in range(size):
        ds, event = events[index % len(events)]
        raw = _vary(event.raw, rng)
        result[ds.name].append((raw, parse_native(ds.fixture_format, raw)))
    return result


def run_engine(engine: str, size: int, seed: int) -> dict[str, Any]:
    configure_offline()
    pack = load_pack(ROOT)
    validate_pack(pack)
    data = corpus(pack, size, seed)
    spec = ENGINES[engine]
    queries: dict[tuple[str, str], str] = {}
    if spec.target:
        converted, _ = convert_pack(pack, targets=[spec.target])
        queries = {(q.rule, q.target): q.text for q in converted}
    # Not run (and counted in the output): correlation rules and their building blocks, which only
    # `detpack test` runs (as sequences), and rules tests/engine-differences.yml says this engine cannot run.
    unsupported = {(d.rule, d.engine) for d in load_differences(pack) if d.event == "all"}
    blocks = building_blocks(pack)  # a correlation's base rules (generate: false) have no query of their own
    skipped = {(r.name, engine) for r in pack.rules if r.is_correlation or r.name in blocks} | unsupported
    ingest_seconds = 0.0
    query_seconds = 0.0
    hits = 0
    for source, items in sorted(data.items()):
        ds = pack.datasources[source]
        rules = [r for r in pack.rules if (d := pack.datasource_of(r)) and d.name == source]
        rules = [r for r in rules if (r.name, engine) not in skipped]
        started = time.perf_counter()
        if engine == "sqlite":
            referenced = {k.split("|")[0] for r in rules for _, k in detection_keys(r)} - {""}
            wanted = frozenset(referenced | {k for k, _ in ds.scope})
            views = [reference_view(ds.fixture_format, native, wanted) for _, native in items]
            views = [v for v in views if ds.in_scope(v)]
            table = ReferenceTable.build(views, referenced)
            ingest_seconds += time.perf_counter() - started
            started = time.perf_counter()
            for rule in rules:
                hits += len(table.matches(table.query_for(SigmaRule.from_dict(rule.data))))
            query_seconds += time.perf_counter() - started
            continue
        if spec.view == "splunk":
            from detpack.ingest.splunk import splunk_event

            views = [splunk_event(ds, native, raw) for raw, native in items]
        else:
            from detpack.ingest.ecs import ecs_document

            views = [ecs_document(ds.name, native) for _, native in items]
        types: dict[str, str] = {}
        if spec.view == "ecs":
            from detpack.ingest.fields import load_field_types

            types = dict(load_field_types(ds.name))
        ingest_seconds += time.perf_counter() - started
        started = time.perf_counter()
        for rule in rules:
            hits += len(RUNNERS[engine](queries[(rule.name, spec.target or "")], views, ds, types))
        query_seconds += time.perf_counter() - started
    return {
        "engine": engine,
        "events": size,
        "rules": len(pack.rules) - len({name for name, e in skipped if e == engine}),
        "skipped": len({name for name, e in skipped if e == engine}),
        "hits": hits,
        "ingest_s": round(ingest_seconds, 3),
        "query_s": round(query_seconds, 3),
        "events_per_s": round(size / query_seconds) if query_seconds else None,
        "end_to_end_per_s": round(size / (query_seconds + ingest_seconds)) if query_seconds else None,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_engine(args.child, args.events, args.seed)))
        return
    print(
        f"{args.events} events, all rules of the pack, one process per engine"
        " (pinned to one core with taskset when present)"
    )
    print(
        f"{'engine':<8} {'rules':>6} {'hits':>8} {'ingest s':>9} {'query s':>9} {'query ev/s':>11} "
        f"{'total ev/s':>11} {'peak MiB':>9}  not run"
    )
    for engine in args.engines.split(","):
        command = [
            sys.executable,
            __file__,
            "--events",
            str(args.events),
            "--seed",
            str(args.seed),
            "--child",
            engine,
        ]
        taskset = ["taskset", "-c", "0"] if Path("/usr/bin/taskset").exists() else []
        done = subprocess.run(taskset + command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(
                f"{engine:<8} FAILED: "
                f"{done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}"
            )
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{engine:<8} {row['rules']:>6} {row['hits']:>8} {row['ingest_s']:>9} {row['query_s']:>9} "
            f"{row['events_per_s']:>11} {row['end_to_end_per_s']:>11} {row['peak_rss_mib']:>9}  "
            f"{row['skipped']} (correlations and building blocks; documented `event: all`)"
        )


if __name__ == "__main__":
    main()
