"""Loading YAML keeps nothing behind: the scalar constructor forgets each node, and the cyclic garbage
collector is paused for one document only and resumed as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import yaml

from detpack.content import yamlfile
from detpack.content.yamlfile import parse_yaml
from detpack.findings import ContentError


@pytest.fixture
def gc_state() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("a: 1\nb: [x, y]\n", None),
        ("a: 1\na: 2\n", "duplicate key"),
        ("a: [\n", "invalid YAML"),
        ("- " * 100 + "x\n", "nested too deeply"),
    ],
)
def test_the_collector_is_left_as_it_was(
    enabled: bool, text: str, refusal: str | None, gc_state: None
) -> None:
    """Whether the document parses or is refused."""
    if enabled:
        gc.enable()
    else:
        gc.disable()
    if refusal is None:
        assert parse_yaml(text, "rules/x/a.yml").data == {"a": 1, "b": ["x", "y"]}
    else:
        with pytest.raises(ContentError) as error:
            parse_yaml(text, "rules/x/a.yml")
        assert refusal in error.value.findings[0].message
    assert gc.isenabled() is enabled


def test_the_collector_is_paused_while_a_document_is_built(
    monkeypatch: pytest.MonkeyPatch, gc_state: None
) -> None:
    seen: list[bool] = []
    original = yamlfile._construct

    def spy(*args: object) -> object:
        seen.append(gc.isenabled())
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(yamlfile, "_construct", spy)
    gc.enable()
    assert parse_yaml("a: {b: 1}\n", "rules/x/a.yml").data == {"a": {"b": 1}}
    assert seen and not any(seen)
    assert gc.isenabled()


SCALARS = """\
text: plain
quoted: "1"
single: 'yes'
block: |
  two
  lines
number: 12
negative: -3
octal_like: 0o17
float: 1.5
exponent: 1e3
infinity: .inf
truth: true
falsity: no
nothing: null
tilde: ~
empty:
list: [a, 2, 3.0, false, null]
"""


def test_scalars_are_what_the_safe_loader_makes_and_none_is_kept() -> None:
    """Before the fix, PyYAML's constructor kept every scalar node it had built (it forgets them only
    after a whole document, which detpack never asks it for): memory grew with every file loaded."""
    assert parse_yaml(SCALARS, "rules/x/a.yml").data == yaml.safe_load(SCALARS)
    assert yamlfile._scalar_constructor.constructed_objects == {}
    with pytest.raises(ContentError, match="cannot read value"):
        parse_yaml("when: 2026-13-45\n", "rules/x/a.yml")
    assert yamlfile._scalar_constructor.constructed_objects == {}
