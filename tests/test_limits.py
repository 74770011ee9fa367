"""Resource limits: hostile content is refused with a located finding in bounded time and memory.

Each test measures wall time and, where the work is in Python, peak memory with tracemalloc; the bounds
are generous multiples of what the refusal costs (milliseconds, a few MiB), far below what the attack
would cost if it were not refused (a crashed process, gigabytes, hours).
"""

from __future__ import annotations

import re
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from defusedxml import ElementTree
from defusedxml.common import EntitiesForbidden

from detpack.content.ads import MAX_ADS_BYTES, parse_ads
from detpack.content.fixtures import MAX_FIXTURE_BYTES
from detpack.content.yamlfile import MAX_DEPTH, MAX_FILE_BYTES, parse_yaml
from detpack.engines import budget
from detpack.engines.budget import BudgetExceeded, time_budget
from detpack.findings import ContentError
from detpack.ingest import native
from detpack.ingest.native import MAX_EVENT_BYTES, MAX_EVENT_DEPTH, NativeFormatError, parse_native
from detpack.validate.regexes import backtracking_problem
from tests.test_malformed import _prepare

MiB = 1024 * 1024


@contextmanager
def bounded(seconds: float, mebibytes: float) -> Iterator[None]:
    tracemalloc.start()
    started = time.monotonic()
    try:
        yield
    finally:
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert peak < mebibytes * MiB, f"peaked at {peak / MiB:.1f} MiB"


def _refused(call: Callable[[], Any]) -> ContentError:
    with pytest.raises(ContentError) as caught:
        call()
    return caught.value


# --------------------------------------------------------------------------------------------------
# YAML
# --------------------------------------------------------------------------------------------------


def test_yaml_alias_bomb_is_refused_without_expansion() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 10)}]" for i in range(1, 12)]  # 10^12 items
    with bounded(2, 16):
        error = _refused(lambda: parse_yaml("\n".join(lines) + "\n", "rules/x/bomb.yml"))
    finding = error.findings[0]
    assert (finding.path, finding.line, finding.code) == ("rules/x/bomb.yml", 1, "yaml")
    assert "anchors and aliases are not allowed" in finding.message


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 10_000 + "]" * 10_000 + "\n",  # flow sequences
        "a: " + "{b: " * 10_000 + "1" + "}" * 10_000 + "\n",  # flow mappings
        "a: " + "[" * 250_000 + "\n",  # never closed, just under the size limit: 10^5 crashed libyaml
        "".join("  " * i + "- \n" for i in range(600)),  # block sequences
    ],
    ids=["flow-lists", "flow-maps", "unclosed-250k", "block-lists"],
)
def test_yaml_deep_nesting_is_refused_quickly(text: str) -> None:
    """Before the fix, 100,000 nested `[` (200 KB) overflowed the C stack in libyaml's composer and killed
    the whole process (no exception, no finding)."""
    with bounded(1, 8):
        error = _refused(lambda: parse_yaml(text, "rules/x/deep.yml"))
    assert error.findings[0].message == "YAML is nested too deeply"
    assert error.findings[0].fix == f"keep nesting under {MAX_DEPTH} levels"
    assert error.findings[0].line >= 1


def test_yaml_depth_limit_is_exact() -> None:
    assert parse_yaml("a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n", "r.yml").data is not None
    _refused(lambda: parse_yaml("a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n", "r.yml"))


def test_oversized_yaml_file_is_refused_before_parsing(tmp_path: Any) -> None:
    pack_copy = _prepare({"name": "oversized-yaml"}, tmp_path / "pack")
    pack_copy.write("rules/docker_events/docker_events_oversized_rule.yml", "title: " + "x" * MAX_FILE_BYTES)
    with bounded(20, 200):
        result = pack_copy.run("validate")
    assert result.exit_code == 1
    assert (
        f"rules/docker_events/docker_events_oversized_rule.yml: error: [yaml] file is {MAX_FILE_BYTES + 7} "
        f"bytes, over the {MAX_FILE_BYTES}-byte limit" in result.output
    )


def test_impossible_unquoted_date_is_a_finding_not_a_crash() -> None:
    error = _refused(lambda: parse_yaml("title: t\ndate: 2026-02-30\n", "rules/x/r.yml"))
    assert (error.findings[0].line, error.findings[0].code) == (2, "yaml")
    assert "day is out of range for month" in error.findings[0].message


# --------------------------------------------------------------------------------------------------
# ADS and fixtures
# --------------------------------------------------------------------------------------------------


def test_oversized_ads_is_refused() -> None:
    error = _refused(lambda: parse_ads("# t\n" + "x" * MAX_ADS_BYTES, "ads/dp-ads-0001-x.md"))
    assert (error.findings[0].code, error.findings[0].line) == ("ads-size", 0)


