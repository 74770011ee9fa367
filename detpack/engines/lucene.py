"""Lucene query strings with Elasticsearch semantics: real Apache Lucene 8, driven through JPype.

pysigma-backend-elasticsearch's LuceneBackend emits Elasticsearch `query_string` queries. This engine answers
which ECS documents such a query matches, the way Elasticsearch would, using Apache Lucene 8.8 from Debian
(`liblucene8-java`) for parsing, indexing and matching: term, phrase, wildcard, regexp (Lucene's RegExp),
point-range and IP-prefix queries are evaluated by Lucene itself.

Lucene's classic query parser alone is not Elasticsearch: Elasticsearch's `query_string` parser is a subclass
of it that knows the mapping. `java/EsLikeQueryParser.java` is such a subclass, written for detpack from
Elasticsearch's documentation; `java/EsIndex.java` indexes each document the way Elasticsearch indexes it for
the field types given; `java/EsMapping.java` resolves field names. What they reproduce, and where from:

* Query string syntax, `_exists_:field`, `field:>=N` / `>` / `<` / `<=`, `[a TO b]` / `{a TO b}` with `*` open
  ends, `field:*` rewritten to an exists query (so it matches an empty string but not a missing or null
  field), regular expressions between slashes, reserved characters escaped with a backslash, `/` reserved:
  https://www.elastic.co/docs/reference/query-languages/query-dsl/query-dsl-query-string-query#query-string-syntax
* A boolean group of only negative clauses gets a match-all clause, so `NOT a:b` and `x AND (NOT a:b)` work
  (classic Lucene would match nothing); the operators do not honour the usual precedence (`a OR NOT b` is
  `a AND NOT b`): same page, "Boolean operators".
* `exists` is true for any non-null value, including "" and `[null, "x"]`, false for null, [] and [null];
  on an object it is true when any sub-field exists:
  https://www.elastic.co/docs/reference/query-languages/query-dsl/query-dsl-exists-query
* keyword / constant_keyword / wildcard: the whole value, exact and case-sensitive:
  https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/keyword
* text / match_only_text: the `standard` analyzer (Unicode word tokens, lower-cased, no stop words) at index
  and query time; a multi-valued text field has a position gap of 100 between values:
  https://www.elastic.co/docs/reference/text-analysis/analysis-standard-analyzer,
  https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/position-increment-gap
  Wildcard and prefix patterns on text fields are normalised (lower-cased) and match single tokens; regular
  expressions are not normalised (https://www.elastic.co/docs/reference/query-languages/query-dsl/regexp-syntax:
  the whole token must match, no `^`/`$` anchors).
* Numbers (long, integer, short, byte, unsigned_long; float, half_float, double, scaled_float) are points: a
  term is an exact numeric match, ranges compare numerically, strings are coerced at index time and a decimal
  is truncated for integer types: https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/number
* ip: exact addresses and CIDR blocks (`ip:10.0.0.0\\/8`, IPv6 with `\\:`), ranges:
  https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/ip
* boolean: `true` / `false` ("" is false): https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/boolean
* date: strict_date_optional_time or epoch_millis; a date without time covers the whole day (no date math):
  https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/date
* flattened: every leaf is a keyword, searchable on the root field and on `root.key`; ranges on it compare
  strings: https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/flattened. On a key (read
  in Elasticsearch's FlattenedFieldMapper.KeyedFlattenedFieldType): terms, prefixes and ranges with both
  bounds work; regexp and fuzzy queries and open-ended ranges are rejected; a query_string wildcard is run
  against the keyed terms `key\0value` of every key without the key prefix, so `labels.a:*x*` matches an "x"
  under any key and `labels.a:x?y` never matches (https://github.com/elastic/elasticsearch/pull/138427).
* Arrays: one indexed value per element, a query matches when any value does; arrays of objects are
  flattened per leaf (`a.b` holds every element's `b`): https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/array
* Unfielded terms search every field (`index.query.default_field` is `*`), leniently: fields whose type
  cannot take the value are left out. Wildcards, prefixes and regexps on numbers, ip, boolean and date
  fields are errors, as in Elasticsearch ("Can only use wildcard queries on keyword, text and wildcard
  fields - not on [x] which is of type [long]").

Field types come from the caller as `{dotted name: Elasticsearch type}`. A name with `*` is a pattern (a
dynamic template such as `kubernetes.audit.annotations.*: text`); `a.b.c` under a leaf field `a.b` is a
multi-field indexed from `a.b`'s values (ECS `process.command_line.text`). An `object` (named `a.b` or
`a.b.*`) is open, as in detpack.ingest.fields: its sub-fields are mapped when documents bring them (by their
JSON kind: string keyword, integer long, decimal float, bool boolean); `object(<type>)` (an integration's
`object_type`) gives every sub-field that type. Fields in the documents but in no open object are mapped
dynamically the same way and are searched by unfielded terms.

A query naming a field that is not in the mapping raises `LuceneUnknownFieldError` (Elasticsearch would
silently match nothing), and so does a value query on an object field or any query on (a field inside) a
`nested` field, which `query_string` never searches. A query Elasticsearch would reject for the mapping raises
`LuceneQueryError`; a document it would reject (an object where the mapping has a leaf) raises
`LuceneDocumentError`. A value a numeric, boolean, date or ip field cannot parse (`"10%"` in a long field) is
left out and its field listed in the `_ignored` metadata field, as `index.mapping.ignore_malformed: true`
does, which Elasticsearch sets for `logs-*-*` data streams
(https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/ignore-malformed,
https://github.com/elastic/elasticsearch/issues/95224); `LuceneEngine(ignore_malformed=False)` rejects them.

Not emulated: fuzzy `~` distances (Lucene's default 2, not Elasticsearch's AUTO), date math, `ignore_above`
(ECS sets 1024 on keywords), normalizers, `constant_keyword` values taken from the mapping, the limit on
how many fields a `*` query may expand to, `analyze_wildcard`, scoring; `dynamic: false` (undeclared fields
are indexed here and found by unfielded terms, Elasticsearch would not index them; naming one is an error
either way).

Field names are written as Lucene's classic grammar wants them: `/` cannot be part of a term (it opens a
regular expression), so `kubernetes.audit.annotations.authorization_k8s_io/decision` must be written with
`\\/`; unescaped, the query is a syntax error or, when a later `/` closes the "regular expression", silently
a different query. pysigma-backend-elasticsearch escapes only whitespace and `*` in field names.

The Java sources (`java/*.java`) are compiled at first use with `javac --release 11` into
`$DETPACK_JAVA_CACHE`, else `$XDG_CACHE_HOME/detpack` or `~/.cache/detpack`, else the temporary directory, in
a folder named by the sha256 of the sources and the Lucene jars; the jars come from /usr/share/java (or
`$DETPACK_LUCENE_JAR_DIR`). The JVM starts once per process (JPype cannot restart it) and the classes are
loaded through their own URLClassLoader, so it also works when something else started the JVM.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "FIELD_TYPES",
    "INSTALL_HINT",
    "LuceneDocumentError",
    "LuceneEngine",
    "LuceneQueryError",
    "LuceneSyntaxError",
    "LuceneUnavailableError",
    "LuceneUnknownFieldError",
    "compile_java",
    "find_javac",
    "find_lucene_jars",
    "flatten_document",
]

JAVA_SOURCES = Path(__file__).with_name("java")
LUCENE_JAR_DIR = Path("/usr/share/java")
LUCENE_JARS = ("lucene-core", "lucene-queryparser", "lucene-misc", "lucene-analyzers-common")
INSTALL_HINT = (
    "install them with: apt-get install -y --no-install-recommends liblucene8-java openjdk-17-jdk-headless"
    " && pip install jpype1==1.7.1"
)
JAVA_RELEASE = "11"

#: The Elasticsearch field types the engine indexes (`geo_point`-like types only record existence).
FIELD_TYPES = frozenset(
    {
        "keyword", "constant_keyword", "wildcard", "version",
        "text", "match_only_text",
        "long", "integer", "short", "byte", "unsigned_long",
        "float", "half_float", "double", "scaled_float",
        "ip", "boolean", "date", "date_nanos", "flattened", "object", "nested",
        "geo_point", "geo_shape", "binary", "histogram", "dense_vector",
    }
)  # fmt: skip


def _known_type(es_type: str) -> bool:
    return es_type in FIELD_TYPES or (es_type.startswith("object(") and es_type.endswith(")"))


class LuceneSyntaxError(ValueError):
    """Lucene's query parser rejects the query; the message is Lucene's."""


class LuceneUnknownFieldError(ValueError):
    """The query names a field the mapping does not have (or one query_string cannot search)."""

    def __init__(self, field: str, message: str | None = None) -> None:
        super().__init__(message or f"field [{field}] is not in the mapping")
        self.field = field


class LuceneQueryError(ValueError):
    """Elasticsearch would reject the query for this mapping (for example a wildcard on a long field)."""


class LuceneDocumentError(ValueError):
    """Elasticsearch would reject a document for this mapping (for example "abc" in a long field)."""


class LuceneUnavailableError(RuntimeError):
    """Java, javac, the Lucene jars or JPype are missing."""


# ------------------------------------------------------------------------------------------- Java setup


def find_lucene_jars(directory: Path | None = None) -> list[Path]:
    """The Lucene 8 jars the engine needs, from Debian's liblucene8-java (or $DETPACK_LUCENE_JAR_DIR)."""
    if directory is None:
        directory = Path(os.environ.get("DETPACK_LUCENE_JAR_DIR", str(LUCENE_JAR_DIR)))
    jars = []
    for name in LUCENE_JARS:
        candidates = sorted(directory.glob(f"{name}-8.*.jar")) or [
            p for p in [directory / f"{name}.jar"] if p.exists()
        ]
        if not candidates:
            raise LuceneUnavailableError(
                f"Lucene 8 jar {name}-8.*.jar not found in {directory}: the Lucene engine needs Apache"
                f" Lucene 8 from Debian's liblucene8-java; {INSTALL_HINT}"
            )
        jars.append(candidates[-1])
    return jars


