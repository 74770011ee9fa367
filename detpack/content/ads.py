"""ADS documents (Palantir's Alerting & Detection Strategy framework) as Markdown with front matter.

The Markdown is parsed with markdown-it-py (CommonMark), so headings inside code blocks are not
mistaken for sections and every section keeps its line numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin

from detpack.content.yamlfile import YamlDocument, parse_yaml
from detpack.findings import ContentError, Finding, relpath
from detpack.result_cache import ResultCache

ADS_SECTIONS = (
    "Goal",
    "Categorization",
    "Strategy Abstract",
    "Technical Context",
    "Blind Spots and Assumptions",
    "False Positives",
    "Validation",
    "Priority",
    "Response",
    "Additional Resources",
)
MAX_ADS_BYTES = 256 * 1024


@dataclass
class AdsSection:
    title: str
    line: int  # line of the heading
    end_line: int  # last line of the section
    text: str  # the section's Markdown source, heading excluded
    code_blocks: list[tuple[int, str, str]] = field(default_factory=list)  # (line, info, content)
    inline_code: list[tuple[int, str]] = field(default_factory=list)  # (line, content)


@dataclass
class AdsDocument:
    path: str
    front: YamlDocument | None
    title: str
    title_line: int
    sections: list[AdsSection]
    headings: list[tuple[int, int, str]]  # (line, level, text) of every heading
    digest: str = field(default="", repr=False, compare=False)  # sha256 of the text it was parsed from

    @property
    def meta(self) -> dict[str, Any]:
        return self.front.data if self.front is not None and isinstance(self.front.data, dict) else {}

    def section(self, title: str) -> AdsSection | None:
        return next((s for s in self.sections if s.title == title), None)

    def as_json(self) -> dict[str, Any]:
        """The structure the ADS JSON Schema checks."""
        return {
            "front_matter": self.meta,
            "title": self.title,
            "sections": {s.title: {"text": s.text.strip()} for s in self.sections},
            "section_order": [s.title for s in self.sections],
        }


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").use(front_matter_plugin)


def parse_ads(text: str, shown: str) -> AdsDocument:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_ADS_BYTES:
        raise ContentError(
            [Finding(shown, 0, "ads-size", f"ADS is over {MAX_ADS_BYTES} bytes", "shorten it")]
        )
    tokens = _markdown().parse(text)
    lines = text.split("\n")
    front: YamlDocument | None = None
    title, title_line = "", 0
    headings: list[tuple[int, int, str]] = []
    sections: list[AdsSection] = []
    for index, token in enumerate(tokens):
        if token.type == "front_matter":
            start = token.map[0] if token.map else 0
            front = parse_yaml(token.content, shown, line_offset=start + 1)
        elif token.type == "heading_open":
            level = int(token.tag[1])
            inline = tokens[index + 1]
            heading_text = inline.content.strip()
            line = (token.map[0] + 1) if token.map else 0
            headings.append((line, level, heading_text))
            if level == 1 and not title:
                title, title_line = heading_text, line
            elif level == 2:
                if sections:
                    sections[-1].end_line = line - 1
                sections.append(AdsSection(heading_text, line, len(lines), ""))
        elif sections:
            _collect_code(token, sections[-1])
    for section in sections:
        section.text = "\n".join(lines[section.line : section.end_line])
    return AdsDocument(shown, front, title, title_line, sections, headings, _digest(text))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _collect_code(token: Token, section: AdsSection) -> None:
    line = (token.map[0] + 1) if token.map else section.line
    if token.type in ("fence", "code_block"):
        section.code_blocks.append((line, token.info.strip(), token.content))
    for child in token.children or []:
        if child.type == "code_inline":
            section.inline_code.append((line, child.content))


def ads_to_json(doc: AdsDocument) -> dict[str, Any]:
    """For detpack/result_cache.py: the parsed document, restored exactly by ads_from_json."""
    return {
        "front": doc.front.to_json() if doc.front is not None else None,
        "title": [doc.title, doc.title_line],
        "sections": [
            [s.title, s.line, s.end_line, s.text, s.code_blocks, s.inline_code] for s in doc.sections
        ],
        "headings": doc.headings,
        "digest": doc.digest,
    }


def ads_from_json(path: str, value: dict[str, Any]) -> AdsDocument:
    front = YamlDocument.from_json(path, value["front"]) if value["front"] is not None else None
    sections = [
        AdsSection(
            title,
            line,
            end_line,
            text,
            [(int(n), str(info), str(content)) for n, info, content in blocks],
            [(int(n), str(content)) for n, content in inline],
        )
        for title, line, end_line, text, blocks, inline in value["sections"]
    ]
    headings = [(int(line), int(level), str(text)) for line, level, text in value["headings"]]
    title, title_line = value["title"]
    return AdsDocument(path, front, str(title), int(title_line), sections, headings, str(value["digest"]))


def load_ads(root: Path, cache: ResultCache | None = None) -> tuple[list[AdsDocument], list[Finding]]:
    """Every ADS document under ads/, parsed (or, with a cache, as parsed before from the same bytes)."""
    read: list[tuple[str, str]] = []  # (shown path, text) of the documents to parse
    findings: list[Finding] = []
    for file in sorted((root / "ads").rglob("*")):
        if file.is_dir():
            continue
        shown = relpath(file, root)
        if file.suffix != ".md":
            findings.append(
                Finding(
                    shown,
                    0,
                    "ads-file",
                    "files under ads/ must be ADS documents ending in .md",
                    "rename it to .md or move it out of ads/",
                )
            )
            continue
        try:
            read.append((shown, file.read_text(encoding="utf-8")))
        except UnicodeDecodeError as exc:
            findings.append(Finding(shown, 0, "ads-encoding", f"not UTF-8: {exc.reason}", "save it as UTF-8"))
    keys = {shown: cache.key("ads", shown, text) for shown, text in read} if cache is not None else {}
    cached = cache.lookup(keys.values()) if cache is not None else {}
    documents: list[AdsDocument] = []
    for shown, text in read:
        key = keys.get(shown, "")
        if key in cached:
            documents.append(ads_from_json(shown, cached[key]))
            continue
        try:
            doc = parse_ads(text, shown)
        except ContentError as exc:
            findings.extend(exc.findings)
            continue
        documents.append(doc)
        if cache is not None:
            cache.add(key, ads_to_json(doc))
    return documents, findings
