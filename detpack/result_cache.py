"""A cache of what detpack computes from one content file, so that a run reads again only what changed.

Loading and checking every file of a pack of 300 rules takes longer than running the engines over the
fixtures (benchmarks/README.md): `detpack test --changed` after one changed rule would spend most of its
time re-reading files nobody touched. Two things are cached per file, as JSON:

- ``ads``: an ADS document as parsed (Markdown structure and front matter), see detpack/content/ads.py;
- ``rule-checks``: the findings of every check of a detection rule that reads that rule alone (and
  whether pySigma parsed it), see detpack/validate/rules.py;
- ``ads-checks``: the findings of the checks of an ADS document that read it alone (its JSON Schema,
  title and file name), see detpack/validate/ads.py;
- ``yaml``: a rule file as parsed (data and the line of every key), see detpack/content/yamlfile.py;
- ``expect-schema``: the JSON Schema findings of a fixture's expectation file, see
  detpack/validate/fixtures.py.

Checks across files (unique ids and titles, which ADS owns a rule, the fixtures an ADS names, coverage,
correlations) always run.

A key is the sha256 of the kind, the file's path and bytes, and the context: this format, Python's
version, every file of the detpack package (code and its ATT&CK and field data), the pack's schemas/,
datasources/ and pipelines/, and the versions of the libraries that parse and check. So a hit can only
return what computing again would; any change to anything but the file itself is a miss for every file.
Nothing is deserialised but JSON. Entries are only added; past MAX_ENTRIES the cache starts again.

It lives in ``<pack>/.detpack-cache/results.sqlite3`` next to the conversion cache (ignored by git);
``DETPACK_CACHE=0`` turns both off. A cache that cannot be used is reported once (`problem`) and the run
computes everything.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from detpack.cache_file import CACHE_DIR, CacheFile, cache_disabled, installed_versions

CACHE_FILE = "results.sqlite3"
FORMAT = 1
MAX_ENTRIES = 100_000  # past this the cache starts again empty
DISTRIBUTIONS = (
    "pysigma",
    "pyyaml",
    "jsonschema",
    "referencing",
    "markdown-it-py",
    "mdit-py-plugins",
)
PACKAGE = Path(__file__).resolve().parent
PACK_INPUTS = ("schemas", "datasources", "pipelines")


def _tree_digest(digest: Any, root: Path, label: str) -> None:
    if not root.is_dir():
        digest.update(f"\0{label}: absent".encode())
        return
    for file in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(f"\0{label}/{file.relative_to(root).as_posix()}\0".encode())
        digest.update(file.read_bytes())


@cache
def _tool_digest() -> bytes:
    digest = hashlib.sha256(f"detpack-result-cache {FORMAT}\0{sys.version_info[:3]}".encode())
    _tree_digest(digest, PACKAGE, "detpack")
    digest.update(f"\0{installed_versions(DISTRIBUTIONS)}".encode())
    return digest.digest()


def context_fingerprint(root: Path) -> str:
    """Everything but the file itself that a cached result depends on."""
    digest = hashlib.sha256(_tool_digest())
    for name in PACK_INPUTS:
        _tree_digest(digest, root / name, name)
    return digest.hexdigest()


class ResultCache:
    """JSON results by key in one SQLite file; reads and writes are batched."""

    def __init__(self, path: Path, context: str) -> None:
        self.path = path
        self.file = CacheFile(path, ("value",), MAX_ENTRIES)
        self.context = context
        self.problem = ""  # why the cache was not used (the run then computes everything)
        self.hits = 0
        self._pending: list[tuple[str, str]] = []

    @classmethod
    def for_pack(cls, root: Path) -> ResultCache | None:
        """The pack's cache, or None when DETPACK_CACHE is 0, off, false or no."""
        if cache_disabled():
            return None
        return cls(root / CACHE_DIR / CACHE_FILE, context_fingerprint(root))

    def key(self, kind: str, path: str, content: str | bytes) -> str:
        digest = hashlib.sha256(f"{self.context}\0{kind}\0{path}\0".encode("utf-8", "surrogatepass"))
        digest.update(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def lookup(self, keys: Iterable[str]) -> dict[str, Any]:
        if self.problem:
            return {}
        try:
            found = {key: json.loads(value) for key, (value,) in self.file.read(keys).items()}
        except (OSError, sqlite3.Error, ValueError) as exc:
            self.problem = (
                f"result cache {self.file.shown()} not used: {exc}; every file was read and checked"
                f"{self.file.fix()}"
            )
            return {}
        self.hits += len(found)
        return found

    def add(self, key: str, value: Any) -> None:
        """Remember a result; `flush` writes them all in one transaction."""
        self._pending.append((key, json.dumps(value, ensure_ascii=False, separators=(",", ":"))))

    def flush(self) -> None:
        rows, self._pending = self._pending, []
        if not rows or self.problem:
            return
        try:
            self.file.write(rows)
        except (OSError, sqlite3.Error) as exc:
            self.problem = f"result cache {self.file.shown()} not written: {exc}{self.file.fix()}"


# --- YAML data as JSON, exactly: mapping keys keep their types and order --------------------------------


def encode_data(value: Any) -> Any:
    """YAML data (mappings with str/int/float/bool keys, lists, scalars) as JSON that decode_data restores
    exactly: a mapping becomes {"m": [[key, value], ...]}, the only JSON object in the encoding."""
    if isinstance(value, Mapping):
        return {"m": [[key, encode_data(item)] for key, item in value.items()]}
    if isinstance(value, list):
        return [encode_data(item) for item in value]
    return value


def decode_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: decode_data(item) for key, item in value["m"]}
    if isinstance(value, list):
        return [decode_data(item) for item in value]
    return value
