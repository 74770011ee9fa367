"""The analyst catalog: a static HTML site in dist/catalog/ for the analyst an alert just paged.

- ``index.html``: every rule (ADS, level, data source, ATT&CK, version, where it ships), a filter by
  technique (a few lines of inline JavaScript; without JavaScript the "By technique" list does the same),
  and the coverage heat map;
- ``ads/<ads id>.html``: one page per ADS, its Markdown rendered with markdown-it-py, then each of its
  rules: the query for every target, the Splunk saved search and Kibana rule ids it ships as, the fixture
  events that prove it (attacks it fires on, look-alikes it must not) and ATT&CK links.

Content is untrusted: templates autoescape, Markdown is rendered with raw HTML disabled, and links that
would not resolve in the site (relative paths into the repository) or are not http(s)/mailto are turned
into plain text, so every link in the catalog resolves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.front_matter import front_matter_plugin

from detpack import __version__
from detpack.attack import ATTACK_VERSION, load_attack
from detpack.convert import TARGETS
from detpack.publish.context import PublishedRule, tactic_url, technique_url
from detpack.publish.kibana import LANGUAGES, kibana_rule_id
from detpack.publish.templates import environment

UNASSIGNED = "unassigned"
_SAFE_SCHEMES = ("http://", "https://", "mailto:")

STYLE = """\
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem 2rem;
       color: #1a1a1a; }
