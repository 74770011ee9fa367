"""Safe YAML loading that remembers where every value came from.

Pack content arrives in pull requests, so it is untrusted: only the safe loader is used, anchors and
aliases are refused (they serve no purpose in a rule and are the vehicle of "billion laughs"), duplicate
keys are errors (PyYAML would silently keep the last one), and size and depth are bounded.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:  # libyaml's C parser is an order of magnitude faster; the pure-Python one behaves the same.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - libyaml is part of the PyYAML wheels
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

from detpack.findings import ContentError, Finding

MAX_FILE_BYTES = 512 * 1024
MAX_DEPTH = 64

JsonPath = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """A parsed YAML document and the line of every key and list item in it."""

    path: str
    data: Any
    lines: dict[JsonPath, int] = field(default_factory=dict)
    seen_nodes: set[int] = field(default_factory=set, repr=False)

    def line_of(self, json_path: JsonPath) -> int:
        """The line of the deepest known prefix of json_path (1-based)."""
        probe = tuple(json_path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), 1)


def _fail(path: str, line: int, message: str, fix: str) -> ContentError:
    return ContentError([Finding(path, line, "yaml", message, fix)])


def parse_yaml(text: str, path: str, line_offset: int = 0) -> YamlDocument:
    """Parse one YAML document from text. Raises ContentError with a located finding."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise _fail(path, 0, f"file is larger than {MAX_FILE_BYTES} bytes", "split or trim the file")
    if "\x00" in text:
        raise _fail(path, 0, "file contains a NUL character", "remove the NUL byte; content must be text")
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
    doc.lines.setdefault((), node.start_mark.line + 1 + line_offset)
    return doc


def load_yaml(file: Path, shown_path: str) -> YamlDocument:
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise _fail(shown_path, 0, f"cannot read file: {exc.strerror}", "check the path") from None
    if size > MAX_FILE_BYTES:
        raise _fail(shown_path, 0, f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit", "trim it")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(shown_path, 0, f"file is not UTF-8 ({exc.reason})", "save the file as UTF-8") from None
    return parse_yaml(text, shown_path)


_scalar_constructor = yaml.SafeLoader("")
_PLAIN_TAGS = {
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map")
}


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
            key = _scalar_constructor.construct_object(key_node, deep=True)
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
        value = _scalar_constructor.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        raise _fail(
            doc.path, line, f"cannot read value: {exc.problem}", "quote the value as a string"
        ) from None
    if isinstance(value, datetime.date):  # unquoted dates stay text, as JSON and the schemas expect
        return value.isoformat()
    return value
