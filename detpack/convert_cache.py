"""A cache of converted queries, so that `detpack test` converts again only the rules that changed.

An entry is one rule converted to one target: the query, or the message of the finding that says why it
cannot be converted. Its key is the sha256 of everything the conversion reads:

- the rule as parsed (the ``repr`` of its data: keys in file order, so two rules that differ only in the
  order of their detection items, which pySigma keeps in the query, never share an entry);
- the target, and the pipeline family's files as they were read (names and bytes);
- the tools: this cache's format, Python's version, detpack's version and the source of
  ``detpack/convert.py`` (the pack's backend fixes live there), and the versions of pySigma and its
  Splunk and Elasticsearch backends.

So the cache can only return what converting again would: a changed rule, pipeline, backend fix or
installed version is a different key. Entries are never updated, only added; where the rule is and on
which line its detection starts are not part of an entry (a finding gets the current ones).

It lives in ``<pack>/.detpack-cache/convert.sqlite3`` (ignored by git). ``DETPACK_CACHE=0`` turns it off;
a cache that cannot be opened, read or written is left alone and everything converts (``problem`` says
why, and `detpack test` prints it as a note).
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import detpack
from detpack import convert
from detpack.cache_file import CACHE_DIR, CacheFile, cache_disabled, installed_versions
from detpack.convert import Query, Target
from detpack.findings import Finding

CACHE_FILE = "convert.sqlite3"
FORMAT = 1
MAX_ENTRIES = 200_000  # past this the cache starts again empty (50 packs of 1,000 rules x 4 targets)
DISTRIBUTIONS = ("pysigma", "pysigma-backend-splunk", "pysigma-backend-elasticsearch")
QUERY, FINDING = "query", "finding"


@dataclass(frozen=True)
class Entry:
    kind: str  # QUERY or FINDING
    text: str  # the query, or the finding's message
    fix: str = ""

    def result(self, path: str, name: str, line: int, target: Target) -> Query | Finding:
        if self.kind == QUERY:
            return Query(name, target.name, self.text)
        return Finding(path, line, "convert", self.text, self.fix)


@cache
def tool_fingerprint() -> str:
    """The versions and source that conversion depends on besides the rule, target and pipeline."""
    digest = hashlib.sha256(f"detpack-convert-cache {FORMAT}\0{sys.version_info[:3]}\0".encode())
    digest.update(f"{detpack.__version__}\0".encode())
    digest.update(Path(convert.__file__).read_bytes())
    digest.update(f"\0{installed_versions(DISTRIBUTIONS)}".encode())
    return digest.hexdigest()


class ConvertCache:
    """The entries in one SQLite file. Lookups and stores are batched: one query, one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = CacheFile(path, ("kind", "text", "fix"), MAX_ENTRIES)
        self.problem = ""  # why the cache was not used or written, and what that meant for the run
        self.hits = 0
        self.stored = 0

    @classmethod
    def for_pack(cls, root: Path) -> ConvertCache | None:
        """The pack's cache, or None when DETPACK_CACHE is 0, off, false or no."""
        if cache_disabled():
            return None
        return cls(root / CACHE_DIR / CACHE_FILE)

    @staticmethod
    def key(target: str, pipeline_fingerprint: str, data: Any) -> str:
        digest = hashlib.sha256(f"{tool_fingerprint()}\0{target}\0{pipeline_fingerprint}\0".encode())
        digest.update(repr(data).encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def lookup(self, keys: set[str]) -> dict[str, Entry]:
        if not keys:
            return {}
        try:
            rows = self.file.read(keys)
        except (OSError, sqlite3.Error) as exc:
            self.problem = (
                f"conversion cache {self.file.shown()} not used: {exc}; every rule was converted"
                f"{self.file.fix()}"
            )
            return {}
        found = {
            key: Entry(kind, text, fix) for key, (kind, text, fix) in rows.items() if kind in (QUERY, FINDING)
        }
        self.hits += len(found)
        return found

    def store(self, results: dict[str, Query | Finding]) -> None:
        if not results or self.problem:
            return
        rows = [
            (key, QUERY, r.text, "") if isinstance(r, Query) else (key, FINDING, r.message, r.fix)
            for key, r in results.items()
        ]
        try:
            self.file.write(rows)
        except (OSError, sqlite3.Error) as exc:
            self.problem = (
                f"conversion cache {self.file.shown()} not written: {exc}; "
                f"the rules converted in this run will be converted again next time{self.file.fix()}"
            )
            return
        self.stored += len(rows)
