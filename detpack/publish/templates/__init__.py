"""Jinja2 templates of the published artifacts (catalog pages, SVG heat map).

Autoescaping is on for every template: rule, ADS and fixture content is untrusted and reaches the pages
only as escaped text, or as HTML that markdown-it-py rendered with raw HTML disabled (marked safe in code).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import jinja2


def _load(name: str) -> str:
    resource = resources.files(__name__).joinpath(name)
    if not resource.is_file():
        raise jinja2.TemplateNotFound(name)
    return resource.read_text(encoding="utf-8")


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
