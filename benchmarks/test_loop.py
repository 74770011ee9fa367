"""The pull-request loop: how long `detpack test --changed` takes after one change, as the pack grows.

    python benchmarks/test_loop.py [--copies 1,5,49] [--full 1] [--repeat 1]

For each entry of --copies, a pack with every rule of this pack in that many copies (1: the pack itself,
5: about 300 rules, 49: about 3,000; benchmarks/synthetic.py) is written to a temporary git repository and
committed on `main`. The caches (results and conversions) are filled as an earlier `detpack test` on main
would have left them. Then, each in a fresh `detpack test -q --changed` process, as a developer would run it:

- rule: one rule file changed (its level): that rule converts again and runs over every fixture;
- rule+fixture: the same rule and one fixture of its data source (a note in the expectations) changed:
  every rule of that data source runs over that fixture too, their queries from the cache;
- no cache: the same again with the cache removed (DETPACK_CACHE=0): what the cache saves.
- full: `detpack test -q` of the whole pack, for the packs with at most --full copies.

Every run must pass (0 failures); the median wall time of --repeat runs is printed (the changed rule gets
a new level each time, so it converts each time), with where the time of the `rule` run goes
(measured again in one process: start, loading the pack, validating it, selecting the changes, converting;
the rest is the five engines and the report).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RULE = "rules/docker_events/docker_events_container_committed_to_image.yml"
FIXTURE = "tests/fixtures/docker_events/container_commit.expect.yml"
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-c", "commit.gpgsign=false"]


def _detpack() -> list[str]:
    script = Path(sys.executable).parent / "detpack"
    return [str(script)] if script.exists() else [sys.executable, "-m", "detpack.cli"]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    if old not in text:
        raise SystemExit(f"{path}: {old!r} not found; update benchmarks/test_loop.py to the pack's content")
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _run(pack: Path, *args: str, cache: bool = True) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DETPACK_CACHE", "DETPACK_JOBS")}
    if not cache:
        env["DETPACK_CACHE"] = "0"
    started = time.perf_counter()
    done = subprocess.run(
        [*_detpack(), "test", "-q", *args], cwd=pack, capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    summary = lines[-1] if lines else done.stderr.strip()[-300:]
    if done.returncode != 0 or " 0 failures" not in summary:
        command = " ".join(("detpack test -q", *args))
        raise SystemExit(f"{command} failed in {pack} (exit {done.returncode}): {summary}")
    return wall, summary


def warm(pack: Path) -> None:
    """Runs in its own process: fill the result and conversion caches, as an earlier `detpack test` did."""
    from detpack.content.pack import load_pack
    from detpack.convert import convert_pack
    from detpack.convert_cache import ConvertCache
    from detpack.result_cache import ResultCache
    from detpack.validate.pack import validate_pack

    loaded = load_pack(pack, ResultCache.for_pack(pack))
    validate_pack(loaded, ResultCache.for_pack(pack))
    convert_pack(loaded, cache=ConvertCache.for_pack(loaded.root))


def stages(pack: Path) -> dict[str, float]:
    """Runs in its own process: the steps of `detpack test --changed` before the engines, timed."""
    started = time.perf_counter()
    from detpack.changes import changed_files, select
    from detpack.content.pack import load_pack
    from detpack.convert import TARGETS, convert_pack
    from detpack.convert_cache import ConvertCache
    from detpack.offline import configure_offline
    from detpack.result_cache import ResultCache
    from detpack.validate.pack import validate_pack

    configure_offline()
    marks = {"start": time.perf_counter() - started}
    step = time.perf_counter()
    loaded = load_pack(pack, ResultCache.for_pack(pack))
    marks["load"] = time.perf_counter() - step
    step = time.perf_counter()
    validate_pack(loaded, ResultCache.for_pack(pack))
    marks["validate"] = time.perf_counter() - step
    step = time.perf_counter()
    selection = select(loaded, changed_files(loaded.root, None))
    names = selection.converted(loaded)
    marks["select"] = time.perf_counter() - step
    step = time.perf_counter()
    convert_pack(loaded, names, list(TARGETS), cache=ConvertCache.for_pack(loaded.root))
    marks["convert"] = time.perf_counter() - step
    return marks


def _child(mode: str, pack: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, f"--{mode}", str(pack)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed: {done.stderr.strip()[-1000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1]) if mode == "stages" else {}
    return result


LEVELS = ("high", "critical", "low")  # one new level per repeat, so the changed rule converts each time


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def measure(copies: int, full: bool, repeat: int, work: Path) -> dict[str, Any]:
    from synthetic import scaled_pack

    pack = work / f"pack-{copies}"
    notes: list[str] = []
    rules = scaled_pack(ROOT, pack, copies, notes)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=pack, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=pack, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "main"], cwd=pack, check=True)
    row: dict[str, Any] = {"copies": copies, "rules": rules, "notes": notes}
    if full and not notes:
        row["full"], row["full_summary"] = _run(pack)
    shutil.rmtree(pack / ".detpack-cache", ignore_errors=True)
    _child("warm", pack)
    times = []
    level = "medium"
    for index in range(repeat):
        _edit(pack / RULE, f"level: {level}", f"level: {LEVELS[index]}")
        level = LEVELS[index]
        wall, row["rule_summary"] = _run(pack, "--changed")
        times.append(wall)
    row["rule"] = _median(times)
    row["stages"] = _child("stages", pack)
    _edit(pack / FIXTURE, "note: ", "note: (edited) ")
    times = []
    for _ in range(repeat):
        wall, row["rule_fixture_summary"] = _run(pack, "--changed")
        times.append(wall)
    row["rule_fixture"] = _median(times)
    row["no_cache"] = _median([_run(pack, "--changed", cache=False)[0] for _ in range(repeat)])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", default="1,5,49", help="pack sizes, in copies of every rule")
    parser.add_argument("--full", type=int, default=1, help="also time a full run up to this many copies")
    parser.add_argument("--repeat", type=int, default=1, choices=(1, 2, 3), help="runs per figure (median)")
    parser.add_argument("--warm", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stages", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warm:
        warm(args.warm)
        return
    if args.stages:
        print(json.dumps(stages(args.stages)))
        return
    sizes = [int(c) for c in args.copies.split(",") if c]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"CPUs: {os.cpu_count()}; load average before: {load:.2f}")
    print(
        f"{'rules':>6} {'rule s':>7} {'rule+fixture s':>15} {'no cache s':>11} {'full s':>7}  "
        "where the `rule` run goes (s)"
    )
    with tempfile.TemporaryDirectory(prefix="detpack-loop-") as temp:
        for copies in sizes:
            row = measure(copies, copies <= args.full, args.repeat, Path(temp))
            parts = row["stages"]
            engines = row["rule"] - sum(parts.values())
            where = ", ".join(f"{k} {v:.2f}" for k, v in parts.items()) + f", engines+report {engines:.2f}"
            full = f"{row['full']:>7.1f}" if "full" in row else f"{'-':>7}"
            print(
                f"{row['rules']:>6} {row['rule']:>7.2f} {row['rule_fixture']:>15.2f} "
                f"{row['no_cache']:>11.2f} {full}  {where}"
            )
            print(f"{'':>6} rule: {row['rule_summary']}")
            print(f"{'':>6} rule+fixture: {row['rule_fixture_summary']}")
            for note in row["notes"]:
                print(f"{'':>6} note: {note}")


if __name__ == "__main__":
    main()
