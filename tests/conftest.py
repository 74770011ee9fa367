"""Shared fixtures: a throwaway copy of the pack to break, and a CLI runner."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from detpack.cli import main
from detpack.offline import block_network, configure_offline

REPO_ROOT = Path(__file__).resolve().parent.parent
PACK_PARTS = (
    "datasources",
    "schemas",
    "pipelines",
    "rules",
    "ads",
    "tests/fixtures",
    "tests/engine-differences.yml",
    "coverage",
)


@dataclass
class PackCopy:
    root: Path

    def path(self, relative: str) -> Path:
        return self.root / relative

    def read(self, relative: str) -> str:
        return self.path(relative).read_text(encoding="utf-8")

    def write(self, relative: str, text: str) -> None:
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def replace(self, relative: str, old: str, new: str) -> None:
        text = self.read(relative)
        assert old in text, f"{old!r} not in {relative}: the test no longer matches the content"
        self.write(relative, text.replace(old, new, 1))

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, [*args, "--root", str(self.root)], catch_exceptions=False)


def copy_pack(destination: Path) -> PackCopy:
    for part in PACK_PARTS:
        source, target = REPO_ROOT / part, destination / part
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    return PackCopy(destination)


@pytest.fixture
def pack_copy(tmp_path: Path) -> PackCopy:
    return copy_pack(tmp_path / "pack")


@pytest.fixture(autouse=True, scope="session")
def _suite_has_no_network() -> Iterator[None]:
    """The whole suite runs with sockets blocked: nothing in detpack may reach the network."""
    with block_network():
        yield


@pytest.fixture
def no_network() -> Iterator[None]:
    configure_offline()
    with block_network():
        yield
