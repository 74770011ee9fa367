"""The ES|QL engine: Elasticsearch 9.1's grammar, its semantics, executed by DuckDB over ECS documents.

Every expectation below is written by hand from Elasticsearch's documentation (or, where the pages are silent,
its source code), not from this engine's output. Pages cited (found with the documentation search, read
whole; the 9.x text is the Markdown in elastic/elasticsearch `docs/reference/query-languages/esql/`):

[NULL]    "Working with NULL values in ES|QL"
          https://www.elastic.co/docs/reference/query-languages/esql/esql-null-values
[MV]      "ES|QL multivalued fields" (sections Duplicate values, null in a list, Functions)
          https://elastic.co/docs/reference/query-languages/esql/esql-multivalued-fields
[LIMITS]  "ES|QL limitations" (Supported/Unsupported types; "text fields behave like keyword fields":
          "any ES|QL query on a text field is case-sensitive", "the LIKE operator is case-sensitive", "LIKE
          tries to match the whole string"; "Querying a column with an unsupported type returns an error")
          https://elastic.co/guide/en/elasticsearch/reference/current/esql-limitations.html
[FLAT]    "ES|QL and flattened fields": only the root of a flattened field is a column; sub-fields need
          FIELD_EXTRACT (added after 9.1), see also elastic/elasticsearch#143494 ("Flattened fields aren't
          supported, yet, in ESQL"; `foo.bar` under a flattened `foo` is treated as an unmapped field)
          https://www.elastic.co/docs/reference/query-languages/esql/esql-flattened-fields
[CAST]    "ES|QL implicit casting": string literals are cast to date, ip, version and boolean in operators
          https://elastic.co/docs/reference/query-languages/esql/esql-implicit-casting
[LIKE]    ES|QL operators, LIKE / RLIKE: "Matching the exact characters `*` and `.` will require escaping. The
          escape character is backslash `\\`", triple-quoted strings, `like ("a*", "b?")` lists (9.1);
          the escape rule is esql-core StringUtils.wildcardToJavaPattern ("Invalid sequence - escape
          character is not followed by special wildcard char")
[REGEXP]  "Regular expression syntax" (Lucene; RLIKE uses it; whole-string match, `@` any string, `#` empty,
          `&`, `~`, `<n-m>` optional operators) https://elastic.co/docs/reference/query-languages/query-dsl/regexp-syntax
[CIDR]    ES|QL CIDR_MATCH: "Returns true if the provided IP is contained in one of the provided CIDR blocks."
[TOLOWER] elastic/elasticsearch#124676 "ESQL: TO_LOWER process all values" (merged for 9.1)
[FROM]    "ES|QL FROM command" (comma lists, wildcards, METADATA) and "ES|QL metadata fields"
          https://elastic.co/docs/reference/query-languages/esql/commands/from
          https://elastic.co/docs/reference/query-languages/esql/esql-metadata-fields
[DYNAMIC] "Dynamic field mapping" https://elastic.co/docs/manage-data/data-store/mapping/dynamic-field-mapping
[COERCE]  "coerce": "Strings will be coerced to numbers. Floating points will be truncated for integer
          values."
          https://elastic.co/docs/reference/elasticsearch/mapping-reference/coerce
[VERIFY]  Elasticsearch's ES|QL analyser messages: "Unknown column [x]", "first argument of [...] is [long] so
          second argument must also be [long] but was [keyword]", "Cannot use field [x] with unsupported type"
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from sigma.backends.elasticsearch import ESQLBackend
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation

from detpack.engines.esql import (
    EsqlDocumentError,
    EsqlQuery,
    EsqlSyntaxError,
    EsqlTable,
    EsqlUnknownColumnError,
    EsqlUnknownIndexError,
    EsqlUnsupportedError,
    EsqlVerificationError,
)

# A slice of the ECS / integration field lists, with their Elasticsearch types.
FIELDS: dict[str, str] = {
    "@timestamp": "date",
    "event.code": "keyword",
    "process.executable": "keyword",
    "process.name": "keyword",
    "process.command_line": "wildcard",
    "process.command_line.text": "match_only_text",  # ECS multi-field
    "process.args": "keyword",
    "process.pid": "long",
    "process.interactive": "boolean",
    "process.parent.executable": "keyword",
    "user.name": "keyword",
    "destination.ip": "ip",
    "destination.port": "long",
    "message": "match_only_text",
    "data_stream.dataset": "constant_keyword",
    "docker.event.actor.attributes": "flattened",
    "kubernetes.audit.verb": "keyword",
    # a dynamic template: its concrete fields appear with the documents that carry them
    "kubernetes.audit.annotations.*": "object(text)",
}


def run(query: str, documents: Sequence[Mapping[str, Any]], **kwargs: Any) -> set[int]:
    return EsqlQuery.parse(query).matching(documents, FIELDS, **kwargs)


def where(condition: str, documents: Sequence[Mapping[str, Any]]) -> set[int]:
    return run(f"from * | where {condition}", documents)


def proc(**process: Any) -> dict[str, Any]:
    return {"process": process}


# ---- case sensitivity ------------------------------------------------------------------------------------


def test_equality_and_like_are_case_sensitive() -> None:
    # [LIMITS] "any ES|QL query on a text field is case-sensitive" (keyword fields are exact by definition),
    # "the LIKE operator is case-sensitive" and "tries to match the whole string".
    docs = [proc(name="docker"), proc(name="Docker"), proc(name="dockerd")]
    assert where('process.name == "docker"', docs) == {0}
    assert where('process.name like "docker"', docs) == {0}
    assert where('process.name like "Dock*"', docs) == {1}
    assert where('process.name in ("docker", "DOCKERD")', docs) == {0}
    assert where('starts_with(process.name, "D")', docs) == {1}
    assert where('to_lower(process.name) == "docker"', docs) == {0, 1}


def test_text_field_compares_the_whole_value_case_sensitively() -> None:
    # [LIMITS] "text fields behave like keyword fields": no analysis, whole string, case-sensitive.
    docs = [{"message": "Container started"}, {"message": "container started"}]
    assert where('message == "Container started"', docs) == {0}
    assert where('message == "started"', docs) == set()
    assert where('message like "*started"', docs) == {0, 1}
    assert where('message rlike "[Cc]ontainer.*"', docs) == {0, 1}


# ---- three-valued logic -------------------------------------------------------------------------------


def test_missing_field_comparisons_and_their_negations_are_null() -> None:
    # [NULL] "Comparisons involving NULL evaluate to NULL", "NOT NULL is still NULL", WHERE keeps only true:
    # both `!=` and `NOT ==` drop documents without the field; add `OR field IS NULL` to keep them.
    docs = [{"user": {"name": "root"}}, {"user": {"name": "alice"}}, {"process": {"name": "sh"}}]
    assert where('user.name != "root"', docs) == {1}
    assert where('not user.name == "root"', docs) == {1}
    assert where('not (user.name == "root")', docs) == {1}
    assert where('user.name != "root" or user.name is null', docs) == {1, 2}
    assert where("user.name is null", docs) == {2}
    assert where("user.name is not null", docs) == {0, 1}
    assert where('not user.name like "r*"', docs) == {1}


def test_and_or_follow_the_three_valued_truth_tables() -> None:
    # [NULL] "Boolean logic with NULL": NULL OR true = true, NULL AND false = false, NULL OR false = NULL.
    docs = [{"process": {"name": "sh"}}]  # user.name is missing (null); process.name is "sh"
    assert where('user.name == "root" or process.name == "sh"', docs) == {0}  # null OR true
    assert where('not (user.name == "root" and process.name == "bash")', docs) == {0}  # NOT(null AND false)
    assert where('not (user.name == "root" or process.name == "bash")', docs) == set()  # NOT(null OR false)
    assert where('user.name == "root" and process.name == "sh"', docs) == set()  # null AND true


def test_in_with_a_null_field_or_a_null_item() -> None:
    # [NULL] comparisons with NULL are NULL; IN is an OR of equalities: a missing field gives NULL either way,
    # and a list holding NULL gives NULL (not false) when no item equals the value.
    docs = [{"user": {"name": "alice"}}, {"user": {"name": "root"}}, {}]
    assert where('user.name in ("root", "admin")', docs) == {1}
    assert where('user.name not in ("root", "admin")', docs) == {0}
    assert where('not user.name in ("root", "admin")', docs) == {0}
    assert where('user.name in ("root", null)', docs) == {1}
    assert where('user.name not in ("root", null)', docs) == set()


# ---- multi-valued fields -------------------------------------------------------------------------------

ARGS: list[dict[str, Any]] = [
    proc(args=["docker", "run", "--privileged"], name="docker"),  # 0: three values
    proc(args=["--privileged"], name="docker"),  # 1: a one-element array is a single value
    proc(name="docker"),  # 2: no args
]


def test_comparisons_on_a_multivalued_field_are_null() -> None:
    # [MV] "Unless otherwise documented functions will return null when applied to a multivalued field"
    # (with a "single-value function encountered multi-value" warning): the row is filtered out, and its
    # negation too, because NOT NULL is NULL [NULL].
    assert where('process.args == "--privileged"', ARGS) == {1}
    assert where('not process.args == "--privileged"', ARGS) == set()
    assert where('process.args != "x"', ARGS) == {1}
    assert where('process.args in ("run", "--privileged")', ARGS) == {1}
    assert where('process.args like "*priv*"', ARGS) == {1}
    assert where('process.args rlike ".*priv.*"', ARGS) == {1}
    assert where('starts_with(process.args, "--")', ARGS) == {1}
    assert where("length(process.args) > 0", ARGS) == {1}
    assert where("length(process.args) is null", ARGS) == {0, 2}


def test_is_null_of_a_multivalued_field_is_false() -> None:
    # [MV] "A multivalued field with one or more values is different from NULL" ([NULL], Multivalued fields).
    assert where("process.args is null", ARGS) == {2}
    assert where("process.args is not null", ARGS) == {0, 1}


def test_to_lower_keeps_every_value() -> None:
    # [TOLOWER] TO_LOWER/TO_UPPER process every value (9.1), so the result is still multi-valued: not null,
    # and comparing it is null again [MV].
    docs = [proc(args=["RUN", "X"]), proc(args=["RUN"])]
    assert where("to_lower(process.args) is not null", docs) == {0, 1}
    assert where('to_lower(process.args) == "run"', docs) == {1}
    assert where('to_upper(process.args) == "RUN"', docs) == {1}


def test_keyword_duplicates_and_array_nulls_do_not_make_a_field_multivalued() -> None:
    # [MV] "Some field types, like keyword remove duplicate values on write" and "null values in a list are
    # not preserved at the storage layer"; "other types, like long don't remove duplicates".
    docs: list[dict[str, Any]] = [
        {"user": {"name": ["root", "root"]}, "process": {"pid": [7, 7]}},
        {"user": {"name": ["root", None]}, "process": {"pid": [7, None]}},
        {"user": {"name": []}},
    ]
    assert where('user.name == "root"', docs) == {0, 1}
    assert where("process.pid == 7", docs) == {1}  # [7, 7] stays two longs
    assert where("user.name is null", docs) == {2}  # an empty array is no value


def test_arrays_of_objects_flatten_into_one_multivalued_field() -> None:
    # [MV] + Elasticsearch object arrays: `process: [{name: a}, {name: b}]` gives process.name both values.
    docs = [{"process": [{"name": "a"}, {"name": "b"}]}, {"process": [{"name": "a"}]}]
    assert where('process.name == "a"', docs) == {1}
    assert where("process.name is not null", docs) == {0, 1}


# ---- like / rlike ----------------------------------------------------------------------------------------


def test_like_wildcards_and_escapes() -> None:
    # [LIKE] `*` any string, `?` one character; `\*` (written "\\*" or """\*""") is a literal asterisk;
    # SQL's `%` and `_` mean nothing special in ES|QL.
    docs = [
        proc(name="a*b"),
        proc(name="axb"),
        proc(name="a%b"),
        proc(name="a_b"),
        proc(name="ab"),
        proc(name="a\\b"),
    ]
    assert where('process.name like "a?b"', docs) == {0, 1, 2, 3, 5}
    assert where('process.name like "a\\\\*b"', docs) == {0}
    assert where('process.name like """a\\*b"""', docs) == {0}
    assert where('process.name like "a%b"', docs) == {2}
    assert where('process.name like "a_b"', docs) == {3}
    assert where('process.name like "a*"', docs) == {0, 1, 2, 3, 4, 5}
    assert where('process.name like """a\\\\b"""', docs) == {5}
    assert where('process.name like ("ab", "a_*")', docs) == {3, 4}  # a list: any pattern (9.1)
    assert where('process.name not like ("a?b")', docs) == {4}


def test_like_rejects_a_backslash_before_an_ordinary_character() -> None:
    # [LIKE] the escape may only precede `*`, `?` or `\`. pySigma's ES|QL backend 2.1.1 renders the Sigma
    # value `\tmp\` as `like "*\\tmp\\*"`, i.e. the pattern `*\tmp\*`: Elasticsearch refuses the query.
    with pytest.raises(EsqlSyntaxError, match=r"Invalid pattern for LIKE \[\*\\tmp\\\*\]") as info:
        EsqlQuery.parse('from * | where process.command_line like "*\\\\tmp\\\\*"')
    assert (info.value.line, info.value.column) == (1, 16)
    with pytest.raises(EsqlSyntaxError, match="escape character is not followed"):
        EsqlQuery.parse('from * | where process.name like "abc\\\\"')


def test_rlike_is_a_whole_value_lucene_regexp() -> None:
    # [REGEXP] the pattern must match the entire value; `^` and `$` are no anchors; `@` is any string;
    # `\d` a digit; Lucene has no `(?i)` flag: "(?i)docker" is a group holding the literal text "?i".
    docs = [
        proc(name="docker"),
        proc(name="dockerd"),
        proc(name="^docker$"),
        proc(name="?idocker"),
        proc(name="d0"),
    ]
    assert where('process.name rlike "docker"', docs) == {0}
    assert where('process.name rlike "docker.*"', docs) == {0, 1}
    assert where('process.name rlike "\\\\^docker\\\\$"', docs) == {2}
    assert where('process.name rlike "^docker$"', docs) == {2}
    assert where('process.name rlike "(?i)DOCKER"', docs) == set()
    assert where('process.name rlike "(?i)docker"', docs) == {3}
    assert where('process.name rlike "@er"', docs) == {0, 3}  # docker, ?idocker: anything, then "er"
    assert where('process.name rlike """d\\d"""', docs) == {4}
    assert where('process.name rlike "d[0-9]|dockerd"', docs) == {1, 4}


def test_rlike_refuses_lucene_only_operators_and_invalid_patterns() -> None:
    # [REGEXP] Elasticsearch enables `&` (intersection), `~` (complement) and `<n-m>` (interval): RE2 has no
    # equivalent, so the engine refuses rather than guesses. `\t` is "invalid character class" in Lucene.
    for pattern in ("a.*&.*b", "~(a.*)", "port<1-1024>"):
        with pytest.raises(EsqlUnsupportedError, match="Lucene regexp"):
            EsqlQuery.parse(f'from * | where process.name rlike "{pattern}"')
    with pytest.raises(EsqlSyntaxError, match=r"Invalid pattern for RLIKE .*invalid character class"):
        EsqlQuery.parse('from * | where process.name rlike """a\\tb"""')
    with pytest.raises(EsqlSyntaxError, match="Invalid pattern for RLIKE"):
        EsqlQuery.parse('from * | where process.name rlike "(ab"')


# ---- literals and names --------------------------------------------------------------------------------


def test_string_literal_escapes_and_triple_quotes() -> None:
    # [LIKE] "Since also backslash is a special character in string literals, it will require further
    # escaping"; triple-quoted strings are raw.
    docs = [proc(name='say "hi"'), proc(name="C:\\tmp"), proc(name="a\tb")]
    assert where('process.name == "say \\"hi\\""', docs) == {0}
    assert where('process.name == "C:\\\\tmp"', docs) == {1}
    assert where('process.name == """C:\\tmp"""', docs) == {1}
    assert where('process.name == "a\\tb"', docs) == {2}


def test_backquoted_field_names_and_dynamic_template_fields() -> None:
    # The Kubernetes integration maps `kubernetes.audit.annotations.*` with a dynamic template (text); a
    # back-quoted identifier is one name, slash and dots included. [LIMITS] text: whole value, exact case.
    docs: list[dict[str, Any]] = [
        {"kubernetes": {"audit": {"annotations": {"authorization_k8s_io/decision": "allow"}}}},
        {"kubernetes": {"audit": {"annotations": {"authorization_k8s_io/decision": "forbid"}}}},
        {"kubernetes": {"audit": {"verb": "get"}}},
    ]
    decision = "`kubernetes.audit.annotations.authorization_k8s_io/decision`"
    assert where(f'{decision} == "allow"', docs) == {0}
    assert where(f'{decision} == "Allow"', docs) == set()
    assert where(f"{decision} is null", docs) == {2}
    assert where('`kubernetes.audit`.verb == "get"', docs) == {2}


def test_numbers_booleans_and_ordering() -> None:
    # [COERCE] "42" is indexed as the long 42; boolean fields take "false"; [NULL] comparisons are typed.
    docs: list[dict[str, Any]] = [
        {"process": {"pid": 1, "interactive": True}, "destination": {"port": 22}},
        {"process": {"pid": "42", "interactive": "false"}, "destination": {"port": 8080}},  # coerced on index
        {"process": {"pid": -5}},
    ]
    assert where("process.pid == 42", docs) == {1}
    assert where("process.pid < 0", docs) == {2}
    assert where("process.pid == -5", docs) == {2}
    assert where("process.pid >= 1.5", docs) == {1}
    assert where("destination.port >= 1024", docs) == {1}
    assert where("process.interactive", docs) == {0}
    assert where("process.interactive == false", docs) == {1}
    assert where('process.interactive == "true"', docs) == {0}  # [CAST] string -> boolean


def test_ip_fields_compare_as_addresses() -> None:
    # [CAST] string literals are implicitly cast to ip; Elasticsearch stores IPv4 as IPv4-mapped IPv6, so
    # ::ffff:10.1.2.3 is 10.1.2.3. [CIDR] cidr_match is true when any block contains the address.
    docs: list[dict[str, Any]] = [
        {"destination": {"ip": "10.1.2.3"}},
        {"destination": {"ip": "::ffff:10.1.2.3"}},
        {"destination": {"ip": "192.168.7.1"}},
        {"destination": {"ip": "2001:db8::1"}},
        {"destination": {"ip": ["10.0.0.1", "10.0.0.2"]}},  # multi-valued: null [MV]
        {},
    ]
    assert where('destination.ip == "10.1.2.3"', docs) == {0, 1}
    assert where('cidr_match(destination.ip, "10.0.0.0/8")', docs) == {0, 1}
    assert where('cidr_match(destination.ip, "10.0.0.0/8", "192.168.0.0/16")', docs) == {0, 1, 2}
    assert where('cidr_match(destination.ip, "2001:db8::/32")', docs) == {3}
    assert where('not cidr_match(destination.ip, "10.0.0.0/8")', docs) == {2, 3}
    assert where('destination.ip > "192.168.0.0"', docs) == {2, 3}


def test_dates_compare_as_instants() -> None:
    # [CAST] a string literal compared with a date is cast to a date; Elasticsearch's default date format
    # is strict_date_optional_time||epoch_millis, and it stores UTC instants.
    docs: list[dict[str, Any]] = [
        {"@timestamp": "2025-03-01T10:00:00.000Z"},
        {"@timestamp": "2025-03-01T12:00:00+02:00"},  # the same instant
        {"@timestamp": 1740826800000},  # epoch millis: 2025-03-01T11:00:00Z
    ]
    assert where('@timestamp == "2025-03-01T10:00:00Z"', docs) == {0, 1}
    assert where('@timestamp > "2025-03-01T10:30:00.000Z"', docs) == {2}


def test_case_functions_apply_full_unicode_mappings() -> None:
    # ES|QL's ToUpper/ToLower call Java's String.toUpperCase/toLowerCase (PR #104309: `process(BytesRef val,
    # Locale locale)` returns `val.utf8ToString().toLowerCase(locale)`): "ß" upper-cases to "SS".
    docs = [proc(name="straße"), proc(name="İ")]
    assert where('to_upper(process.name) == "STRASSE"', docs) == {0}
    assert where('to_lower(process.name) == "i\u0307"', docs) == {1}  # i + combining dot above


def test_documents_are_indexed_against_the_mapping() -> None:
    # Elasticsearch rejects a value where the mapping has an object and an object where it has a value;
    # fields the mapping lacks are not columns (listed for the caller to see).
    table = EsqlTable([{"process": {"name": "sh", "title": "x"}}], FIELDS)
    assert table.unmapped_fields == {"process.title"}
    with pytest.raises(EsqlDocumentError, match=r"\[process\] is an object in the mapping"):
        EsqlTable([{"process": "sh"}], FIELDS)
    with pytest.raises(EsqlDocumentError, match=r"\[user.name\] is a keyword field"):
        EsqlTable([{"user": {"name": {"first": "a"}}}], FIELDS)


def test_object_fields_map_their_subfields_on_first_sight() -> None:
    # The project's field lists write a dynamic template as `name: object(type)` or `name.*: object(type)`;
    # `*: object` stands for a data stream with dynamic mapping ([DYNAMIC]: true/false ->
    # boolean, integer -> long, double -> float, a date-looking string -> date, other strings -> text with a
    # keyword sub-field). A field seen in no document is no column [VERIFY].
    fields = {"winlog.event_data": "object(keyword)", "user.name": "keyword", "*": "object"}
    docs: list[dict[str, Any]] = [
        {"winlog": {"event_data": {"LogonId": 5, "User": "root"}}, "labels": {"n": 3, "up": True}},
        {"labels": {"n": 7, "since": "2025-03-01T10:00:00Z", "team": "blue"}},
    ]

    def run_with(condition: str) -> set[int]:
        return EsqlQuery.parse(f"from * | where {condition}").matching(docs, fields)

    assert run_with('winlog.event_data.LogonId == "5"') == {0}  # indexed as keyword
    assert run_with("labels.n > 4") == {1}  # long
    assert run_with("labels.up") == {0}  # boolean
    assert run_with('labels.since < "2025-03-02"') == {1}  # date detection, implicit cast [CAST]
    assert run_with('labels.team == "blue"') == {1}
    with pytest.raises(EsqlVerificationError, match="second argument must also be"):
        run_with('labels.n == "3"')
    with pytest.raises(EsqlUnknownColumnError, match=r"winlog\.event_data\.Other"):
        run_with('winlog.event_data.Other == "x"')


def test_multi_fields_and_constant_keyword() -> None:
    # A multi-field indexes the parent's value (ECS process.command_line.text); a constant_keyword holds one
    # value for the whole index, even for documents that do not carry it.
    docs = [
        {"process": {"command_line": "docker run alpine"}, "data_stream": {"dataset": "docker.events"}},
        {"process": {"command_line": "ls"}},
    ]
    assert where('process.command_line.text == "docker run alpine"', docs) == {0}
    assert where('data_stream.dataset == "docker.events"', docs) == {0, 1}
    with pytest.raises(EsqlDocumentError, match="constant_keyword"):
        where("true", [{"data_stream": {"dataset": "a"}}, {"data_stream": {"dataset": "b"}}])


# ---- errors Elasticsearch raises -----------------------------------------------------------------------


def test_syntax_error_names_line_and_column() -> None:
    with pytest.raises(EsqlSyntaxError) as info:
        EsqlQuery.parse('from *\n| where process.name == "a" and and x')
    assert (info.value.line, info.value.column) == (2, 33)  # the second `and`
    assert str(info.value).startswith("line 2:33: ")
    with pytest.raises(EsqlSyntaxError, match="line 1:"):
        EsqlQuery.parse('from * | where process.name == "a")')  # the ANTLR runtime's "Empty Stack" case
    with pytest.raises(EsqlSyntaxError, match="token recognition error"):
        EsqlQuery.parse('from * | where process.name == "a\\*"')  # \* is no string escape


def test_unknown_column_is_an_error_even_if_documents_have_the_field() -> None:
    # [VERIFY] Elasticsearch fails the query with "Unknown column [x]": the columns come from the mapping.
    docs = [{"process": {"name": "sh", "title": "x"}}]
    with pytest.raises(EsqlUnknownColumnError, match=r"line 1:16: Unknown column \[process.title\]"):
        where('process.title == "x"', docs)
    with pytest.raises(EsqlUnknownColumnError, match=r"did you mean .*process\.name"):
        where('process.nme == "x"', docs)
    # a dynamic-template field exists only once a document created it
    with pytest.raises(EsqlUnknownColumnError, match=r"annotations\.foo"):
        where('`kubernetes.audit.annotations.foo` == "x"', docs)


def test_flattened_fields() -> None:
    # [FLAT] ES|QL 9.1 resolves only the flattened root, whose type it does not support [LIMITS] ("Querying a
    # column with an unsupported type returns an error"); a key inside it is no column at all.
    docs = [{"docker": {"event": {"actor": {"attributes": {"image": "alpine", "name": "x"}}}}}]
    with pytest.raises(EsqlUnknownColumnError, match=r"docker.event.actor.attributes.image.*flattened"):
        where('docker.event.actor.attributes.image == "alpine"', docs)
    with pytest.raises(EsqlVerificationError, match=r"unsupported type \[flattened\]"):
        where("docker.event.actor.attributes is not null", docs)


def test_type_mismatches_are_rejected() -> None:
    # [VERIFY] + [CAST]: no implicit cast between strings and numbers; LIKE wants a string, CIDR_MATCH an ip.
    docs = [{"event": {"code": "4688"}, "process": {"pid": 1}}]
    with pytest.raises(EsqlVerificationError, match=r"is \[keyword\] so second argument must also be"):
        where("event.code == 4688", docs)
    with pytest.raises(EsqlVerificationError, match=r"is \[long\] so second argument must also be"):
        where('process.pid == "1"', docs)
    with pytest.raises(EsqlVerificationError, match=r"must be \[keyword or text\]"):
        where('process.pid like "1*"', docs)
    with pytest.raises(EsqlVerificationError, match=r"must be \[ip\]"):
        where('cidr_match(process.executable, "10.0.0.0/8")', docs)
    with pytest.raises(EsqlVerificationError, match="Condition expression needs to be boolean"):
        where("process.executable", docs)


def test_from_records_the_index_and_checks_it() -> None:
    # [FROM] "A list of indices, data streams or aliases. Supports wildcards"; `-pattern` excludes; METADATA
    # names metadata fields. A query reading other indices would not see these documents at all.
    query = EsqlQuery.parse(
        "from logs-docker.events-*, -logs-docker.events-old metadata _id, _index | where true"
    )
    assert query.index_patterns == ("logs-docker.events-*", "-logs-docker.events-old")
    assert query.index_pattern == "logs-docker.events-*,-logs-docker.events-old"
    assert query.metadata == ("_id", "_index")
    docs = [{"process": {"name": "sh"}}]
    assert query.matching(docs, FIELDS, index="logs-docker.events-default") == {0}
    with pytest.raises(EsqlUnknownIndexError):
        query.matching(docs, FIELDS, index="logs-kubernetes.audit_logs-default")
    with pytest.raises(EsqlUnknownIndexError):
        query.matching(docs, FIELDS, index="logs-docker.events-old")
    assert run("from * | where true", docs, index="logs-kubernetes.audit_logs-default") == {0}


def test_unsupported_parts_of_the_language_are_refused() -> None:
    # Valid ES|QL ([FROM], [LIKE], [LIMITS] full-text search) that this engine does not evaluate: an error,
    # never a silent wrong answer.
    for query in (
        "from * | where true | keep process.name",
        "from * | stats count(*)",
        "row a = 1",
        "from * | where process.pid + 1 > 2",
        'from * | where match(message, "x")',
        'from * | where process.pid::keyword == "1"',
        "from remote:logs-* | where true",
        "from <logs-{now/d}> | where true",
    ):
        with pytest.raises(EsqlUnsupportedError):
            EsqlQuery.parse(query)


def test_documents_elasticsearch_would_reject() -> None:
    # [COERCE] only numeric strings are coerced; "abc" in a long (or "not-an-ip" in an ip) is rejected.
    with pytest.raises(EsqlDocumentError, match=r"document 1: field \[process.pid\]"):
        EsqlTable([{"process": {"pid": 1}}, {"process": {"pid": "abc"}}], FIELDS)
    with pytest.raises(EsqlDocumentError, match=r"destination\.ip"):
        EsqlTable([{"destination": {"ip": "not-an-ip"}}], FIELDS)


def test_sql_is_available_for_messages() -> None:
    # The DuckDB translation, shown in error messages: [LIKE] `*` becomes SQL's `%`; [NULL] `!=` keeps 3VL.
    query = EsqlQuery.parse('from * | where process.name like "do*" and user.name != "root"')
    assert query.sql.startswith('SELECT "_esql_row" FROM esql_docs WHERE ')
    assert "LIKE 'do%' ESCAPE" in query.sql
    table = EsqlTable([proc(name="docker")], FIELDS)
    assert "\"user.name\" <> 'root'" in query.compile(table)


# ---- end to end: Sigma rules converted by pySigma's ES|QL backend ---------------------------------------

PIPELINE = ProcessingPipeline(
    name="inline ECS mapping",
    priority=20,
    items=[
        ProcessingItem(
            FieldMappingTransformation(
                {
                    "Image": "process.executable",
                    "CommandLine": "process.command_line",
                    "ParentImage": "process.parent.executable",
                    "User": "user.name",
                    "Args": "process.args",
                    "DestinationIp": "destination.ip",
                    "DestinationPort": "destination.port",
                }
            )
        )
    ],
)


def convert(detection: str) -> str:
    rule = f"""