def test_pathological_markdown_is_parsed_in_bounded_time() -> None:
    """Runs of `![[` and of emphasis are markdown-it's slowest paths: linear, about 20-45 µs a character,
    so the ADS size limit bounds them (a few seconds at 256 KiB). Measured at half the limit, time only
    (tracemalloc would dominate the cost)."""
    for text in ("![[" * 40_000, "*a" * 60_000, ">" * 120_000 + " x\n"):
        started = time.monotonic()
        document = parse_ads(text, "ads/dp-ads-0001-x.md")
        assert time.monotonic() - started < 30
        assert document.sections == []


def test_million_character_fixture_line_is_refused_quickly() -> None:
    line = '{"Action":"' + "a" * 1_000_000 + '"}'
    with (
        bounded(1, 16),
        pytest.raises(NativeFormatError, match=f"event is longer than {MAX_EVENT_BYTES} bytes"),
    ):
        parse_native("json_lines", line)


def test_oversized_fixture_file_is_a_located_finding(tmp_path: Any) -> None:
    pack = _prepare({"name": "oversized"}, tmp_path / "pack")
    event = pack.read("tests/fixtures/docker_events/hostile_input_probe.jsonl").split("\n")[0]
    copies = MAX_FIXTURE_BYTES // len(event) + 1
    pack.write("tests/fixtures/docker_events/hostile_input_probe.jsonl", (event + "\n") * copies)
    with bounded(20, 64):
        result = pack.run("validate")
    assert result.exit_code == 1
    assert (
        "tests/fixtures/docker_events/hostile_input_probe.jsonl: error: [fixture-size] fixture is over "
        f"{MAX_FIXTURE_BYTES} bytes (fix: keep fixtures small" in result.output
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[" * 100_000, "JSON is nested more than 64 levels deep"),  # RecursionError in json before the fix
        ('{"a":' * (MAX_EVENT_DEPTH + 1) + "1" + "}" * (MAX_EVENT_DEPTH + 1), "nested more than 64"),
        ('{"a":' + "9" * 5000 + "}", "not valid JSON: Exceeds the limit (4300 digits)"),
        ('{"a":' + "9" * 4000 + "}", "does not fit in 64 bits"),
        ('{"a":18446744073709551616}', "does not fit in 64 bits"),
        ('{"a":-1e999}', "too large to be a finite 64-bit float"),
        ('{"a":Infinity}', "Infinity is not a JSON value"),
        ('{"a":"\\udc00"}', "lone UTF-16 surrogate"),
        ('{"a\\ud800":1}', "lone UTF-16 surrogate"),
        ('{"a":1,"b":{"c":1,"c":2}}', "duplicate key 'c'"),
    ],
)
def test_json_events_no_engine_can_index_are_refused(line: str, message: str) -> None:
    with bounded(1, 32), pytest.raises(NativeFormatError) as caught:
        parse_native("json_lines", line)
    assert message in str(caught.value)


def test_json_depth_limit_is_exact() -> None:
    deepest = '{"a":' * (MAX_EVENT_DEPTH - 1) + "1" + "}" * (MAX_EVENT_DEPTH - 1)
    assert isinstance(parse_native("json_lines", deepest), dict)
    assert native.MAX_EVENT_INT == 2**63 - 1
    assert parse_native("json_lines", '{"a":9223372036854775807,"b":-9223372036854775808}')["b"] == -(2**63)


def test_sysmon_xml_entities_are_refused_by_defusedxml() -> None:
    """The syslog framing already requires the XML to start with <Event>, so a DTD cannot come first; the
    parser is defusedxml's all the same, which refuses entity declarations outright."""
    # native imports ElementTree without re-exporting it, so read the module's global by name.
    assert vars(native)["ElementTree"] is ElementTree
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE Event [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        "<Event><EventData><Data Name='CommandLine'>&c;</Data></EventData></Event>"
    )
    with bounded(1, 8), pytest.raises(EntitiesForbidden):
        ElementTree.fromstring(bomb)
    line = "Nov 24 10:15:02 worker-3 sysmon: <Event><!DOCTYPE Event [<!ENTITY a 'x'>]><System/></Event>"
    with pytest.raises(NativeFormatError, match="not well-formed or not allowed"):
        parse_native("sysmon_linux_syslog", line)


