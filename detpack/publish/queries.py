"""Plain query files, one per rule and target: dist/queries/<target>/<rule><ext>."""

from __future__ import annotations

from pathlib import Path

from detpack.convert import TARGETS, Query


def write_queries(queries: list[Query], out: Path) -> list[Path]:
    written = []
    for query in sorted(queries, key=lambda q: (q.target, q.rule)):
        target = TARGETS[query.target]
        path = out / "queries" / target.name / f"{query.rule}{target.extension}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(query.text + "\n", encoding="utf-8", newline="\n")
        written.append(path)
    return written