title: test
id: 5f8b1c1e-3a52-4c55-9b0e-0c1c7f7e1a01
status: test
logsource:
    product: linux
    category: process_creation
detection:
{detection}
"""
    (query,) = ESQLBackend(PIPELINE).convert(SigmaCollection.from_yaml(rule))
    assert isinstance(query, str)
    return query


EVENTS: list[dict[str, Any]] = [
    # 0: privileged container started by alice
    {
        "@timestamp": "2025-03-01T10:00:00.000Z",
        "process": {
            "executable": "/usr/bin/docker",
            "command_line": "docker run --privileged --net=host -it alpine sh",
            "args": ["docker", "run", "--privileged", "--net=host", "-it", "alpine", "sh"],
            "parent": {"executable": "/usr/bin/bash"},
        },
        "user": {"name": "alice"},
        "destination": {"ip": "10.20.0.5", "port": 2376},
    },
    # 1: the same, by root (filtered by rule A)
    {
        "process": {
            "executable": "/usr/bin/docker",
            "command_line": "docker run --privileged alpine",
            "args": ["docker", "run", "--privileged", "alpine"],
            "parent": {"executable": "/bin/sh"},
        },
        "user": {"name": "root"},
    },
    # 2: upper-case binary name: ES|QL is case-sensitive, Sigma is not
    {
        "process": {
            "executable": "/usr/bin/DOCKER",
            "command_line": "DOCKER run --privileged alpine",
            "parent": {"executable": "/usr/bin/bash"},
        },
        "user": {"name": "bob"},
        "destination": {"ip": "192.168.1.10", "port": 80},
    },
    # 3: nsenter by admin; its only argument array holds one value (a single value for ES|QL)
    {
        "process": {
            "executable": "/usr/bin/nsenter",
            "command_line": "nsenter -t 1 -m -u -i -n sh",
            "args": ["--privileged"],
        },
        "user": {"name": "admin"},
        "destination": {"ip": "172.16.0.1", "port": 4444},
    },
    # 4: no parent, remote port over 1000 in 192.168/16
    {
        "process": {"executable": "/usr/sbin/unshare", "command_line": "unshare --net bash"},
        "user": {"name": "root"},
        "destination": {"ip": "192.168.50.3", "port": 31337},
    },
]
EVENT_FIELDS = {**FIELDS}


def e2e(query: str) -> set[int]:
    return EsqlQuery.parse(query).matching(EVENTS, EVENT_FIELDS, index="logs-endpoint.events.process-default")


def test_sigma_contains_all_endswith_and_not() -> None:
    query = convert(
        """    sel:
        Image|endswith: '/docker'
        CommandLine|contains|all: [' run ', '--privileged']
    filter:
        User: root
    condition: sel and not filter"""
    )
    assert query == (
        'from * metadata _id, _index, _version | where ends_with(process.executable, "/docker") and '
        'process.command_line like "* run *" and process.command_line like "*--privileged*" and '
        'not user.name=="root"'
    )
    # 0 matches; 1 is root; 2 is /usr/bin/DOCKER (case-sensitive ends_with and like); 3, 4 are no docker.
    assert e2e(query) == {0}


def test_sigma_regex_and_startswith_list() -> None:
    query = convert(
        """    sel:
        CommandLine|re: '.*--net[= ]host.*'
        ParentImage|startswith: ['/usr/bin/', '/bin/']
    condition: sel"""
    )
    # Only event 0 has --net=host (event 4 has "--net bash"); its parent starts with /usr/bin/.
    assert e2e(query) == {0}


def test_sigma_cidr_gte_and_null() -> None:
    query = convert(
        """    sel:
        DestinationIp|cidr: ['10.0.0.0/8', '192.168.0.0/16']
        DestinationPort|gte: 1000
    noparent:
        ParentImage: null
    condition: sel and not noparent"""
    )
    assert "cidr_match(destination.ip" in query and "is null" in query
    # 0: 10.20.0.5:2376 with a parent; 2: port 80; 3: 172.16/12; 4: 192.168.50.3:31337 but no parent.
    assert e2e(query) == {0}
    without_parent = convert(
        """    sel:
        DestinationIp|cidr: ['10.0.0.0/8', '192.168.0.0/16']
        DestinationPort|gte: 1000
    noparent:
        ParentImage: null
    condition: sel and noparent"""
    )
    assert e2e(without_parent) == {4}


def test_sigma_value_lists_become_or_and_in() -> None:
    query = convert(
        """    sel:
        Image|endswith: ['/nsenter', '/unshare']
        User: ['root', 'admin']
    condition: sel"""
    )
    assert 'user.name in ("root", "admin")' in query
    assert e2e(query) == {3, 4}


def test_sigma_equality_on_a_multivalued_field_never_matches() -> None:
    # Sigma means "any value"; ES|QL compares a multi-valued field as null [MV]: event 0 and 1 hold
    # --privileged among several args and do not match; event 3's one-element array does.
    query = convert(
        """    sel:
        Args: '--privileged'
    condition: sel"""
    )
    assert query.endswith('where process.args=="--privileged"')
    assert e2e(query) == {3}
    negated = convert(
        """    sel:
        Args: '--privileged'
    condition: not sel"""
    )
    # not null is null: the multi-valued events 0 and 1 are dropped, and so are 2 and 4 that have no args.
    assert e2e(negated) == set()


def test_sigma_backslash_values_produce_a_query_elasticsearch_rejects() -> None:
    # [LIKE] pySigma 2.1.1 escapes the backslash once, for the string literal only.
    query = convert(
        """    sel:
        CommandLine|contains: '\\\\tmp\\\\'
    condition: sel"""
    )
    assert query.endswith('process.command_line like "*\\\\tmp\\\\*"')
    with pytest.raises(EsqlSyntaxError, match="Invalid pattern for LIKE"):
        EsqlQuery.parse(query)


# ---- speed --------------------------------------------------------------------------------------------


def test_thousands_of_documents_times_tens_of_queries_take_seconds() -> None:
    documents = [
        {
            "@timestamp": f"2025-03-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "process": {
                "executable": f"/usr/bin/tool{i % 50}",
                "command_line": f"tool{i % 50} --flag {i}",
                "args": [f"tool{i % 50}", "--flag", str(i)],
                "pid": i,
            },
            "user": {"name": ["alice", "bob", "root"][i % 3]},
            "destination": {"ip": f"10.{i % 256}.{i // 256 % 256}.1", "port": i % 65536},
        }
        for i in range(3000)
    ]
    queries = [
        EsqlQuery.parse(
            f'from * | where process.executable == "/usr/bin/tool{k}" and '
            f'process.command_line like "*--flag*" and not user.name == "root" and '
            f'cidr_match(destination.ip, "10.{k}.0.0/16") and process.pid >= {k}'
        )
        for k in range(30)
    ]
    start = time.perf_counter()
    results = [query.matching(documents, FIELDS) for query in queries]
    elapsed = time.perf_counter() - start
    # /usr/bin/tool7 runs for i = 7 (mod 50); the ip's second octet is i mod 256; root when i = 0 (mod 3)
    expected = {i for i in range(3000) if i % 50 == 7 and i % 256 == 7 and i % 3 != 0 and i >= 7}
    assert results[7] == expected
    assert elapsed < 10, f"{elapsed:.1f} s"
