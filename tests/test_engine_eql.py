"""The EQL engine: Elasticsearch EQL semantics over ECS documents, on top of Elastic's `eql` library.

Every expectation below is written from Elasticsearch's documented (or, where the docs are silent, its
source-code) behaviour, not from this engine's output. The pages cited were read while writing them:

[SYNTAX]  https://www.elastic.co/docs/reference/query-languages/eql/eql-syntax
[FUNCS]   https://www.elastic.co/docs/reference/query-languages/eql/eql-function-ref
[ARRAYS]  https://elastic.co/guide/en/elasticsearch/reference/current/mapping-array-type.html
[REGEXP]  https://elastic.co/docs/reference/query-languages/query-dsl/regexp-syntax
[EXISTS]  https://elastic.co/guide/en/elasticsearch/reference/8.3/query-dsl-exists-query.html
[SOURCE]  github.com/elastic/elasticsearch: EQL compiles field conditions to Query DSL
          (x-pack/plugin/eql/.../planner/QueryTranslator.java); `not` becomes bool.must_not
          (x-pack/plugin/ql/.../planner/ExpressionTranslators.java, class Nots) after the optimizer pushed it
          into comparisons (x-pack/plugin/ql/.../optimizer/OptimizerRules.java, BooleanSimplification);
          `:` patterns become LIKE patterns with `*`, `?` and no escape character (x-pack/plugin/eql/...
          /optimizer/Optimizer.java ReplaceWildcards, .../util/StringUtils.toLikePattern).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from sigma.backends.elasticsearch import EqlBackend
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation

from detpack.engines.eql_engine import EqlQuery, EqlSyntaxError, EqlUnsupportedError


def run(query: str, documents: Sequence[Mapping[str, Any]]) -> set[int]:
    return EqlQuery.parse(query).matching(documents)


def proc(**process: Any) -> dict[str, Any]:
    return {"event": {"category": ["process"]}, "process": process}


ARGS: list[dict[str, Any]] = [
    proc(args=["run", "--privileged", "alpine"]),  # 0: the interesting value is not the first one
    proc(args=["run", "alpine"]),  # 1
    proc(executable="/usr/bin/docker"),  # 2: no args at all
]


# ---- multi-valued fields: any value may match ----------------------------------------------------
# [ARRAYS] "Any field can contain zero or more values"; [SOURCE] EQL turns these conditions into term, terms,
# wildcard, regexp and prefix queries, which match a document when one of the field's values matches.


def test_colon_matches_any_value_of_an_array() -> None:
    # [SYNTAX] ":" (equal, case-insensitive), with wildcards
    assert run('any where process.args : "--PRIVILEGED"', ARGS) == {0}
    assert run('any where process.args : "*privileged*"', ARGS) == {0}
    assert run('any where process.args : ("x", "ALPINE")', ARGS) == {0, 1}


def test_double_equals_matches_any_value_of_an_array() -> None:
    # [SYNTAX] "==" (equal, case-sensitive); the second value is the one that matches
    assert run('any where process.args == "--privileged"', ARGS) == {0}
    assert run('any where process.args == "alpine"', ARGS) == {0, 1}


def test_like_insensitive_matches_any_value_of_an_array() -> None:
    # [SYNTAX] Pattern comparison keywords / Lookup operators: like~ with a list of patterns
    assert run('any where process.args like~ ("*PRIV*", "nothing")', ARGS) == {0}


def test_in_insensitive_matches_any_value_of_an_array() -> None:
    # [SYNTAX] Lookup operators: in~ is case-insensitive
    assert run('any where process.args in~ ("--Privileged", "nothing")', ARGS) == {0}


def test_cidrmatch_matches_any_value_of_an_array() -> None:
    # [FUNCS] cidrMatch; [SOURCE] becomes a terms query on the ip field
    docs: list[dict[str, Any]] = [
        {"destination": {"ip": ["8.8.8.8", "10.1.2.3"]}},
        {"destination": {"ip": ["8.8.8.8", "192.168.0.1"]}},
        {"destination": {"ip": "10.200.0.1"}},
        {"destination": {}},
    ]
    assert run('any where cidrMatch(destination.ip, "10.0.0.0/8")', docs) == {0, 2}
    assert run('any where cidrMatch(destination.ip, "10.0.0.0/8", "192.168.0.0/16")', docs) == {0, 1, 2}


def test_regex_insensitive_matches_any_value_of_an_array() -> None:
    # [SYNTAX] regex~ (case-insensitive); [REGEXP] the pattern must match the entire value
    assert run('any where process.args regex~ "--PRIV[a-z]+"', ARGS) == {0}
    assert run('any where process.args regex~ "PRIV"', ARGS) == set()  # no substring search


def test_not_over_an_array_is_false_when_any_value_matches() -> None:
    # [SYNTAX] not: true if the condition to the right is false; [SOURCE] not -> bool.must_not, which drops a
    # document as soon as one value matches, and keeps documents without the field
    assert run('any where not process.args == "--privileged"', ARGS) == {1, 2}
    assert run('any where process.args != "--privileged"', ARGS) == {1, 2}
    assert run('any where not process.args : "*PRIV*"', ARGS) == {1, 2}


def test_object_arrays_are_flattened_and_dotted_keys_are_fields() -> None:
    # [ARRAYS] "you cannot query each object independently of the other objects in the array"
    docs: list[dict[str, Any]] = [
        {"c": [{"name": "app", "privileged": False}, {"name": "side", "privileged": True}]},
        {"c": [{"name": "app", "privileged": False}]},
        {"c.name": "side"},
    ]
    assert run("any where c.privileged == true", docs) == {0}
    assert run('any where c.name == "side"', docs) == {0, 2}
    # the flattening loses which object a value came from, as in Elasticsearch
    assert run('any where c.name == "app" and c.privileged == true', docs) == {0}


# ---- case: == is case-sensitive, : is not; like/in/regex/functions need ~ ------------------------


def test_double_equals_is_case_sensitive_and_colon_is_not() -> None:
    # [SYNTAX] "== (equal, case-sensitive)", ": (equal, case-insensitive)", "!= (not equal, case-sensitive)"
    docs: list[dict[str, Any]] = [proc(name="powershell.exe"), proc(name="PowerShell.EXE")]
    assert run('any where process.name == "powershell.exe"', docs) == {0}
    assert run('any where process.name : "POWERSHELL.exe"', docs) == {0, 1}
    assert run('any where process.name != "powershell.exe"', docs) == {1}
    # [SYNTAX] "The == and != operators do not expand wildcard characters"
    assert run('any where process.name == "power*"', docs) == set()
    assert run('any where process.name == "power*"', [proc(name="power*")]) == {0}


def test_like_in_regex_and_functions_are_case_sensitive_without_tilde() -> None:
    # [SYNTAX] like / in / regex are case-sensitive, like~ / in~ / regex~ are not;
    # [SYNTAX] "Case-insensitive functions"
    docs: list[dict[str, Any]] = [proc(executable="/usr/bin/CURL"), proc(executable="/usr/bin/curl")]
    assert run('any where process.executable like "*/curl"', docs) == {1}
    assert run('any where process.executable like~ "*/curl"', docs) == {0, 1}
    assert run('any where process.executable in ("/usr/bin/curl")', docs) == {1}
    assert run('any where process.executable in~ ("/usr/bin/curl")', docs) == {0, 1}
    assert run('any where process.executable regex ".*curl"', docs) == {1}
    assert run('any where process.executable regex~ ".*curl"', docs) == {0, 1}
    # [FUNCS] endsWith: "Matching is case-sensitive by default"; endsWith~ is not
    assert run('any where endsWith(process.executable, "curl")', docs) == {1}
    assert run('any where endsWith~(process.executable, "curl")', docs) == {0, 1}


def test_wildcards_are_star_and_question_mark_without_escape_character() -> None:
    # [SYNTAX] Wildcards: "The ? wildcard matches exactly one character"; [SOURCE] toLikePattern picks an
    # escape character that cannot occur, so a backslash is an ordinary character
    docs: list[dict[str, Any]] = [
        proc(command_line="docs"),
        proc(command_line="doc"),
        proc(command_line="C:\\Temp\\x.exe"),
    ]
    assert run('any where process.command_line : "doc?"', docs) == {0}
    assert run('any where process.command_line like "doc?"', docs) == {0}
    assert run('any where process.command_line : "c:\\\\temp\\\\*"', docs) == {2}


def test_regex_is_lucene_regexp_syntax() -> None:
    # [REGEXP] "does not support anchor operators, such as ^ ... or $": they are ordinary characters, and the
    # expression must match the entire string; `@` (ANYSTRING, on by default) matches any string
    docs: list[dict[str, Any]] = [proc(executable="/bin/bash"), proc(executable="/bin/bash$")]
    assert run('any where process.executable regex ".*bash"', docs) == {0}
    assert run('any where process.executable regex ".*bash$"', docs) == {1}
    assert run('any where process.executable regex "@bash@"', docs) == {0, 1}
    # predefined classes: \w is [a-zA-Z_0-9], so it does not match the `$`
    assert run('any where process.executable regex "/\\\\w+/\\\\w+"', docs) == {0}
    # [REGEXP] case-insensitive matching leaves character ranges case-sensitive
    assert run('any where process.executable regex~ "/BIN/[a-z]+"', [proc(executable="/bin/BASH")]) == set()


# ---- missing fields and not ----------------------------------------------------------------------


def test_missing_field_comparisons_are_false_and_their_negation_true() -> None:
    # [SOURCE] `not` is bool.must_not, so a document without the field matches `not f == x` and `f != x`
    # (unlike the eql library's three-valued `not null`); corroborated by
    # https://github.com/elastic/elasticsearch/pull/114050 (Query DSL `!=` keeps documents without the field).
    # [EXISTS] null, [] and a missing key are all "no value"; [SYNTAX] Optional fields: `?f == null`.
    docs: list[dict[str, Any]] = [
        {"user": {"name": "root"}},
        {"user": {"name": "alice"}},
        {},
        {"user": {"name": None}},
        {"user": {"name": []}},
    ]
    assert run('any where user.name == "root"', docs) == {0}
    assert run('any where not user.name == "root"', docs) == {1, 2, 3, 4}
    assert run('any where user.name != "root"', docs) == {1, 2, 3, 4}
    assert run('any where not user.name : "ROOT"', docs) == {1, 2, 3, 4}
    assert run('any where not startsWith(user.name, "ro")', docs) == {1, 2, 3, 4}
    assert run("any where ?user.name == null", docs) == {2, 3, 4}
    assert run("any where ?user.name != null", docs) == {0, 1}


def test_negated_ranges_are_flipped_before_they_reach_the_index() -> None:
    # [SOURCE] OptimizerRules.BooleanSimplification rewrites `not port >= 1024` to `port < 1024`, a range
    # query: false without the field, true when any value is below 1024. CombineBinaryComparisons merges
    # `port > 1000 and port < 2000` into one range that a single value has to satisfy.
    docs: list[dict[str, Any]] = [
        {"destination": {"port": 22}},
        {"destination": {"port": [22, 8080]}},
        {},
        {"destination": {"port": [1500]}},
    ]
    assert run("any where not destination.port >= 1024", docs) == {0, 1}
    assert run("any where not (destination.port >= 1024 and destination.port <= 9000)", docs) == {0, 1}
    assert run("any where destination.port > 1000 and destination.port < 2000", docs) == {3}
    assert run("any where destination.port > 1000 or destination.port < 30", docs) == {0, 1, 3}


def test_event_category_matches_any_value() -> None:
    # [SYNTAX] "An event category is an indexed value of the event category field" (event.category);
    # `any` also matches documents without one
    docs: list[dict[str, Any]] = [
        {"event": {"category": ["network", "process"]}},
        {"event": {"category": "network"}},
        {"process": {"name": "x"}},
    ]
    assert run("process where true", docs) == {0}
    assert run("network where true", docs) == {0, 1}
    assert run("any where true", docs) == {0, 1, 2}


# ---- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('any where process.name == "a" and', "Invalid syntax"),
        ('any where process.name = "a"', "Compare with == instead of ="),  # [SYNTAX] "= is not supported"
        ("any where process.name == 'a'", "Invalid string literal"),  # [SYNTAX] single quotes unsupported
        ('any where process.name : "a\\*"', "Invalid syntax"),  # [SYNTAX] escape sequences: \n \r \t \\ \"
        ('any where process.name regex "(a"', "invalid regular expression"),
    ],
)
def test_syntax_errors_carry_the_parser_message(query: str, message: str) -> None:
    with pytest.raises(EqlSyntaxError, match=message) as raised:
        EqlQuery.parse(query)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    "query",
    [
        "sequence [any where true] [any where true]",
        "any where true | head 1",
        'any where process.name regex "a&b"',  # Lucene intersection operator
        'any where arrayContains(process.args, "a")',  # [SYNTAX] unsupported in Elasticsearch
    ],
)
def test_what_cannot_be_evaluated_is_refused(query: str) -> None:
    with pytest.raises(EqlUnsupportedError):
        EqlQuery.parse(query)


# ---- end to end: Sigma -> pySigma EqlBackend -> this engine --------------------------------------

ECS = ProcessingPipeline(
    name="test ECS mapping",
    priority=20,
    items=[
        ProcessingItem(
            identifier="ecs",
            transformation=FieldMappingTransformation(
                {
                    "Image": "process.executable",
                    "ParentImage": "process.parent.executable",
                    "CommandLine": "process.command_line",
                    "Args": "process.args",
                    "User": "user.name",
                    "Description": "process.pe.description",
                    "DestinationIp": "destination.ip",
                    "DestinationPort": "destination.port",
                }
            ),
        )
    ],
)


def convert(detection: str) -> str:
    rule = f"title: t\nlogsource:\n  category: process_creation\n  product: linux\ndetection:\n{detection}"
    (query,) = EqlBackend(processing_pipeline=ECS).convert(SigmaCollection.from_yaml(rule))
    assert isinstance(query, str)
    return query


def ecs(**fields: Any) -> dict[str, Any]:
    """A process event from dotted ECS names, e.g. ecs(**{"process.executable": "/bin/sh"})."""
    document: dict[str, Any] = {"event": {"category": ["process"]}}
    for dotted, value in fields.items():
        *parents, leaf = dotted.split(".")
        node = document
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return document


PRIVILEGED = """\
  selection:
    Image|endswith: /docker
    CommandLine|contains|all: [' run ', '--privileged']
  filter:
    User: root
  condition: selection and not filter
