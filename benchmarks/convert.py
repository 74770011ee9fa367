"""Conversion benchmark: a folder of Sigma rules to SPL, Lucene, EQL and ES|QL, by detpack and by sigma-cli.

    python benchmarks/convert.py [FOLDER] [--rules 3000] [--targets splunk,lucene,eql,esql] [--jobs N]
                                 [--repeat N] [--no-sigma-cli]

Without FOLDER, a synthetic corpus of --rules rules shaped like the pack's own is generated in a temporary
folder (benchmarks/synthetic.py). detpack loads every *.yml file under FOLDER once, with its own loader
(libyaml's C parser and every safety check of detpack/content/yamlfile.py), and converts each rule to
every target through the pack's pipelines, in worker processes (DETPACK_JOBS, default: every CPU); no
conversion cache is used. sigma-cli (.venv-bench/bin/sigma, see benchmarks/README.md) runs once per
target on the same folder: `sigma convert -t TARGET -p pipelines/<splunk|ecs> -s FOLDER`. Each tool runs
in a child process of its own, so its wall time and peak memory are its own (peak memory is the largest
resident set of one process: detpack's main process and its largest worker are shown apart).

Rules detpack cannot load or convert are counted and listed; sigma-cli's exit status is shown per target.
With --repeat N, each tool (and each sigma-cli target) runs N times and the median run is shown.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_FAMILIES = {"splunk": "splunk", "lucene": "ecs", "eql": "ecs", "esql": "ecs"}
SIGMA = ROOT / ".venv-bench" / "bin" / "sigma"
INSTALL = (
    "python3 -m venv .venv-bench && .venv-bench/bin/pip install -r benchmarks/requirements-sigma-cli.txt"
)
SHOWN_PROBLEMS = 20  # problems listed in full; the rest are counted


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def detpack_child(folder: Path, targets: list[str], jobs: int | None) -> dict[str, Any]:
    """Runs in its own process: load the folder once, convert to every target; timings and findings."""
    started = time.perf_counter()
    from detpack.content.datasources import load_datasources
    from detpack.content.pack import Pack
    from detpack.content.rules import RuleFile, link_correlations
    from detpack.content.yamlfile import load_yaml
    from detpack.convert import conversion_jobs, convert_pack
    from detpack.findings import ContentError, Finding, relpath
    from detpack.offline import configure_offline

    configure_offline()
    imported = time.perf_counter()
    files = sorted(p for p in folder.rglob("*.yml") if p.is_file())
    rules: list[RuleFile] = []
    problems: list[Finding] = []
    for file in files:
        shown = relpath(file, folder)
        try:
            doc = load_yaml(file, shown)
        except ContentError as exc:
            problems.extend(exc.findings)
            continue
        if not isinstance(doc.data, dict):
            problems.append(Finding(shown, 1, "rule-file", "not one YAML mapping (one rule)", ""))
            continue
        rules.append(RuleFile(shown, doc))
    link_correlations(rules)
    loaded = time.perf_counter()
    pack = Pack(ROOT, load_datasources(ROOT), rules, [], [])  # the pack's pipelines and data sources
    queries, findings = convert_pack(pack, targets=targets, jobs=jobs)
    converted = time.perf_counter()
    per_target = {t: sum(1 for q in queries if q.target == t) for t in targets}
    return {
        "files": len(files),
        "loaded": len(rules),
        "jobs": conversion_jobs() if jobs is None else jobs,
        "import_s": imported - started,
        "load_s": loaded - imported,
        "convert_s": converted - loaded,
        "queries": per_target,
        "not_loaded": [f.render() for f in problems],
        "not_converted": [f.render() for f in findings],
        "main_peak_mib": _mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
        "worker_peak_mib": _mib(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss),
    }


def _timed(command: list[str], output: Path) -> tuple[float, float, float, int, str]:
    """Run command with stdout to output: (wall seconds, CPU seconds of the process and the children it
    waited for, peak MiB of the largest of them, exit status, stderr)."""
    with output.open("wb") as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT)
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, _mib(usage.ru_maxrss), process.returncode, stderr


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda run: float(run["wall_s"]))[len(runs) // 2]


def run_detpack(folder: Path, targets: list[str], jobs: int | None, work: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, str(folder), "--targets", ",".join(targets), "--child"]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    wall, cpu, peak, status, stderr = _timed(command, work / "detpack.json")
    if status != 0:
        raise SystemExit(f"detpack failed (exit {status}):\n{stderr[-2000:]}")
    result: dict[str, Any] = json.loads((work / "detpack.json").read_text(encoding="utf-8"))
    result["wall_s"] = wall
    result["cpu_s"] = cpu
    result["process_peak_mib"] = peak
    return result


def run_sigma_cli(sigma: Path, folder: Path, target: str, work: Path) -> dict[str, Any]:
    pipelines = ROOT / "pipelines" / TARGET_FAMILIES[target]
    output = work / f"sigma-{target}.txt"
    command = [str(sigma), "convert", "-t", target, "-p", str(pipelines), "-s", str(folder), "-o", "-"]
    wall, cpu, peak, status, stderr = _timed(command, output)
    last = stderr.strip().splitlines()[-1][:300] if stderr.strip() else ""
    return {"wall_s": wall, "cpu_s": cpu, "peak_mib": peak, "status": status, "error": last if status else ""}


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "-"


def _list(title: str, items: list[str]) -> None:
    print(f"{title}: {len(items)}")
    for item in items[:SHOWN_PROBLEMS]:
        print(f"  {item}")
    if len(items) > SHOWN_PROBLEMS:
        print(f"  ... and {len(items) - SHOWN_PROBLEMS} more")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", nargs="?", type=Path, help="Sigma rules (*.yml, recursively)")
    parser.add_argument("--rules", type=int, default=3000, help="size of the synthetic corpus")
    parser.add_argument("--targets", default=",".join(TARGET_FAMILIES))
    parser.add_argument("--jobs", type=int, default=None, help="detpack's worker processes")
    parser.add_argument("--sigma", type=Path, default=SIGMA, help="sigma-cli's `sigma` executable")
    parser.add_argument("--no-sigma-cli", action="store_true", help="measure detpack only")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the median run is shown")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    unknown = sorted(set(targets) - set(TARGET_FAMILIES))
    if unknown:
        parser.error(f"unknown target {', '.join(unknown)}: choose from {', '.join(TARGET_FAMILIES)}")
    if args.child:
        print(json.dumps(detpack_child(args.folder, targets, args.jobs)))
        return
    if not args.no_sigma_cli and not args.sigma.exists():
        parser.error(f"sigma-cli is not installed at {args.sigma}: run `{INSTALL}` (or pass --no-sigma-cli)")
    with tempfile.TemporaryDirectory(prefix="detpack-bench-") as temp:
        work = Path(temp)
        folder = args.folder
        if folder is None:
            from synthetic import rule_corpus

            folder = work / "corpus"
            rule_corpus(ROOT, folder, args.rules)
            label = f"synthetic corpus of {args.rules} rules shaped like the pack's (benchmarks/synthetic.py)"
        else:
            folder = folder.resolve()
            label = str(folder)
        _report(folder, label, targets, args, work)


def _report(folder: Path, label: str, targets: list[str], args: argparse.Namespace, work: Path) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"corpus: {label}")
    print(
        f"targets: {', '.join(targets)}; CPUs: {os.cpu_count()}; load average before: {load:.2f}; "
        f"median of {args.repeat} run(s) each"
    )
    detpack = _median_run([run_detpack(folder, targets, args.jobs, work) for _ in range(args.repeat)])
    rules = detpack["files"]
    print(f"{rules} rule files\n")
    print(f"{'tool':<10} {'target':<12} {'seconds':>8} {'CPU s':>7} {'rules/s':>8} {'peak MiB':>9}  notes")
    wall = detpack["wall_s"]
    print(
        f"{'detpack':<10} {'all ' + str(len(targets)):<12} {wall:>8.2f} {detpack['cpu_s']:>7.2f} "
        f"{_rate(rules, wall):>8} {detpack['main_peak_mib']:>9}  {detpack['jobs']} workers (largest "
        f"{detpack['worker_peak_mib']} MiB); start {detpack['import_s']:.2f} s, "
        f"load {detpack['load_s']:.2f} s, convert {detpack['convert_s']:.2f} s"
    )
    queries = ", ".join(f"{t} {n}" for t, n in detpack["queries"].items())
    print(f"{'':<10} {'':<12} {'':>8} {'':>7} {'':>8} {'':>9}  queries: {queries}")
    if args.no_sigma_cli:
        print()
    else:
        total = cpu = 0.0
        peaks = []
        failed = []
        for target in targets:
            row = _median_run([run_sigma_cli(args.sigma, folder, target, work) for _ in range(args.repeat)])
            total += row["wall_s"]
            cpu += row["cpu_s"]
            peaks.append(row["peak_mib"])
            if row["status"] != 0:
                failed.append(target)
            note = "exit 0" if row["status"] == 0 else f"FAILED exit {row['status']}: {row['error']}"
            print(
                f"{'sigma-cli':<10} {target:<12} {row['wall_s']:>8.2f} {row['cpu_s']:>7.2f} "
                f"{_rate(rules, row['wall_s']):>8} {row['peak_mib']:>9}  {note}"
            )
        print(
            f"{'sigma-cli':<10} {'all ' + str(len(targets)):<12} {total:>8.2f} {cpu:>7.2f} "
            f"{_rate(rules, total):>8} {max(peaks):>9}  one run per target, one after the other"
        )
        print(
            f"\nratio detpack / sigma-cli for all {len(targets)} targets: {wall / total:.3f} in time, "
            f"{detpack['cpu_s'] / cpu:.3f} in CPU"
        )
        if failed:
            print(
                f"(sigma-cli stopped at its first error for {', '.join(failed)}: its time there covers "
                "part of the corpus, which makes the ratio look worse for detpack than it is)"
            )
    print()
    _list("rules detpack could not load", detpack["not_loaded"])
    _list("rule x target conversions detpack could not do", detpack["not_converted"])


if __name__ == "__main__":
    main()
