"""ADS documents (Palantir's Alerting & Detection Strategy framework) as Markdown with front matter.

The Markdown is parsed with markdown-it-py (CommonMark), so headings inside code blocks are not
mistaken for sections and every section keeps its line numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin

from detpack.content.yamlfile import YamlDocument, parse_yaml
from detpack.findings import ContentError, Finding, relpath

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
    return AdsDocument(shown, front, title, title_line, sections, headings)


def _collect_code(token: Token, section: AdsSection) -> None:
    line = (token.map[0] + 1) if token.map else section.line
    if token.type in ("fence", "code_block"):
        section.code_blocks.append((line, token.info.strip(), token.content))
    for child in token.children or []:
        if child.type == "code_inline":
            section.inline_code.append((line, child.content))


def load_ads(root: Path) -> tuple[list[AdsDocument], list[Finding]]:
    documents: list[AdsDocument] = []
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
            text = file.read_text(encoding="utf-8")
            documents.append(parse_ads(text, shown))
        except UnicodeDecodeError as exc:
            findings.append(Finding(shown, 0, "ads-encoding", f"not UTF-8: {exc.reason}", "save it as UTF-8"))
        except ContentError as exc:
            findings.extend(exc.findings)
    return documents, findings
