"""The Lucene engine: Elasticsearch query_string semantics on real Apache Lucene 8, through JPype.

Nothing here is skipped: without Java, javac, Debian's liblucene8-java or JPype the engine raises
LuceneUnavailableError naming the packages to install, and every test fails with that message (CI installs
them). Every expectation is written by hand from Elasticsearch's documentation, not from the engine's
output. The pages cited were read while writing them:

[QS]        https://www.elastic.co/docs/reference/query-languages/query-dsl/query-dsl-query-string-query
            (section "Query string syntax": field names, `_exists_`, wildcards and the `field:*` warning,
            regular expressions, ranges and `age:>=10`, boolean operators, reserved characters, empty query)
[EXISTS]    https://www.elastic.co/docs/reference/query-languages/query-dsl/query-dsl-exists-query
[KEYWORD]   https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/keyword
[TEXT]      https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/text
[STANDARD]  https://www.elastic.co/docs/reference/text-analysis/analysis-standard-analyzer
[GAP]       https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/position-increment-gap
[REGEXP]    https://www.elastic.co/docs/reference/query-languages/query-dsl/regexp-syntax
[NUMBER]    https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/number
[IP]        https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/ip
[BOOLEAN]   https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/boolean
[DATE]      https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/date
[FLATTENED] https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/flattened
[ARRAY]     https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/array
[NESTED]    https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/nested
[MULTI]     https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/multi-fields
[MALFORMED] https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/ignore-malformed
            (and elastic/elasticsearch#95224: logs-*-* data streams default to ignore_malformed: true)
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sigma.backends.elasticsearch import LuceneBackend
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation

from detpack.engines.lucene import (
    JAVA_SOURCES,
    LuceneDocumentError,
    LuceneEngine,
    LuceneQueryError,
    LuceneSyntaxError,
    LuceneUnavailableError,
    LuceneUnknownFieldError,
    compile_java,
    find_javac,
    find_lucene_jars,
)

# ECS types (ecs_flat 9.5: process.command_line is wildcard with a match_only_text multi-field, message
# match_only_text, ips ip, pids long); kubernetes.audit.annotations.* is the integration's object(text).
TYPES: dict[str, str] = {
    "@timestamp": "date",
    "message": "match_only_text",
    "process.name": "keyword",
    "process.executable": "keyword",
    "process.command_line": "wildcard",
    "process.command_line.text": "match_only_text",
    "process.args": "keyword",
    "process.pid": "long",
    "process.exit_code": "integer",
    "process.parent.executable": "keyword",
    "process.title": "keyword",
    "user.name": "keyword",
    "source.ip": "ip",
    "destination.ip": "ip",
    "event.risk_score": "float",
    "container.privileged": "boolean",
    "docker.event.actor.attributes": "flattened",
    "kubernetes.audit.annotations.*": "text",
    "kubernetes.audit.objectRef.resource": "keyword",
    "kubernetes.audit.requestObject.spec.containers.image": "keyword",
    "kubernetes.audit.requestObject.spec.containers.name": "keyword",
    "kubernetes.audit.requestObject.spec.containers.securityContext.privileged": "boolean",
    "kubernetes.audit.user.extra.*": "object(keyword)",
    "docker.container.labels.*": "object",
    "winlog.event_data": "object(keyword)",
    "observer.egress.interfaces": "nested",
    "observer.egress.interfaces.name": "keyword",
}


@pytest.fixture(scope="module")
def engine() -> LuceneEngine:
    return LuceneEngine()


def run(engine: LuceneEngine, query: str, docs: Sequence[Mapping[str, Any]]) -> set[int]:
    return engine.matching(query, docs, TYPES)


def proc(**process: Any) -> dict[str, Any]:
    return {"process": process}


# ------------------------------------------------------------------------------------------ field types


def test_keyword_is_exact_and_case_sensitive(engine: LuceneEngine) -> None:
    # [KEYWORD] keyword fields are not analysed: a term matches the whole value, case included.
    docs = [proc(name="docker"), proc(name="Docker"), proc(name="docker-compose"), proc(name="run docker")]
    assert run(engine, "process.name:docker", docs) == {0}
    assert run(engine, "process.name:Docker", docs) == {1}
    assert run(engine, "process.name:docker*", docs) == {0, 2}
    assert run(engine, 'process.name:"run docker"', docs) == {3}
    assert run(engine, "process.name:run\\ docker", docs) == {3}


def test_wildcard_field_type_matches_the_whole_value_case_sensitively(engine: LuceneEngine) -> None:
    # [KEYWORD] "wildcard field type": a keyword-family type; patterns run over the whole value, unanalysed.
    docs = [
        proc(command_line="docker run --privileged alpine"),
        proc(command_line="docker run --PRIVILEGED alpine"),
        proc(command_line="docker run alpine"),
    ]
    assert run(engine, "process.command_line:*\\-\\-privileged*", docs) == {0}
    assert run(engine, "process.command_line:*\\-\\-PRIVILEGED*", docs) == {1}
    assert run(engine, "process.command_line:docker\\ run\\ alpine", docs) == {2}
    assert run(engine, "process.command_line:docker", docs) == set()  # no tokens: the whole value


def test_text_is_analysed_with_the_standard_analyzer(engine: LuceneEngine) -> None:
    # [TEXT] text is analysed; [STANDARD] the standard analyzer lower-cases word tokens and has no stop words;
    # [QS] "the query then analyzes each split text independently" with the field's analyzer.
    docs = [
        {"message": "Started container Alpine with --privileged"},
        {"message": "The container stopped"},
        {"message": "nothing here"},
    ]
    assert run(engine, "message:CONTAINER", docs) == {0, 1}
    assert run(engine, "message:privileged", docs) == {0}
    assert run(engine, "message:the", docs) == {1}  # no stop words
    assert run(engine, 'message:"started container"', docs) == {0}  # phrase, in order
    assert run(engine, 'message:"container started"', docs) == set()
    # an escaped space keeps one term; the analyzer splits it and the default operator is OR
    assert run(engine, "message:stopped\\ nothing", docs) == {1, 2}
    # the keyword field next to it stays exact
    assert run(engine, "process.name:DOCKER", [proc(name="docker")]) == set()


def test_text_multi_field_is_indexed_from_its_parent(engine: LuceneEngine) -> None:
    # [MULTI] process.command_line.text indexes process.command_line's value with another type (as in ECS).
    docs = [proc(command_line="/usr/bin/Docker RUN --privileged alpine"), proc(command_line="podman run")]
    assert run(engine, "process.command_line.text:docker", docs) == {0}
    assert run(engine, "process.command_line.text:run", docs) == {0, 1}
    assert run(engine, "process.command_line:*docker*", docs) == set()  # the wildcard parent is exact
    assert run(engine, "_exists_:process.command_line.text", docs) == {0, 1}


def test_phrase_does_not_match_across_array_values(engine: LuceneEngine) -> None:
    # [GAP] text arrays have a position gap of 100 between values, so phrases do not span two values.
    docs: list[dict[str, Any]] = [
        {"message": ["John Abraham", "Lincoln Smith"]},
        {"message": "Abraham Lincoln"},
    ]
    assert run(engine, 'message:"abraham lincoln"', docs) == {1}
    assert run(engine, "message:lincoln", docs) == {0, 1}


def test_text_wildcards_are_lowercased_but_regexps_are_not(engine: LuceneEngine) -> None:
    # [QS] "Wildcards": only the character-level parts of the analysis chain (lower-casing) apply to patterns;
    # [REGEXP] a regexp runs unchanged against each indexed token (which the analyzer lower-cased).
    docs = [{"message": "Container started"}]
    assert run(engine, "message:Contain*", docs) == {0}
    assert run(engine, "message:*TART*", docs) == {0}
    assert run(engine, "message:/Contain.*/", docs) == set()
    assert run(engine, "message:/contain.*/", docs) == {0}
    assert run(engine, "message:*container\\ started*", docs) == set()  # one token never holds a space


def test_numbers_are_compared_as_numbers(engine: LuceneEngine) -> None:
    # [NUMBER] numeric fields hold numbers: a term is the number (1000.0 == 1000), strings are coerced at
    # index time and decimals truncated for integer types; [QS] patterns on them are errors.
    docs = [proc(pid=1000), proc(pid="1000"), proc(pid=10000), proc(pid=999.9)]
    assert run(engine, "process.pid:1000", docs) == {0, 1}
    assert run(engine, "process.pid:1000.0", docs) == {0, 1}
    assert run(engine, "process.pid:999", docs) == {3}
    assert run(engine, "process.pid:999.9", docs) == set()  # a decimal never equals a long
    with pytest.raises(LuceneQueryError, match=r"Can only use prefix queries .* \[process\.pid\] .*\[long\]"):
        run(engine, "process.pid:10*", docs)
    with pytest.raises(LuceneQueryError, match=r"Can only use wildcard queries"):
        run(engine, "process.pid:*00", docs)
    with pytest.raises(LuceneQueryError, match=r"For input string"):
        run(engine, "process.pid:abc", docs)
    with pytest.raises(LuceneQueryError, match="out of range for integer"):
        run(engine, "process.exit_code:3000000000", [proc(exit_code=1)])


def test_boolean_fields_take_true_and_false(engine: LuceneEngine) -> None:
    # [BOOLEAN] accepts true/false and the strings "true"/"false" ("" is false); other values are errors.
    docs: list[dict[str, Any]] = [
        {"container": {"privileged": True}},
        {"container": {"privileged": "false"}},
        {"container": {}},
    ]
    assert run(engine, "container.privileged:true", docs) == {0}
    assert run(engine, "container.privileged:false", docs) == {1}
    assert run(engine, "NOT container.privileged:true", docs) == {1, 2}
    with pytest.raises(LuceneQueryError, match=r"Can't parse boolean value \[yes\]"):
        run(engine, "container.privileged:yes", docs)


def test_flattened_fields_are_keywords_under_every_key(engine: LuceneEngine) -> None:
    # [FLATTENED] every leaf is indexed as a keyword; `root.key` queries one key, the root any leaf; numbers
    # are strings (ranges compare strings); term, prefix and range queries work on a key.
    attrs = {"image": "alpine:3.19", "name": "evil", "exitCode": 10, "labels": {"app": "web"}}
    docs = [
        {"docker": {"event": {"actor": {"attributes": attrs}}}},
        {"docker": {"event": {"actor": {"attributes": {"image": "nginx", "exitCode": 9}}}}},
    ]
    assert run(engine, "docker.event.actor.attributes.image:alpine\\:3.19", docs) == {0}
    assert run(engine, "docker.event.actor.attributes.labels.app:web", docs) == {0}
    assert run(engine, "docker.event.actor.attributes:nginx", docs) == {1}  # the root: any leaf
    assert run(engine, "docker.event.actor.attributes.name:nginx", docs) == set()  # a key: that key only
    assert run(engine, "docker.event.actor.attributes.exitCode:10", docs) == {0}
    assert run(engine, "docker.event.actor.attributes.exitCode:[5 TO 9]", docs) == {1}  # "10" < "5"
    assert run(engine, "docker.event.actor.attributes.image:alp*", docs) == {0}
    assert run(engine, "docker.event.actor.attributes:*gin*", docs) == {1}  # the root takes wildcards
    assert run(engine, "_exists_:docker.event.actor.attributes.name", docs) == {0}
    assert run(engine, "docker.event.actor.attributes.missing:x", docs) == set()  # any key is a field


def test_flattened_keys_take_only_some_patterns(engine: LuceneEngine) -> None:
    # Elasticsearch's FlattenedFieldMapper.KeyedFlattenedFieldType rejects regexp queries and ranges with an
    # open end on a key. A query_string wildcard on a key is not rejected but runs against the keyed terms
    # "key\0value" of every key, without the key: a leading `*` matches the value under any key, a pattern
    # that starts otherwise never matches (https://github.com/elastic/elasticsearch/pull/138427, open).
    attrs = {"image": "falcosecurity/falco:0.38", "name": "evil-falcosecurity/falco-lookalike"}
    docs = [
        {"docker": {"event": {"actor": {"attributes": attrs}}}},
        {"docker": {"event": {"actor": {"attributes": {"image": "nginx", "name": "falcosecurity/falco"}}}}},
    ]
    assert run(engine, "docker.event.actor.attributes.image:*falcosecurity\\/falco*", docs) == {0, 1}
    assert run(engine, "docker.event.actor.attributes.image:falcosecurity\\/falco*", docs) == {0}  # prefix
    assert run(engine, "docker.event.actor.attributes.image:falco?ecurity*", docs) == set()
    with pytest.raises(LuceneQueryError, match=r"\[regexp\] queries are not currently supported on keyed"):
        run(engine, "docker.event.actor.attributes.image:/falco.*/", docs)
    with pytest.raises(LuceneQueryError, match="must include both an upper and a lower bound"):
        run(engine, "docker.event.actor.attributes.image:>m", docs)


def test_ip_fields_take_addresses_and_cidr_blocks(engine: LuceneEngine) -> None:
    # [IP] "The most common way to query ip addresses is to use the CIDR notation"; IPv6 colons must be
    # escaped in query_string; [QS] `/` is reserved, so pySigma writes `10.0.0.0\/8`.
    docs = [
        {"source": {"ip": "10.1.2.3"}},
        {"source": {"ip": "192.168.1.1"}},
        {"source": {"ip": "2001:db8::5"}},
    ]
    assert run(engine, "source.ip:10.0.0.0\\/8", docs) == {0}
    assert run(engine, "source.ip:10.1.2.3", docs) == {0}
    assert run(engine, 'source.ip:"192.168.1.1"', docs) == {1}
    assert run(engine, "source.ip:2001\\:db8\\:\\:\\/32", docs) == {2}
    assert run(engine, 'source.ip:"2001:db8::5"', docs) == {2}
    assert run(engine, "source.ip:[10.0.0.0 TO 10.255.255.255]", docs) == {0}
    assert run(engine, "NOT source.ip:10.0.0.0\\/8", docs) == {1, 2}
    with pytest.raises(LuceneQueryError, match="not an IP string literal"):
        run(engine, "source.ip:localhost", docs)
    with pytest.raises(LuceneQueryError, match="Can only use wildcard queries"):
        run(engine, "source.ip:10.*.1", docs)


def test_open_objects_map_their_sub_fields(engine: LuceneEngine) -> None:
    # An integration's `object_type: keyword` maps every sub-field as a keyword (a dynamic template, [KEYWORD]
    # semantics); a plain `object` maps new sub-fields dynamically by their JSON value (string: keyword,
    # integer: long). Either way a sub-field is part of the mapping, so naming one is not an error.
    docs: list[dict[str, Any]] = [
        {"kubernetes": {"audit": {"user": {"extra": {"scopes": ["Read", "write"]}}}}},
        {"docker": {"container": {"labels": {"app": "web", "replicas": 3}}}},
        {"winlog": {"event_data": {"Image": "/usr/bin/docker", "ProcessId": 42}}},
    ]
    assert run(engine, "kubernetes.audit.user.extra.scopes:Read", docs) == {0}
    assert run(engine, "kubernetes.audit.user.extra.scopes:read", docs) == set()
    assert run(engine, "docker.container.labels.app:web", docs) == {1}
    assert run(engine, "docker.container.labels.replicas:>2", docs) == {1}  # a long
    assert run(engine, "docker.container.labels.absent:x", docs) == set()
    assert run(engine, "winlog.event_data.ProcessId:42", docs) == {2}  # object_type keyword: "42"
    assert run(engine, "winlog.event_data.Image:*docker", docs) == {2}
    assert run(engine, "_exists_:docker.container.labels", docs) == {1}
    with pytest.raises(LuceneUnknownFieldError):
        run(engine, "docker.container.label.app:web", docs)


# ------------------------------------------------------------------------------------------ query syntax


def test_pure_negative_groups_get_a_match_all_clause(engine: LuceneEngine) -> None:
    # [QS] NOT / AND / OR; Elasticsearch adds match_all to a group of only negative clauses, so these mean
    # what they say (classic Lucene alone would match nothing for both). Documents without the field match.
    docs = [
        {"process": {"name": "docker"}, "user": {"name": "root"}},
        {"process": {"name": "docker"}, "user": {"name": "alice"}},
        {"process": {"name": "docker"}},
        {"process": {"name": "podman"}, "user": {"name": "alice"}},
    ]
    assert run(engine, "NOT user.name:root", docs) == {1, 2, 3}
    assert run(engine, "process.name:docker AND (NOT user.name:root)", docs) == {1, 2}
    assert run(engine, "process.name:docker AND NOT user.name:root", docs) == {1, 2}
    assert run(engine, "(NOT user.name:root) AND (NOT process.name:podman)", docs) == {1, 2}
    assert run(engine, "process.name:podman OR (NOT user.name:alice)", docs) == {0, 2, 3}
    assert "*:*" in engine.lucene_query("NOT user.name:root", TYPES)


def test_boolean_operators_do_not_follow_usual_precedence(engine: LuceneEngine) -> None:
    # [QS] "Boolean operators": AND/OR/NOT "do not honor the usual precedence rules". Without parentheses,
    # `a OR NOT b` is one group with a should and a must_not clause, i.e. a AND NOT b.
    docs = [
        {"process": {"name": "podman"}, "user": {"name": "root"}},
        {"process": {"name": "podman"}, "user": {"name": "alice"}},
        {"process": {"name": "docker"}, "user": {"name": "alice"}},
    ]
    assert run(engine, "process.name:podman OR NOT user.name:root", docs) == {1}
    assert run(engine, "process.name:podman OR (NOT user.name:root)", docs) == {0, 1, 2}


def test_exists_and_not_exists(engine: LuceneEngine) -> None:
    # [QS] `_exists_:title`: the field has any non-null value; [EXISTS] "" and [null, "x"] exist, null, [] and
    # [null] do not; an object exists when any sub-field does.
    docs: list[dict[str, Any]] = [
        {"user": {"name": "root"}},
        {"user": {"name": ""}},
        {"user": {"name": None}},
        {"user": {"name": []}},
        {"user": {"name": [None, "x"]}},
        {"process": {"name": "a"}},
        {"user": {"name": [None]}},
    ]
    assert run(engine, "_exists_:user.name", docs) == {0, 1, 4}
    assert run(engine, "NOT _exists_:user.name", docs) == {2, 3, 5, 6}
    assert run(engine, "_exists_:user", docs) == {0, 1, 4}
    assert run(engine, "_exists_:process", docs) == {5}
    assert run(engine, "process.name:a AND NOT _exists_:user.name", docs) == {5}
    assert run(engine, "process.name:a AND (NOT _exists_:user.name)", docs) == {5}


def test_field_star_is_an_exists_query(engine: LuceneEngine) -> None:
    # [QS] warning under "Wildcards": `field:*` is rewritten to an exists query, so it matches "" but not a
    # missing or null field; `*:*` matches everything.
    docs: list[dict[str, Any]] = [
        {"user": {"name": "root"}},
        {"user": {"name": ""}},
        {"user": {"name": None}},
        {},
    ]
    assert run(engine, "user.name:*", docs) == {0, 1}
    assert run(engine, "NOT user.name:*", docs) == {2, 3}
    assert run(engine, "*:*", docs) == {0, 1, 2, 3}
    # a text field holding "" has no tokens, but it exists
    assert run(engine, "message:*", [{"message": ""}, {"message": "x"}]) == {0, 1}


def test_one_sided_ranges(engine: LuceneEngine) -> None:
    # [QS] "Ranges with one side unbounded can use the following syntax: age:>10 age:>=10 age:<10 age:<=10";
    # on a long field they compare numbers (10000 > 999, which a string comparison would deny).
    docs = [proc(pid=5), proc(pid=999), proc(pid=1000), proc(pid=10000), proc(name="x")]
    assert run(engine, "process.pid:>=1000", docs) == {2, 3}
    assert run(engine, "process.pid:>1000", docs) == {3}
    assert run(engine, "process.pid:<1000", docs) == {0, 1}
    assert run(engine, "process.pid:<=1000", docs) == {0, 1, 2}
    assert run(engine, "process.pid:(>=999 AND <10000)", docs) == {1, 2}
    assert run(engine, "NOT process.pid:>=1000", docs) == {0, 1, 4}


def test_bracket_ranges_with_open_ends(engine: LuceneEngine) -> None:
    # [QS] "Ranges": [min TO max] inclusive, {min TO max} exclusive, mixed brackets, `*` for an open end;
    # numeric on numbers, lexicographic on keywords, [DATE] a date without time covers its whole day.
    docs = [proc(pid=1), proc(pid=5), proc(pid=10)]
    assert run(engine, "process.pid:[5 TO *]", docs) == {1, 2}
    assert run(engine, "process.pid:[* TO 5}", docs) == {0}
    assert run(engine, "process.pid:{1 TO 10]", docs) == {1, 2}
    assert run(engine, "process.pid:[1.5 TO 9.5]", docs) == {1}  # long bounds round inwards
    floats: list[dict[str, Any]] = [{"event": {"risk_score": 47.5}}, {"event": {"risk_score": 73}}]
    assert run(engine, "event.risk_score:[47.5 TO 73}", floats) == {0}
    names = [{"user": {"name": n}} for n in ["alice", "bob", "mallory", "Zed"]]
    assert run(engine, "user.name:[b TO m]", names) == {1}  # "mallory" > "m"; "Zed" < "a" (upper case)
    assert run(engine, "user.name:{* TO alice]", names) == {0, 3}
    times = [{"@timestamp": t} for t in ["2024-01-01T23:59:59Z", "2024-01-02T00:00:00.000Z", 1704067200000]]
    assert run(engine, "@timestamp:[2024-01-01 TO 2024-01-01]", times) == {0, 2}
    assert run(engine, "@timestamp:>2024-01-01", times) == {1}
    assert run(engine, "@timestamp:2024-01-02", times) == {1}


def test_regexp_is_lucene_regexp_over_the_whole_value(engine: LuceneEngine) -> None:
    # [QS] "Regular expressions" between slashes; [REGEXP] Lucene's syntax: the pattern must match the whole
    # value, `^` and `$` are not anchors; `\/` is a slash.
    docs = [
        proc(executable="/usr/bin/docker"),
        proc(executable="/usr/local/bin/podman"),
        proc(executable="dock"),
    ]
    assert run(engine, "process.executable:/.*\\/(docker|podman)/", docs) == {0, 1}
    assert run(engine, "process.executable:/dock/", docs) == {2}
    assert run(engine, "process.executable:/^dock$/", docs) == set()
    assert run(engine, "process.executable:/[a-z\\/]+/", docs) == {0, 1, 2}
    with pytest.raises(LuceneQueryError, match="invalid regular expression"):
        run(engine, "process.executable:/(unclosed/", docs)


def test_escaped_reserved_characters(engine: LuceneEngine) -> None:
    # [QS] "Reserved characters": + - = && || > < ! ( ) { } [ ] ^ " ~ * ? : \ / are escaped with a backslash;
    # inside a pattern an escaped * or ? is literal.
    docs = [
        proc(executable="/usr/bin/docker"),
        proc(executable="C:\\Windows\\x.exe"),
        proc(executable="a*b"),
        proc(executable="aXb"),
        proc(executable='say "hi" (now)'),
    ]
    assert run(engine, "process.executable:\\/usr\\/bin\\/docker", docs) == {0}
    assert run(engine, "process.executable:C\\:\\\\Windows\\\\x.exe", docs) == {1}
    assert run(engine, "process.executable:*\\\\x.exe", docs) == {1}
    assert run(engine, "process.executable:a\\*b", docs) == {2}
    assert run(engine, "process.executable:a*b", docs) == {2, 3}
    assert run(engine, "process.executable:*\\*b", docs) == {2}
    assert run(engine, 'process.executable:"say \\"hi\\" (now)"', docs) == {4}
    assert run(engine, 'process.executable:say\\ \\"hi\\"\\ \\(now\\)', docs) == {4}


def test_angle_brackets_cannot_be_escaped(engine: LuceneEngine) -> None:
    # [QS] "`<` and `>` can't be escaped at all": an escaped leading `>` still makes a range. pySigma escapes
    # them in values, so a value starting with `<` becomes a range in Elasticsearch.
    docs = [proc(title="<b>"), proc(title="c"), proc(title="a")]
    assert run(engine, "process.title:\\<b\\>", docs) == {0, 2}  # the range (* TO "b>"}: not the term
    assert run(engine, "process.title:\\>b", docs) == {1}  # "c" > "b"
    assert run(engine, 'process.title:"<b>"', docs) == {0}  # quoted: a term


def test_unfielded_terms_search_every_field_leniently(engine: LuceneEngine) -> None:
    # [QS] default_field `*` (index.query.default_field) searches all eligible fields; fields that cannot
    # take the value (a long for "evil") are skipped, not errors.
    docs: list[dict[str, Any]] = [
        {"process": {"command_line": "run evil tool", "pid": 42}},
        {"message": "an EVIL thing"},
        {"user": {"name": "bob"}},
    ]
    assert run(engine, "*evil*", docs) == {0, 1}
    assert run(engine, "42", docs) == {0}
    assert run(engine, "*evil\\ tool*", docs) == {0}  # keyword-like fields hold the whole value
    assert run(engine, "bob OR 42", docs) == {0, 2}


def test_empty_query_matches_nothing(engine: LuceneEngine) -> None:
    # [QS] "If the query string is empty or only contains whitespaces the query will yield an empty result
    # set."
    assert run(engine, "   ", [proc(name="x")]) == set()


# ------------------------------------------------------------------------------------------ documents


def test_arrays_match_any_value_and_not_excludes_any(engine: LuceneEngine) -> None:
    # [ARRAY] a field may hold several values; a query matches when any of them does, so NOT excludes a
    # document when any value matches.
    docs = [proc(args=["run", "--privileged", "alpine"]), proc(args=["run", "alpine"]), proc(name="x")]
    assert run(engine, "process.args:\\-\\-privileged", docs) == {0}
    assert run(engine, "process.args:alpine", docs) == {0, 1}
    assert run(engine, "NOT process.args:\\-\\-privileged", docs) == {1, 2}
    assert run(engine, "process.args:run AND process.args:alpine", docs) == {0, 1}


def test_object_arrays_are_flattened_per_leaf(engine: LuceneEngine) -> None:
    # [NESTED] "How arrays of objects are flattened": an object array loses the association between the
    # fields of one element (Elasticsearch's own example: user.first alice AND user.last smith matches).
    spec = "kubernetes.audit.requestObject.spec.containers"
    pod = {
        "kubernetes": {
            "audit": {
                "requestObject": {
                    "spec": {
                        "containers": [
                            {"name": "app", "image": "nginx", "securityContext": {"privileged": False}},
                            {"name": "sidecar", "image": "alpine", "securityContext": {"privileged": True}},
                        ]
                    }
                }
            }
        }
    }
    docs: list[dict[str, Any]] = [pod, {"kubernetes": {"audit": {"objectRef": {"resource": "pods"}}}}]
    assert run(engine, f"{spec}.securityContext.privileged:true", docs) == {0}
    assert run(engine, f"{spec}.name:app AND {spec}.image:alpine", docs) == {0}  # across elements
    assert run(engine, f"NOT {spec}.securityContext.privileged:false", docs) == {1}


def test_fields_outside_the_mapping_are_errors(engine: LuceneEngine) -> None:
    # The pack treats a field the target does not have as an error (Elasticsearch would match nothing).
    docs = [{"custom": {"note": "hello"}, "process": {"name": "x"}}]
    with pytest.raises(LuceneUnknownFieldError, match=r"\[process\.nmae\] is not in the mapping") as info:
        run(engine, "process.nmae:x", docs)
    assert info.value.field == "process.nmae"
    with pytest.raises(LuceneUnknownFieldError):
        run(engine, "_exists_:process.nmae", docs)
    with pytest.raises(LuceneUnknownFieldError):
        run(engine, "process.name:x AND NOT custom.note:hello", docs)  # dynamically mapped, not in the list
    with pytest.raises(LuceneUnknownFieldError, match="is an object"):
        run(engine, "process:x", docs)
    with pytest.raises(LuceneUnknownFieldError, match=r"sub-field"):
        run(engine, "process.name.keyword:x", docs)
    # [NESTED] query_string does not search nested documents
    with pytest.raises(LuceneUnknownFieldError, match="nested"):
        run(engine, "observer.egress.interfaces.name:eth0", docs)
    # the dynamically mapped field is still indexed: an unfielded term finds it, as in Elasticsearch
    assert run(engine, "hello", docs) == {0}


def test_malformed_values_are_ignored_as_in_logs_data_streams(engine: LuceneEngine) -> None:
    # [MALFORMED] with index.mapping.ignore_malformed (set for logs-*-* data streams) a value a numeric,
    # boolean, date or ip field cannot parse is not indexed, its field is listed in `_ignored`; the document
    # stays.
    docs = [proc(pid="10%", name="a"), proc(pid=[7, "x"], name="b"), {"source": {"ip": "not-an-ip"}}]
    assert run(engine, "process.name:a", docs) == {0}
    assert run(engine, "_exists_:process.pid", docs) == {1}
    assert run(engine, "process.pid:7", docs) == {1}  # the other value of the array is indexed
    assert run(engine, "_ignored:process.pid", docs) == {0, 1}
    assert run(engine, "_ignored:*", docs) == {0, 1, 2}
    assert engine.ignored_values(docs, TYPES) == [(0, "process.pid"), (1, "process.pid"), (2, "source.ip")]
    strict = LuceneEngine(ignore_malformed=False)
    with pytest.raises(LuceneDocumentError, match=r"document 0: .*\[process\.pid\] of type \[long\]"):
        strict.matching("process.name:a", docs, TYPES)


def test_documents_elasticsearch_would_reject(engine: LuceneEngine) -> None:
    # [MALFORMED] "Limits for JSON objects": an object where the mapping has a leaf (or a leaf where it has an
    # object) rejects the document whatever ignore_malformed says.
    with pytest.raises(LuceneDocumentError, match=r"\[process\.name\]"):
        engine.matching("process.pid:1", [proc(name={"first": "x"})], TYPES)
    with pytest.raises(LuceneDocumentError, match=r"found a concrete value"):
        engine.matching("process.pid:1", [{"process": "x"}], TYPES)


def test_pattern_field_types_and_slashes_in_field_names(engine: LuceneEngine) -> None:
    # [QS] "Reserved characters" include `/`, which starts a regular expression: Lucene's classic grammar
    # (which query_string uses) never lets `/` into a term, so a field name holding one must escape it.
    field = "kubernetes.audit.annotations.authorization_k8s_io/decision"
    resource = "kubernetes.audit.objectRef.resource"
    escaped = "kubernetes.audit.annotations.authorization_k8s_io\\/decision"  # the field name, `/` escaped
    docs = [{field: "allow", resource: "/pods"}, {field: "forbid", resource: "pods"}]
    assert run(engine, f"{escaped}:allow", docs) == {0}
    assert run(engine, f"{escaped}:ALLOW", docs) == {0}  # a text field: analysed
    # unescaped: `/decision:allow` opens a regular expression that never closes
    unclosed = r'Lexical error .* Encountered: <EOF> after : "/decision:allow"'
    with pytest.raises(LuceneSyntaxError, match=unclosed):
        run(engine, f"{field}:allow", docs)
    # with a later slash (here the one of an escaped `\/` value) it parses silently as something else: the
    # unfielded term `...authorization_k8s_io` OR an unfielded regexp (`/decision:allow AND ...:\/`, invalid,
    # so it matches nothing) OR the unfielded term `pods`, which matches the wrong document
    assert run(engine, f"{escaped}:allow AND {resource}:\\/pods", docs) == {0}
    query = f"{field}:allow AND {resource}:\\/pods"
    assert run(engine, query, docs) == {1}
    assert "authorization_k8s_io/decision" not in engine.lucene_query(query, TYPES)


def test_syntax_errors_carry_lucenes_message(engine: LuceneEngine) -> None:
    # [QS] "the query is strict and returns an error if the query string includes any invalid syntax".
    unclosed = r"Cannot parse 'process\.name:\(docker': Encountered \"<EOF>\""
    with pytest.raises(LuceneSyntaxError, match=unclosed):
        run(engine, "process.name:(docker", [proc(name="docker")])
    with pytest.raises(LuceneSyntaxError, match="Lexical error"):
        run(engine, 'process.name:"unterminated', [proc(name="docker")])
    with pytest.raises(LuceneSyntaxError, match="Cannot parse"):
        run(engine, "process.name:docker AND", [proc(name="docker")])


# ------------------------------------------------------------------------------------------ Sigma end to end

ECS_PIPELINE = ProcessingPipeline(
    name="test: Sysmon-style process fields to ECS",
    priority=20,
    items=[
        ProcessingItem(
            identifier="ecs_process_fields",
            transformation=FieldMappingTransformation(
                {
                    "Image": "process.executable",
                    "CommandLine": "process.command_line",
                    "ParentImage": "process.parent.executable",
                    "User": "user.name",
                    "ProcessId": "process.pid",
                    "DestinationIp": "destination.ip",
                    "Description": "process.title",
                }
            ),
        )
    ],
)

RULES = """
title: Privileged container started by a non-root user
logsource: {category: process_creation, product: linux}
detection:
  selection:
    Image|endswith: /docker
    CommandLine|contains|all: [' run ', '--privileged']
  filter:
    User: root
  condition: selection and not filter