a { color: #0b57a4; }
nav { margin-bottom: 1rem; }
table { border-collapse: collapse; margin: 1rem 0; width: 100%; }
th, td { border: 1px solid #ccc; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
pre { background: #f6f8fa; border: 1px solid #ddd; padding: .6rem; overflow-x: auto; white-space: pre-wrap;
      word-break: break-all; }
code { font-family: ui-monospace, monospace; font-size: .9em; }
.rule { border-top: 3px solid #404040; margin-top: 2.5rem; padding-top: .5rem; }
.level-critical, .level-high { color: #a50f15; font-weight: bold; }
.level-medium { color: #b15928; font-weight: bold; }
.attack { background: #fde0dd; }
.benign { background: #e5f5e0; }
.skip { color: #666; font-style: italic; }
.ads-body { border-left: 4px solid #c6dbef; padding-left: 1rem; }
img.coverage { max-width: 100%; border: 1px solid #ddd; }
"""


def _markdown() -> MarkdownIt:
    return (
        MarkdownIt("commonmark", {"html": False})
        .enable("table")
        .use(front_matter_plugin)
        .use(anchors_plugin, min_level=1, max_level=4)
    )


def _defuse_links(tokens: list[Token]) -> None:
    """Links that would not resolve inside the catalog become plain text; images become their alt text."""
    for token in tokens:
        if not token.children:
            continue
        children: list[Token] = []
        dropped = 0
        for child in token.children:
            if child.type == "link_open":
                href = str(child.attrGet("href") or "")
                if not (href.startswith(_SAFE_SCHEMES) or (href.startswith("#") and len(href) > 1)):
                    dropped += 1
                    continue
            elif child.type == "link_close" and dropped:
                dropped -= 1
                continue
            elif child.type == "image":
                text = Token("text", "", 0)
                text.content = f"[image: {child.content}]"
                children.append(text)
                continue
            children.append(child)
        token.children = children


def render_markdown(text: str) -> Markup:
    md = _markdown()
    tokens = md.parse(text)
    _defuse_links(tokens)
    html = md.renderer.render(tokens, md.options, {})
    return Markup(html)  # raw HTML is disabled and links are defused: markdown-it escaped the content


def _pretty(raw: str) -> str:
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw


def ads_slug(rule: PublishedRule) -> str:
    return rule.ads_id.lower() if rule.ads_id else UNASSIGNED


@dataclass(frozen=True)
class CatalogInputs:
    rules: list[PublishedRule]
    splunk_stanzas: dict[str, str]  # rule name -> saved search name
    coverage_svg: bytes


def _rule_view(rule: PublishedRule, stanzas: dict[str, str]) -> dict[str, Any]:
    queries = []
    for name, target in TARGETS.items():
        queries.append(
            {
                "target": target.title,
                "name": name,
                "text": rule.queries.get(name, ""),
                "skipped": rule.unsupported.get(name, ""),
            }
        )
    kibana = [
        {"label": lang.label, "rule_id": kibana_rule_id(rule.rule_id, lang.language)}
        for lang in LANGUAGES
        if lang.target not in rule.unsupported
    ]
    techniques = [
        {"id": t.id, "name": t.name, "url": technique_url(t.id), "anchor": f"technique-{t.id}"}
        for t in rule.techniques
    ]
    tactics = [{"id": t.id, "name": t.name, "url": tactic_url(t)} for t in rule.tactics]
    evidence = [
        {"fixture": e.fixture, "line": e.line, "kind": e.kind, "note": e.note, "event": _pretty(e.raw)}
        for e in rule.evidence
    ]
    return {
        "name": rule.name,
        "anchor": f"rule-{rule.name}",
        "page": f"ads/{ads_slug(rule)}.html",
        "title": rule.title,
        "id": rule.rule_id,
        "version": rule.version,
        "level": rule.level,
        "status": rule.text("status"),
        "author": rule.text("author"),
        "description": rule.text("description"),
        "falsepositives": rule.strings("falsepositives"),
        "references": [r for r in rule.strings("references") if r.startswith(_SAFE_SCHEMES)],
        "datasource": rule.datasource.title,
        "datasource_name": rule.datasource.name,
        "file": rule.rule.path,
        "queries": queries,
        "splunk": stanzas.get(rule.name, ""),
        "kibana": kibana,
        "techniques": techniques,
        "tactics": tactics,
        "evidence": evidence,
        "ads_id": rule.ads_id,
        "ads_title": rule.ads.title if rule.ads else "",
    }


def build_catalog(inputs: CatalogInputs) -> dict[str, bytes]:
    """Relative path inside catalog/ -> content."""
    env = environment()
    views = [_rule_view(r, inputs.splunk_stanzas) for r in inputs.rules]
    pages: dict[str, dict[str, Any]] = {}
    for rule, view in zip(inputs.rules, views, strict=True):
        slug = ads_slug(rule)
        page = pages.setdefault(
            slug,
            {
                "slug": slug,
                "id": rule.ads_id or "Unassigned",
                "title": rule.ads.title if rule.ads else "Rules without an ADS",
                "path": rule.ads.path if rule.ads else "",
                "meta": rule.ads.meta if rule.ads else {},
                "body": Markup(""),
                "rules": [],
            },
        )
        if rule.ads is not None and not page["body"]:
            page["body"] = render_markdown(_ads_source(rule))
        page["rules"].append(view)
    attack = load_attack()
    by_technique: dict[str, list[dict[str, Any]]] = {}
    for view in views:
        for technique in view["techniques"]:
            by_technique.setdefault(technique["id"], []).append(view)
    techniques = [
        {
            "id": tid,
            "name": attack.techniques[tid].name if tid in attack.techniques else tid,
            "url": technique_url(tid),
            "anchor": f"technique-{tid}",
            "rules": by_technique[tid],
        }
        for tid in sorted(by_technique)
    ]
    common = {"version": __version__, "attack_version": ATTACK_VERSION}
    files: dict[str, bytes] = {
        "style.css": STYLE.encode("utf-8"),
        "coverage.svg": inputs.coverage_svg,
        "index.html": env.get_template("catalog_index.html.j2")
        .render(
            rules=views,
            pages=[pages[s] for s in sorted(pages)],
            techniques=techniques,
            root="",
            **common,
        )
        .encode("utf-8"),
    }
    for slug in sorted(pages):
        files[f"ads/{slug}.html"] = (
            env.get_template("catalog_ads.html.j2")
            .render(page=pages[slug], root="../", **common)
            .encode("utf-8")
        )
    return files


def _ads_source(rule: PublishedRule) -> str:
    """The ADS Markdown without its front matter and without its `#` title (the page shows it)."""
    assert rule.ads is not None
    body = []
    for section in rule.ads.sections:
        body.append(f"## {section.title}\n{section.text}")
    return "\n\n".join(body)