# --------------------------------------------------------------------------------------------------
# Regular expressions
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [r"^(a+)+$", r"(\w+\s?)*$", r"(a|aa)+b", r"(.*,)+x", r"((ab)*)+c", r"(a?){30}a{30}", r"(x+x+)+y"],
)
def test_exponential_regexes_are_refused(pattern: str) -> None:
    started = time.monotonic()
    assert backtracking_problem(pattern) is not None
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?:[a-z0-9-]+\.)+[a-z]{2,}",  # each repetition ends with a '.' the inner part cannot match
        r"(\d{1,3}\.){3}\d{1,3}",
        r"(?:curl|wget)\s+.*\|\s*(?:ba)?sh",
        r"(?>a+)+b",  # atomic: no backtracking into it
        r"a++b",
        r"(ab|cd)+",
        r"^(\\\\[^\\\\]+)+$",
        r"(?:-\w+\s?)+",
    ],
)
def test_ordinary_regexes_are_accepted(pattern: str) -> None:
    assert backtracking_problem(pattern) is None


def test_refused_regex_really_backtracks_and_the_budget_stops_it() -> None:
    """What the check protects against, measured: `(a+)+$` on 40 a's and a '!' takes minutes in Python's
    re; under the engines' time budget it is interrupted after the budget."""
    with (
        bounded(3, 8),
        pytest.raises(BudgetExceeded, match=re.escape("ran longer than its 0.5 s budget")),
        time_budget(0.5, "probe"),
    ):
        re.search(r"(a+)+$", "a" * 40 + "!")


def test_polynomial_regex_in_a_rule_is_stopped_by_the_engine_budget(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`.*x.*y.*z` is not exponential, so validation lets it through; on a 20,000-character value it would
    run for hours in the reference engine. The replay's budget turns it into a finding of the rule."""
    monkeypatch.setattr(budget, "ENGINE_TIME_BUDGET_SECONDS", 1.0)
    pack = _prepare({"name": "polynomial"}, tmp_path / "pack")
    rule = "rules/docker_events/docker_events_hostile_input_probe_paused.yml"
    pack.replace(rule, "        Action: pause\n", "        Action|re: '.*x.*y.*z'\n")
    fixture = "tests/fixtures/docker_events/hostile_input_probe.jsonl"
    pack.replace(fixture, '"Action":"unpause"', '"Action":"' + "x" * 10_000 + "y" * 10_000 + '"')
    started = time.monotonic()
    result = pack.run("test", "--engine", "spl", "--engine", "eql")
    assert time.monotonic() - started < 30
    assert result.exit_code == 1
    assert (
        f"{rule}:15: error: [engine-time] the reference engine on rule "
        "docker_events_hostile_input_probe_paused ran longer than its 1 s budget" in result.output
    )
    assert "Traceback" not in result.output


def test_the_budget_restores_an_outer_timer() -> None:
    import signal

    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        with time_budget(5, "inner"):
            pass
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 25 < remaining <= 30
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def test_fixture_with_too_many_lines_is_refused_in_linear_time(tmp_path: Any) -> None:
    """Before the fix the loader split the whole text again for every blank line: 2,000,000 newlines
    (2 MB, under the size limit) would have taken hours. Now the line count is checked first."""
    from detpack.content.fixtures import MAX_FIXTURE_EVENTS

    pack = _prepare({"name": "many-lines"}, tmp_path / "pack")
    fixture = "tests/fixtures/docker_events/hostile_input_probe.jsonl"
    pack.write(fixture, pack.read(fixture) + "\n" * 2_000_000)
    started = time.monotonic()
    result = pack.run("validate")
    assert time.monotonic() - started < 20
    assert result.exit_code == 1
    assert (
        f"{fixture}:{MAX_FIXTURE_EVENTS + 1}: error: [fixture-size] fixture has more than "
        f"{MAX_FIXTURE_EVENTS} lines (fix: keep fixtures small" in result.output
    )


def test_network_guard_is_active_during_the_suite() -> None:
    import socket

    from detpack.offline import NETWORK_DISABLED_MESSAGE

    with pytest.raises(OSError, match=re.escape(NETWORK_DISABLED_MESSAGE)):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with pytest.raises(OSError, match=re.escape(NETWORK_DISABLED_MESSAGE)):
        socket.getaddrinfo("example.org", 443)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as raw, pytest.raises(OSError) as caught:
        raw.connect(("192.0.2.1", 80))
    assert NETWORK_DISABLED_MESSAGE in str(caught.value)


def test_unexpected_exception_is_one_line_and_exit_2(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's last-resort guard: a bug is reported in one line, never as a traceback of internals."""
    import detpack.cli

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("boom")

    pack = _prepare({"name": "guard"}, tmp_path / "pack")
    monkeypatch.setattr(detpack.cli, "validate_pack", broken)
    result = pack.run("validate")
    assert result.exit_code == 2
    assert "internal error in detpack (please report): KeyError: 'boom'" in result.output
    assert "Traceback" not in result.output
