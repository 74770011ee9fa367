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

import contextlib
import hashlib
import os
import sqlite3
import sys
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import detpack
from detpack import convert
from detpack.convert import Query, Target
from detpack.findings import Finding, relpath

CACHE_DIR = ".detpack-cache"
CACHE_FILE = "convert.sqlite3"
CACHE_VARIABLE = "DETPACK_CACHE"
FORMAT = 1
MAX_ENTRIES = 200_000  # past this the cache starts again empty (50 packs of 1,000 rules x 4 targets)
SQLITE_TIMEOUT = 10.0  # seconds to wait for another detpack process writing the same cache
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
    for name in DISTRIBUTIONS:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"\0{name}={version}".encode())
    return digest.hexdigest()


class ConvertCache:
    """The entries in one SQLite file. Lookups and stores are batched: one query, one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problem = ""  # why the cache was not used or written, and what that meant for the run
        self.hits = 0
        self.stored = 0

    @classmethod
    def for_pack(cls, root: Path) -> ConvertCache | None:
        """The pack's cache, or None when DETPACK_CACHE is 0, off, false or no."""
        if os.environ.get(CACHE_VARIABLE, "").strip().lower() in ("0", "off", "false", "no"):
            return None
        return cls(root / CACHE_DIR / CACHE_FILE)

    @staticmethod
    def key(target: str, pipeline_fingerprint: str, data: Any) -> str:
        digest = hashlib.sha256(f"{tool_fingerprint()}\0{target}\0{pipeline_fingerprint}\0".encode())
        digest.update(repr(data).encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def _shown(self) -> str:
        """The cache file as the user can find it: relative to the current folder when inside it."""
        return relpath(self.path, Path.cwd())

    def _fix(self) -> str:
        folder = relpath(self.path.parent, Path.cwd())
        return (
            f" (fix: delete {folder}/ or make it writable, or set {CACHE_VARIABLE}=0 to turn the cache off)"
        )

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ignore = self.path.parent / ".gitignore"  # also outside this repository's own .gitignore
        if not ignore.exists():
            ignore.write_text("*\n", encoding="utf-8")
        connection = sqlite3.connect(self.path, timeout=SQLITE_TIMEOUT)
        connection.execute(
            "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, kind TEXT NOT NULL, "
            "text TEXT NOT NULL, fix TEXT NOT NULL)"
        )
        return connection

    def lookup(self, keys: set[str]) -> dict[str, Entry]:
        if not keys:
            return {}
        found: dict[str, Entry] = {}
        try:
            with contextlib.closing(self._connect()) as connection:
                connection.execute("CREATE TEMP TABLE wanted (key TEXT PRIMARY KEY)")
                connection.executemany("INSERT INTO wanted VALUES (?)", [(k,) for k in keys])
                rows = connection.execute(
                    "SELECT e.key, e.kind, e.text, e.fix FROM entries e JOIN wanted w ON e.key = w.key"
                )
                for key, kind, text, fix in rows:
                    if kind in (QUERY, FINDING):
                        found[key] = Entry(kind, text, fix)
        except (OSError, sqlite3.Error) as exc:
            self.problem = (
                f"conversion cache {self._shown()} not used: {exc}; every rule was converted{self._fix()}"
            )
            return {}
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
            with contextlib.closing(self._connect()) as connection, connection:
                (count,) = connection.execute("SELECT count(*) FROM entries").fetchone()
                if count + len(rows) > MAX_ENTRIES:
                    connection.execute("DELETE FROM entries")
                connection.executemany("INSERT OR IGNORE INTO entries VALUES (?, ?, ?, ?)", rows)
        except (OSError, sqlite3.Error) as exc:
            self.problem = (
                f"conversion cache {self._shown()} not written: {exc}; "
                f"the rules converted in this run will be converted again next time{self._fix()}"
            )
            return
        self.stored += len(rows)