---
title: Shell child talking to an internal network, high pid, no description
logsource: {category: process_creation, product: linux}
detection:
  selection:
    ParentImage|re: '.*/(bash|sh)'
    DestinationIp|cidr: ['10.0.0.0/8', '2001:db8::/32']
    ProcessId|gte: 1000
    Description: null
  condition: selection
---
title: Exact command lines
logsource: {category: process_creation, product: linux}
detection:
  selection:
    CommandLine:
      - 'docker run alpine'
      - 'nsenter -t 1 -m sh'
  condition: selection
"""


def test_sigma_rules_converted_by_lucene_backend(engine: LuceneEngine) -> None:
    # End to end: pySigma's LuceneBackend output, executed; expectations by hand from the semantics above
    # (keyword/wildcard values are case-sensitive in Elasticsearch although Sigma's are not).
    backend = LuceneBackend(processing_pipeline=ECS_PIPELINE)
    queries = [q for rule in SigmaCollection.from_yaml(RULES).rules for q in backend.convert_rule(rule)]
    assert queries[0] == (
        "(process.executable:*\\/docker AND (process.command_line:*\\ run\\ * AND "
        "process.command_line:*\\-\\-privileged*)) AND (NOT user.name:root)"
    )
    docs: list[dict[str, Any]] = [
        # 0: privileged run by alice: rule 0
        {"process": {"executable": "/usr/bin/docker", "command_line": "docker run --privileged alpine"},
         "user": {"name": "alice"}},
        # 1: the same as root: filtered
        {"process": {"executable": "/usr/bin/docker", "command_line": "docker run --privileged alpine"},
         "user": {"name": "root"}},
        # 2: no user at all: NOT user.name:root holds
        {"process": {"executable": "/usr/bin/docker", "command_line": "docker run --privileged alpine"}},
        # 3: upper-case executable: Sigma would match, an Elasticsearch keyword does not
        {"process": {"executable": "/usr/bin/DOCKER", "command_line": "docker run --privileged alpine"}},
        # 4: rule 1: bash parent, 10/8, pid 4242, no title
        {"process": {"parent": {"executable": "/bin/bash"}, "pid": 4242}, "destination": {"ip": "10.9.8.7"}},
        # 5: like 4 but with a title
        {"process": {"parent": {"executable": "/bin/bash"}, "pid": 4242, "title": "x"},
         "destination": {"ip": "10.9.8.7"}},
        # 6: like 4, IPv6 in 2001:db8::/32, pid exactly 1000
        {"process": {"parent": {"executable": "/usr/bin/sh"}, "pid": 1000},
         "destination": {"ip": "2001:db8::1"}},
        # 7: like 4, pid 999
        {"process": {"parent": {"executable": "/bin/sh"}, "pid": 999}, "destination": {"ip": "10.0.0.1"}},
        # 8: like 4 but zsh
        {"process": {"parent": {"executable": "/bin/zsh"}, "pid": 4242}, "destination": {"ip": "10.0.0.1"}},
        # 9, 10: rule 2, exact and case-sensitive; 11: a longer command line
        {"process": {"command_line": "docker run alpine"}},
        {"process": {"command_line": "nsenter -t 1 -m sh"}},
        {"process": {"command_line": "docker run alpine sh"}},
        {"process": {"command_line": "Docker run alpine"}},
    ]  # fmt: skip
    assert [engine.matching(q, docs, TYPES) for q in queries] == [{0, 2}, {4, 6}, {9, 10}]


# ------------------------------------------------------------------------------------------ installation


def test_missing_lucene_jars_name_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(LuceneUnavailableError, match=r"liblucene8-java.*openjdk-17-jdk-headless"):
        find_lucene_jars(tmp_path)


def test_missing_javac_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(LuceneUnavailableError, match="openjdk-17-jdk-headless"):
        find_javac()


def test_java_sources_compile_once_into_a_cache_keyed_by_their_hash(tmp_path: Path) -> None:
    sources = sorted(JAVA_SOURCES.glob("*.java"))
    jars = find_lucene_jars()
    first = compile_java(sources, jars, find_javac(), tmp_path)
    assert (first / "detpack" / "lucene" / "EsLikeQueryParser.class").exists()
    marker = (first / "OK").stat().st_mtime_ns
    assert compile_java(sources, jars, find_javac(), tmp_path) == first
    assert (first / "OK").stat().st_mtime_ns == marker  # not rebuilt
    edited = tmp_path / "src"
    edited.mkdir()
    for source in sources:
        (edited / source.name).write_text(
            source.read_text(encoding="utf-8") + "\n// edited\n", encoding="utf-8"
        )
    assert compile_java(sorted(edited.glob("*.java")), jars, find_javac(), tmp_path) != first


def test_an_unwritable_cache_falls_back_to_the_temporary_directory() -> None:
    sources = sorted(JAVA_SOURCES.glob("*.java"))
    built = compile_java(sources, find_lucene_jars(), find_javac(), Path("/proc/detpack-not-writable"))
    assert built.parent.parent == Path(tempfile.gettempdir())
    assert (built / "detpack" / "lucene" / "EsIndex.class").exists()


# ------------------------------------------------------------------------------------------ scale


def test_thousands_of_documents_times_tens_of_queries_in_seconds(engine: LuceneEngine) -> None:
    docs = [
        {
            "process": {
                "name": f"proc{i % 50}",
                "pid": i,
                "command_line": f"/usr/bin/proc{i % 50} --flag{i % 7} arg{i}",
                "args": [f"proc{i % 50}", f"--flag{i % 7}", f"arg{i}"],
            },
            "user": {"name": "root" if i % 3 == 0 else "alice"},
            "source": {"ip": f"10.{i % 256}.{(i // 256) % 256}.1"},
            "message": f"event {i} from proc{i % 50}",
        }
        for i in range(3000)
    ]
    queries = [
        f"process.name:proc{k} AND (NOT user.name:root) AND process.command_line:*\\-\\-flag{k % 7}*"
        for k in range(20)
    ] + [f"source.ip:10.{k}.0.0\\/16 AND process.pid:>={k * 100}" for k in range(10)]
    started = time.perf_counter()
    results = [engine.matching(q, docs, TYPES) for q in queries]
    elapsed = time.perf_counter() - started
    assert results[1] == {i for i in range(3000) if i % 50 == 1 and i % 3 != 0 and i % 7 == 1}
    assert results[20] == {i for i in range(3000) if i % 256 == 0}
    assert elapsed < 20, f"3000 documents x 30 queries took {elapsed:.1f} s"


def test_one_engine_can_be_shared_between_threads(engine: LuceneEngine) -> None:
    docs = [proc(name=f"p{i % 4}", pid=i) for i in range(200)]
    queries = [f"process.name:p{i % 4} AND process.pid:<{i * 10}" for i in range(40)]
    expected = [{j for j in range(200) if j % 4 == i % 4 and j < i * 10} for i in range(40)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(lambda q: run(engine, q, docs), queries)) == expected