def find_javac() -> Path:
    """javac from $JAVA_HOME or the PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "javac").exists():
        return Path(java_home) / "bin" / "javac"
    found = shutil.which("javac")
    if found is None:
        raise LuceneUnavailableError(
            "javac not found (the Lucene engine compiles its Java query parser at first use): install a JDK"
            f" (Debian package openjdk-17-jdk-headless); {INSTALL_HINT}"
        )
    return Path(found)


def _cache_root() -> Path:
    configured = os.environ.get("DETPACK_JAVA_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "detpack"


def compile_java(
    sources: Sequence[Path], jars: Sequence[Path], javac: Path, cache_root: Path | None = None
) -> Path:
    """Compile the sources once into `<cache>/lucene-java-<sha256>` and return that class directory.

    The key covers the sources, the jar names and sizes and the target release, so an edited source or another
    Lucene build compiles afresh. Concurrent processes each build in a private directory and rename it into
    place; the loser of the race discards its copy.
    """
    digest = hashlib.sha256(f"release={JAVA_RELEASE}\n".encode())
    for source in sorted(sources):
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    for jar in jars:
        digest.update(f"{jar.name}:{jar.stat().st_size}\n".encode())
    key = digest.hexdigest()
    roots = [cache_root] if cache_root is not None else [_cache_root()]
    roots.append(Path(tempfile.gettempdir()) / f"detpack-java-{os.getuid() if hasattr(os, 'getuid') else 0}")
    for root in roots:
        target = root / f"lucene-java-{key[:24]}"
        if (target / "OK").exists():
            return target
        try:
            root.mkdir(parents=True, exist_ok=True)
            build = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        except OSError:
            continue  # not writable: try the next root
        result = subprocess.run(
            [str(javac), "-encoding", "UTF-8", "--release", JAVA_RELEASE, "-nowarn",
             "-cp", os.pathsep.join(str(j) for j in jars), "-d", str(build), *(str(s) for s in sources)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            shutil.rmtree(build, ignore_errors=True)
            raise LuceneUnavailableError(f"javac failed on {JAVA_SOURCES}:\n{result.stderr}{result.stdout}")
        (build / "OK").write_text(key + "\n", encoding="utf-8")
        try:
            build.rename(target)
        except OSError:
            shutil.rmtree(build, ignore_errors=True)  # another process put it there first
        if (target / "OK").exists():
            return target
    raise LuceneUnavailableError(f"no writable cache directory for the compiled Java classes (tried {roots})")


@dataclass
class _Runtime:
    es_index: Any
    parse_exception: Any
    unknown_field: Any
    query_exception: Any
    document_exception: Any
    timings: dict[str, float] = field(default_factory=dict)


_RUNTIME: _Runtime | None = None
_RUNTIME_LOCK = threading.Lock()


def _load_runtime() -> _Runtime:
    """Compile the Java classes, start the JVM (once per process) and load the classes."""
    global _RUNTIME
    with _RUNTIME_LOCK:
        if _RUNTIME is not None:
            return _RUNTIME
        try:
            import jpype  # type: ignore[import-untyped]
        except ImportError as exc:
            raise LuceneUnavailableError(f"JPype is not installed ({exc}); {INSTALL_HINT}") from None
        timings: dict[str, float] = {}
        jars = find_lucene_jars()
        started = time.perf_counter()
        classes = compile_java(sorted(JAVA_SOURCES.glob("*.java")), jars, find_javac())
        timings["compile_or_cache"] = time.perf_counter() - started
        started = time.perf_counter()
        if not jpype.isJVMStarted():
            try:
                jvm = jpype.getDefaultJVMPath()
            except Exception as exc:  # JPype's JVMNotFoundException and friends
                raise LuceneUnavailableError(f"no Java runtime found ({exc}); {INSTALL_HINT}") from None
            # The serial collector: indices of a few thousand documents need no concurrent collector,
            # and G1 (the default on two or more CPUs) costs about 0.1 s of start-up (benchmarks/README.md).
            options = ("-Xss4m", "-Djava.awt.headless=true", "-XX:+UseSerialGC")
            jpype.startJVM(jvm, *options, convertStrings=False)
        timings["jvm_start"] = time.perf_counter() - started
        started = time.perf_counter()
        url = jpype.JClass("java.net.URL")
        file = jpype.JClass("java.io.File")
        urls = jpype.JArray(url)([file(str(p)).toURI().toURL() for p in [*jars, classes]])
        system = jpype.JClass("java.lang.ClassLoader").getSystemClassLoader()
        loader = jpype.JClass("java.net.URLClassLoader")(urls, system)

        def load(name: str) -> Any:
            return jpype.JClass(name, loader=loader)

        runtime = _Runtime(
            es_index=load("detpack.lucene.EsIndex"),
            parse_exception=load("org.apache.lucene.queryparser.classic.ParseException"),
            unknown_field=load("detpack.lucene.EsMapping$UnknownFieldException"),
            query_exception=load("detpack.lucene.EsMapping$QueryException"),
            document_exception=load("detpack.lucene.EsMapping$DocumentException"),
            timings=timings,
        )
        timings["class_load"] = time.perf_counter() - started
        _RUNTIME = runtime
        return runtime


# ------------------------------------------------------------------------------------------- documents


def _json_text(value: Any, path: str) -> str:
    """A leaf value as the Java side expects it: one character of JSON kind, then the text."""
    if isinstance(value, bool):
        return "btrue" if value else "bfalse"
    if isinstance(value, int):
        return f"i{value}"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LuceneDocumentError(f"field [{path}] holds {value!r}, which is not a JSON number")
        return f"f{value!r}"
    if isinstance(value, str):
        return f"s{value}"
    raise LuceneDocumentError(f"field [{path}] holds a {type(value).__name__}, which is not a JSON value")


def flatten_document(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(dotted path, typed text) for every leaf value; arrays give one pair per element, nulls none."""
    out: list[tuple[str, str]] = []

    def walk(value: Any, path: str) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for key, sub in value.items():
                walk(sub, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item, path)
        else:
            out.append((path, _json_text(value, path)))

    if not isinstance(document, Mapping):
        raise LuceneDocumentError(f"a document must be a JSON object, not {type(document).__name__}")
    walk(document, "")
    return out


