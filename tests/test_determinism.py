"""Determinism: the same pack gives a byte-identical dist/ whatever the environment and the file order.

Two copies of the pack are made, one creating its files in sorted order and one in reverse order (so that
directory listings differ), and each is built by `detpack build` in its own process with a different
PYTHONHASHSEED, TZ and locale. Every file of the two dist/ folders must be byte-identical.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PACK_PARTS, REPO_ROOT
from tests.test_malformed import BASE

ENVIRONMENTS = [
    {"PYTHONHASHSEED": "0", "TZ": "UTC", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
    {"PYTHONHASHSEED": "4242", "TZ": "Pacific/Kiritimati", "LC_ALL": "POSIX", "LANG": "POSIX"},
]


def _files(root: Path, parts: tuple[str, ...]) -> list[Path]:
    found: list[Path] = []
    for part in parts:
        source = root / part
        found += sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    return found


def _copy(source_root: Path, files: list[Path], destination: Path, reverse: bool) -> None:
    for file in reversed(files) if reverse else files:
        target = destination / file.relative_to(source_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _build_twice(tmp_path: Path, sources: list[tuple[Path, list[Path]]]) -> list[dict[str, bytes]]:
    processes = []
    for index, (environment, reverse) in enumerate(zip(ENVIRONMENTS, (False, True), strict=True)):
        pack = tmp_path / f"pack{index}"
        for source_root, files in sources:
            _copy(source_root, files, pack, reverse)
        env = {**os.environ, **environment, "PYTHONPATH": str(REPO_ROOT)}
        command = [
            sys.executable,
            "-m",
            "detpack.cli",
            "build",
            "--root",
            str(pack),
            "--output",
            str(pack / "out"),
        ]
        processes.append(
            (
                pack,
                subprocess.Popen(
                    command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                ),
            )
        )
    trees = []
    for pack, process in processes:
        output, _ = process.communicate(timeout=900)
        assert process.returncode == 0, output
        trees.append(_tree(pack / "out"))
    return trees


def _assert_identical(first: dict[str, bytes], second: dict[str, bytes]) -> None:
    assert sorted(first) == sorted(second)
    different = [name for name in first if first[name] != second[name]]
    assert different == [], f"differ between the two builds: {different}"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs subprocesses with their own environment")
def test_corpus_kit_builds_byte_identically(tmp_path: Path) -> None:
    """The small kit of tests/malformed/base with the pack's data sources, schemas and pipelines."""
    machinery = tuple(
        p for p in ("datasources", "schemas", "pipelines", "coverage") if (REPO_ROOT / p).exists()
    )
    sources = [(REPO_ROOT, _files(REPO_ROOT, machinery)), (BASE, _files(BASE, ("rules", "ads", "tests")))]
    first, second = _build_twice(tmp_path, sources)
    assert any(name.endswith("savedsearches.conf") or name.endswith(".tgz") for name in first), sorted(first)
    _assert_identical(first, second)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs subprocesses with their own environment")
def test_the_pack_builds_byte_identically(tmp_path: Path) -> None:
    first, second = _build_twice(tmp_path, [(REPO_ROOT, _files(REPO_ROOT, PACK_PARTS))])
    assert "manifest.json" in first
    _assert_identical(first, second)
