"""One SQLite file of cached results under ``<pack>/.detpack-cache/``, as the conversion cache
(detpack/convert_cache.py) and the result cache (detpack/result_cache.py) keep them: where it lives, how
it is opened, batched reads and writes, and how to tell the user about a cache that cannot be used.

What an entry holds and how its key is made is each cache's business; here an entry is a key and a few
text columns. Reads and writes raise OSError or sqlite3.Error: the caches turn those into a `problem`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

from detpack.findings import relpath

CACHE_DIR = ".detpack-cache"
CACHE_VARIABLE = "DETPACK_CACHE"
SQLITE_TIMEOUT = 10.0  # seconds to wait for another detpack process writing the same file


def installed_versions(distributions: Iterable[str]) -> str:
    """`name=version` of each distribution ("absent" when not installed), for a cache's key."""
    parts = []
    for name in distributions:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "absent"
        parts.append(f"{name}={version}")
    return "\0".join(parts)


def cache_disabled() -> bool:
    """DETPACK_CACHE is 0, off, false or no."""
    return os.environ.get(CACHE_VARIABLE, "").strip().lower() in ("0", "off", "false", "no")


class CacheFile:
    """Table `entries` (key, then `columns`, all text) of one SQLite file; past `max_entries` a write
    starts the table again empty."""

    def __init__(self, path: Path, columns: tuple[str, ...], max_entries: int) -> None:
        self.path = path
        self.columns = columns
        self.max_entries = max_entries

    def shown(self) -> str:
        """The file as the user can find it: relative to the current folder when inside it."""
        return relpath(self.path, Path.cwd())

    def fix(self) -> str:
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
        columns = "".join(f", {name} TEXT NOT NULL" for name in self.columns)  # the callers' constants
        connection.execute(f"CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY{columns})")
        return connection

    def read(self, keys: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The entries of these keys that the file holds: key -> the other columns."""
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        columns = ", ".join(f"e.{name}" for name in self.columns)
        with contextlib.closing(self._connect()) as connection:
            connection.execute("CREATE TEMP TABLE wanted (key TEXT PRIMARY KEY)")
            connection.executemany("INSERT INTO wanted VALUES (?)", [(k,) for k in wanted])
            rows = connection.execute(
                f"SELECT e.key, {columns} FROM entries e JOIN wanted w ON e.key = w.key"
            ).fetchall()
        return {str(row[0]): tuple(row[1:]) for row in rows}

    def write(self, rows: Sequence[tuple[str, ...]]) -> None:
        """Add entries (key first) in one transaction; an entry already there is kept as it is."""
        if not rows:
            return
        marks = ", ".join("?" * (1 + len(self.columns)))
        with contextlib.closing(self._connect()) as connection, connection:
            (count,) = connection.execute("SELECT count(*) FROM entries").fetchone()
            if count + len(rows) > self.max_entries:
                connection.execute("DELETE FROM entries")
            connection.executemany(f"INSERT OR IGNORE INTO entries VALUES ({marks})", rows)