# ------------------------------------------------------------------------------------------- engine


@dataclass
class _CachedIndex:
    documents: Sequence[Mapping[str, Any]] | None
    field_types: dict[str, str]
    index: Any


class LuceneEngine:
    """Runs Elasticsearch query_string queries on documents indexed for an Elasticsearch mapping.

    Starts the JVM on first construction in a process. The index of a documents list is kept (by identity of
    the list and equality of the field types) for the next queries: do not mutate a list between calls.
    Calls are serialised by a lock, so one engine may be shared between threads.
    """

    CACHE_SIZE = 8

    def __init__(self, *, ignore_malformed: bool = True) -> None:
        """`ignore_malformed`: Elasticsearch's `index.mapping.ignore_malformed`, true for `logs-*-*` data
        streams (the Elastic integrations' indices): a value a numeric, boolean, date or ip field cannot parse
        is left out of the index and its field listed in `_ignored`; false: LuceneDocumentError."""
        self.ignore_malformed = ignore_malformed
        self._runtime = _load_runtime()
        self._lock = threading.Lock()
        self._cache: list[_CachedIndex] = []

    @property
    def startup_timings(self) -> dict[str, float]:
        """Seconds spent compiling (or finding the cached classes), starting the JVM and loading classes."""
        return dict(self._runtime.timings)

    def matching(
        self, query: str, documents: Sequence[Mapping[str, Any]], field_types: Mapping[str, str]
    ) -> set[int]:
        """Positions in `documents` of the documents the query matches."""
        if not query.strip():
            return set()  # Elasticsearch: an empty query string yields an empty result set
        with self._lock:
            index = self._index(documents, field_types)
            return {int(hit) for hit in self._call(index.search, query)}

    def ignored_values(
        self, documents: Sequence[Mapping[str, Any]], field_types: Mapping[str, str]
    ) -> list[tuple[int, str]]:
        """(document position, field) of each malformed value left out of the index (see ignore_malformed)."""
        with self._lock:
            index = self._index(documents, field_types)
            entries = [str(entry).split("\t", 1) for entry in index.ignored()]
            return [(int(position), name) for position, name in entries]

    def lucene_query(self, query: str, field_types: Mapping[str, str]) -> str:
        """The Lucene query the query string becomes for this mapping (for messages and debugging)."""
        with self._lock:
            index = self._index(None, field_types)
            return str(self._call(index.parse, query).toString())

    def _call(self, method: Any, query: str) -> Any:
        rt = self._runtime
        try:
            return method(query)
        except rt.parse_exception as exc:
            raise LuceneSyntaxError(str(exc.getMessage())) from None
        except rt.unknown_field as exc:
            raise LuceneUnknownFieldError(str(exc.field), str(exc.getMessage())) from None
        except rt.query_exception as exc:
            raise LuceneQueryError(str(exc.getMessage())) from None

    def _index(self, documents: Sequence[Mapping[str, Any]] | None, field_types: Mapping[str, str]) -> Any:
        types = dict(field_types)
        for i, entry in enumerate(self._cache):
            if entry.documents is documents and entry.field_types == types:
                self._cache.append(self._cache.pop(i))
                return entry.index
        unsupported = sorted(f"{name}: {kind}" for name, kind in types.items() if not _known_type(kind))
        if unsupported:
            raise ValueError(
                f"unsupported Elasticsearch field types {unsupported}; known: {sorted(FIELD_TYPES)}"
            )
        paths: list[str] = []
        values: list[str] = []
        ends: list[int] = []
        for position, document in enumerate(documents or ()):
            try:
                pairs = flatten_document(document)
            except LuceneDocumentError as exc:
                raise LuceneDocumentError(f"document {position}: {exc}") from None
            for path, value in pairs:
                paths.append(path)
                values.append(value)
            ends.append(len(paths))
        import jpype

        rt = self._runtime
        strings = jpype.JArray(jpype.JString)
        try:
            index = rt.es_index(
                strings(list(types)),
                strings(list(types.values())),
                strings(paths),
                strings(values),
                jpype.JArray(jpype.JInt)(ends),
                self.ignore_malformed,
            )
        except rt.document_exception as exc:
            raise LuceneDocumentError(str(exc.getMessage())) from None
        self._cache.append(_CachedIndex(documents, types, index))
        del self._cache[: -self.CACHE_SIZE]
        return index
