"""Safe YAML loading that remembers where every value came from.

Pack content arrives in pull requests, so it is untrusted: only the safe loader is used, anchors and
aliases are refused (they serve no purpose in a rule and are the vehicle of "billion laughs"), duplicate
keys are errors (PyYAML would silently keep the last one), and size and depth are bounded.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:  # libyaml's C parser is an order of magnitude faster; the pure-Python one behaves the same.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - libyaml is part of the PyYAML wheels
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

from detpack.findings import ContentError, Finding
from detpack.result_cache import ResultCache, decode_data, encode_data

MAX_FILE_BYTES = 512 * 1024
MAX_DEPTH = 64

JsonPath = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """A parsed YAML document and the line of every key and list item in it."""

    path: str
    data: Any
    lines: dict[JsonPath, int] = field(default_factory=dict)
    seen_nodes: set[int] = field(default_factory=set, repr=False, compare=False)  # while parsing only
    digest: str = field(default="", repr=False, compare=False)  # sha256 of the text it was parsed from

    def line_of(self, json_path: JsonPath) -> int:
        """The line of the deepest known prefix of json_path (1-based)."""
        probe = tuple(json_path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), 1)

    def to_json(self) -> dict[str, Any]:
        """For detpack/result_cache.py: data and lines, restored exactly by from_json."""
        lines = [[list(k), v] for k, v in self.lines.items()]
        return {"data": encode_data(self.data), "lines": lines, "digest": self.digest}

    @classmethod
    def from_json(cls, path: str, value: dict[str, Any]) -> YamlDocument:
        lines = {tuple(k): int(v) for k, v in value["lines"]}
        return cls(path, decode_data(value["data"]), lines, digest=str(value["digest"]))


def _fail(path: str, line: int, message: str, fix: str) -> ContentError:
    return ContentError([Finding(path, line, "yaml", message, fix)])


def parse_yaml(text: str, path: str, line_offset: int = 0) -> YamlDocument:
    """Parse one YAML document from text. Raises ContentError with a located finding."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise _fail(path, 0, f"file is larger than {MAX_FILE_BYTES} bytes", "split or trim the file")
    if "\x00" in text:
        raise _fail(path, 0, "file contains a NUL character", "remove the NUL byte; content must be text")
    with _gc_paused():
        doc = _parse_checked(text, path, line_offset)
    doc.digest = hashlib.sha256(f"{line_offset}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()
    return doc


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The parser, composer and constructor allocate thousands of objects per document that all live until
    the document is built, and the cyclic garbage collector scans them again and again while they grow
    (a third of the time of loading 3,000 rules; benchmarks/README.md). They hold no reference cycles, so
    it has nothing to find there (and would still find anything once resumed): it is paused for one
    document, which the size and depth limits bound, and resumed as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse_checked(text: str, path: str, line_offset: int) -> YamlDocument:
    _check_depth(text, path, line_offset)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = (mark.line + 1 + line_offset) if mark else line_offset + 1
        raise _fail(
            path, line, f"invalid YAML: {exc.problem or exc}", "fix the YAML syntax at this line"
        ) from None
    except yaml.YAMLError as exc:
        raise _fail(path, line_offset + 1, f"invalid YAML: {exc}", "fix the YAML syntax") from None
    except RecursionError:
        raise _fail(path, 0, "YAML is nested too deeply", f"keep nesting under {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()
    if node is None:
        return YamlDocument(path, None, {(): 1 + line_offset})
    doc = YamlDocument(path, None)
    doc.data = _construct(node, (), doc, line_offset, 0)
    doc.seen_nodes = set()  # ids of nodes now freed: nothing to remember
    doc.lines.setdefault((), node.start_mark.line + 1 + line_offset)
    return doc


def _check_depth(text: str, path: str, line_offset: int) -> None:
    """Refuse deep nesting from the parser's event stream, before anything builds a tree.

    libyaml's composer (and PyYAML's) recurses once per nesting level: 100,000 nested `[` (200 KB) overflow
    the C stack and kill the process, so depth must be bounded before composing. The event parser keeps
    its own stack and stops here at the first collection past the limit. Syntax errors are left to the
    composer, which reports them the same way it always does."""
    loader = _Loader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                if depth > MAX_DEPTH + 1:  # the root collection is level 1; _construct counts from 0
                    line = (event.start_mark.line if event.start_mark else 0) + 1 + line_offset
                    fix = f"keep nesting under {MAX_DEPTH} levels"
                    raise _fail(path, line, "YAML is nested too deeply", fix)
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return
    finally:
        loader.dispose()


def read_yaml_text(file: Path, shown_path: str) -> str:
    """The text of a YAML file, within the size limit and in UTF-8, or ContentError."""
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise _fail(shown_path, 0, f"cannot read file: {exc.strerror}", "check the path") from None
    if size > MAX_FILE_BYTES:
        raise _fail(shown_path, 0, f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit", "trim it")
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(shown_path, 0, f"file is not UTF-8 ({exc.reason})", "save the file as UTF-8") from None


def load_yaml(file: Path, shown_path: str) -> YamlDocument:
    return parse_yaml(read_yaml_text(file, shown_path), shown_path)


def load_yaml_files(
    files: list[tuple[Path, str]], cache: ResultCache | None = None
) -> list[YamlDocument | ContentError]:
    """load_yaml for each (file, shown path), in order. With a cache, a document parsed before from the same
    bytes comes from it (detpack/result_cache.py); what failed to load is never cached."""
    texts: list[str | ContentError] = []
    for file, shown in files:
        try:
            texts.append(read_yaml_text(file, shown))
        except ContentError as exc:
            texts.append(exc)
    keys = [
        cache.key("yaml", shown, text) if cache is not None and isinstance(text, str) else ""
        for (_, shown), text in zip(files, texts, strict=True)
    ]
    cached = cache.lookup(k for k in keys if k) if cache is not None else {}
    loaded: list[YamlDocument | ContentError] = []
    for (_, shown), text, key in zip(files, texts, keys, strict=True):
        if isinstance(text, ContentError):
            loaded.append(text)
        elif key in cached:
            loaded.append(YamlDocument.from_json(shown, cached[key]))
        else:
            try:
                doc = parse_yaml(text, shown)
            except ContentError as exc:
                loaded.append(exc)
                continue
            loaded.append(doc)
            if cache is not None:
                cache.add(key, doc.to_json())
    return loaded


_scalar_constructor = yaml.SafeLoader("")
_PLAIN_TAGS = {
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map")
}


_STR_TAG = "tag:yaml.org,2002:str"


def _scalar(node: yaml.Node) -> Any:
    """A scalar's value, as PyYAML's safe constructor makes it. The constructor remembers every node it
    constructed until a whole document is constructed through it, which never happens here: without the
    `pop`, every scalar ever loaded stayed in memory with its node. A string is its node's value (what
    SafeConstructor.construct_yaml_str returns), so most scalars need no constructor at all."""
    if node.tag == _STR_TAG and isinstance(node, yaml.ScalarNode):
        return node.value
    try:
        return _scalar_constructor.construct_object(node, deep=True)
    finally:
        _scalar_constructor.constructed_objects.pop(node, None)


def _construct(node: yaml.Node, json_path: JsonPath, doc: YamlDocument, offset: int, depth: int) -> Any:
    line = node.start_mark.line + 1 + offset
    if depth > MAX_DEPTH:
        raise _fail(doc.path, line, "YAML is nested too deeply", f"keep nesting under {MAX_DEPTH} levels")
    if id(node) in doc.seen_nodes:  # the composer resolves an alias to the node it names
        raise _fail(doc.path, line, "YAML anchors and aliases are not allowed", "write the value out")
    doc.seen_nodes.add(id(node))
    if node.tag not in _PLAIN_TAGS:
        raise _fail(
            doc.path, line, f"YAML tag {node.tag!r} is not allowed", "remove the tag; write plain values"
        )
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _fail(
                    doc.path,
                    key_node.start_mark.line + 1 + offset,
                    "mapping keys must be plain scalars",
                    "use a string key",
                )
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _fail(
                    doc.path,
                    key_node.start_mark.line + 1 + offset,
                    "YAML merge keys (<<) are not allowed",
                    "write the keys out",
                )
            key = _scalar(key_node)
            if not isinstance(key, str | int | bool | float) or key is None:
                key = str(key)
            key_line = key_node.start_mark.line + 1 + offset
            if key in result:
                first = doc.lines.get((*json_path, key), key_line)
                raise _fail(
                    doc.path,
                    key_line,
                    f"duplicate key {key!r} (first defined at line {first})",
                    "remove one of the two keys; YAML would silently keep only the last",
                )
            doc.lines[(*json_path, key)] = key_line
            result[key] = _construct(value_node, (*json_path, key), doc, offset, depth + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item_node in enumerate(node.value):
            doc.lines[(*json_path, index)] = item_node.start_mark.line + 1 + offset
            items.append(_construct(item_node, (*json_path, index), doc, offset, depth + 1))
        return items
    try:
        value = _scalar(node)
    except yaml.constructor.ConstructorError as exc:
        raise _fail(
            doc.path, line, f"cannot read value: {exc.problem}", "quote the value as a string"
        ) from None
    except (ValueError, OverflowError) as exc:  # e.g. an unquoted date that does not exist: 2026-13-45
        raise _fail(
            doc.path,
            line,
            f"cannot read value {node.value!r}: {exc}",
            "write a real date, or quote the value",
        ) from None
    if isinstance(value, datetime.date):  # unquoted dates stay text, as JSON and the schemas expect
        return value.isoformat()
    return value