"""
DOWNLOAD = """\
  tools:
    Image|endswith: [/curl, /wget]
  net:
    DestinationIp|cidr: 10.0.0.0/8
  port:
    DestinationPort|gte: 4444
  condition: tools and (net or port)
"""
SHELL_CHILD = """\
  sel:
    Args|contains: privileged
    ParentImage|re: '.*(bash|sh)'
  nodesc:
    Description: null
  condition: sel and nodesc
"""
PREFIX_AND_SINGLE_CHAR = """\
  sel:
    User|startswith: adm
    CommandLine: 'id?'
  condition: sel
"""
NOT_PORT_LIST = """\
  sel:
    DestinationPort: [22, 2222]
  condition: not sel
"""


@pytest.mark.parametrize(
    ("detection", "emitted", "documents", "expected"),
    [
        (
            PRIVILEGED,
            'process.executable:"*/docker" and (process.command_line:"* run *"',
            [
                ecs(
                    **{
                        "process.executable": "/usr/bin/docker",
                        "process.command_line": "docker run --privileged a",
                        "user.name": "alice",
                    }
                ),
                # ":" is case-insensitive, so ROOT is filtered out like root
                ecs(
                    **{
                        "process.executable": "/usr/bin/docker",
                        "process.command_line": "docker run --privileged a",
                        "user.name": "ROOT",
                    }
                ),
                # upper-case everywhere still matches ":"; no user at all passes `not user.name:"root"`
                ecs(
                    **{
                        "process.executable": "/usr/bin/Docker",
                        "process.command_line": "DOCKER RUN --PRIVILEGED a",
                    }
                ),
                ecs(**{"process.executable": "/usr/bin/docker", "process.command_line": "docker ps"}),
                ecs(
                    **{
                        "process.executable": "/usr/bin/dockerd",
                        "process.command_line": "dockerd run --privileged",
                    }
                ),
            ],
            {0, 2},
        ),
        (
            DOWNLOAD,
            'like~ ("*/curl", "*/wget")) and '
            '(cidrMatch(destination.ip, "10.0.0.0/8") or destination.port >= 4444)',
            [
                # the internal address is the second of two
                ecs(**{"process.executable": "/usr/bin/curl", "destination.ip": ["8.8.8.8", "10.9.9.9"]}),
                ecs(
                    **{
                        "process.executable": "/usr/bin/WGET",
                        "destination.ip": "1.1.1.1",
                        "destination.port": 4444,
                    }
                ),
                ecs(
                    **{
                        "process.executable": "/usr/bin/curl",
                        "destination.ip": "1.1.1.1",
                        "destination.port": 443,
                    }
                ),
                ecs(**{"process.executable": "/usr/bin/nc", "destination.ip": "10.0.0.1"}),
            ],
            {0, 1},
        ),
        (
            SHELL_CHILD,
            'process.args:"*privileged*" and process.parent.executable regex~ ".*(bash|sh)") and '
            "(?process.pe.description == null)",
            [
                ecs(**{"process.args": ["run", "--privileged"], "process.parent.executable": "/bin/BASH"}),
                ecs(
                    **{
                        "process.args": ["run", "--privileged"],
                        "process.parent.executable": "/bin/bash",
                        "process.pe.description": "x",
                    }
                ),
                ecs(**{"process.args": ["run"], "process.parent.executable": "/bin/sh"}),
                ecs(**{"process.args": ["--privileged"], "process.parent.executable": "/bin/zsh5"}),
            ],
            {0},
        ),
        (
            PREFIX_AND_SINGLE_CHAR,
            'user.name:"adm*" and process.command_line:"id?"',
            [
                ecs(**{"user.name": "Admin", "process.command_line": "idx"}),
                ecs(**{"user.name": "admin", "process.command_line": "id"}),
                ecs(**{"user.name": "sysadm", "process.command_line": "id1"}),
            ],
            {0},
        ),
        (
            NOT_PORT_LIST,
            "not (destination.port like~ (22, 2222))",
            [
                ecs(**{"destination.port": 22}),
                ecs(**{"destination.port": [80, 2222]}),
                ecs(**{"destination.port": 443}),
                ecs(),
            ],
            {2, 3},
        ),
    ],
    ids=["privileged-container", "download-tool", "shell-child", "prefix-single-char", "not-port-list"],
)
def test_sigma_rules_converted_by_pysigma(
    detection: str, emitted: str, documents: list[dict[str, Any]], expected: set[int]
) -> None:
    query = convert(detection)
    assert emitted in query
    assert EqlQuery.parse(query).matching(documents) == expected


def test_pysigma_cased_contains_never_matches_in_elasticsearch() -> None:
    # pySigma renders `|contains|cased` as `== "*Run*"`, but [SYNTAX] "The == and != operators do not expand
    # wildcard characters": only the literal text *Run* matches
    query = convert("  sel:\n    CommandLine|contains|cased: Run\n  condition: sel\n")
    assert query == 'any where process.command_line == "*Run*"'
    docs: list[dict[str, Any]] = [
        ecs(**{"process.command_line": "docker Run x"}),
        ecs(**{"process.command_line": "*Run*"}),
    ]
    assert EqlQuery.parse(query).matching(docs) == {1}


def test_pysigma_regex_with_a_slash_is_invalid_eql() -> None:
    # pySigma escapes `/` in regexes as `\/`, which is not an EQL string escape ([SYNTAX] escape sequences)
    query = convert("  sel:\n    ParentImage|re: '.*/bash'\n  condition: sel\n")
    assert '"' + ".*\\/bash" + '"' in query
    with pytest.raises(EqlSyntaxError):
        EqlQuery.parse(query)


def test_back_quoted_dotted_field_names_are_paths() -> None:
    # Regression: `a.b/c` (back-quoted because of the "/") was looked up as one top-level key, so the
    # pack's Kubernetes rules never matched in EQL. Elasticsearch field names are dotted paths.
    docs = [{"kubernetes": {"audit": {"annotations": {"authorization_k8s_io/decision": "allow"}}}}]
    query = 'any where `kubernetes.audit.annotations.authorization_k8s_io/decision`:"allow"'
    assert EqlQuery.parse(query).matching(docs) == {0}
