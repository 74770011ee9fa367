"""detpack's evaluator of the SPL that pysigma-backend-splunk 2.1.0 emits (detpack/engines/spl.py).

Each semantic rule is pinned by one test whose comment names the Splunk documentation page it comes from.
Pages marked "(read as a stored Markdown copy)" were read through a text copy of that help.splunk.com page.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from sigma.backends.splunk import SplunkBackend
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingPipeline

from detpack.engines.spl import (
    SplEvaluationError,
    SplEvent,
    SplQuery,
    SplSyntaxError,
    SplUnsupportedError,
)

SCOPE = {"index": "kubernetes", "sourcetype": "kube:apiserver:audit"}
MACROS = {"detpack_kubernetes_audit": 'index=kubernetes sourcetype="kube:apiserver:audit"'}


def matches(text: str, event: SplEvent, macros: Mapping[str, str] | None = None) -> bool:
    return SplQuery.parse(text, macros or {}).matches(event)


def which(text: str, events: list[SplEvent], macros: Mapping[str, str] | None = None) -> list[bool]:
    query = SplQuery.parse(text, macros or {})
    return [query.matches(event) for event in events]


# --------------------------------------------------------------------------------------------------
# The twelve semantic rules
# --------------------------------------------------------------------------------------------------


def test_1_and_is_implied_between_terms() -> None:
    # Splunk Search Reference, "search" command: "The AND operator is always implied between terms and
    # expressions. For example, web error is the same as web AND error."
    # https://help.splunk.com/splunk-enterprise/spl-search-reference/9.2/search-commands/search
    events: list[SplEvent] = [{"a": "1", "b": "2"}, {"a": "1", "b": "3"}, {"a": "0", "b": "2"}]
    assert which("a=1 b=2", events) == [True, False, False]
    assert which("a=1 AND b=2", events) == [True, False, False]


def test_2_or_binds_tighter_than_and() -> None:
    # Splunk Search Manual, "Boolean expressions with logical operators": "The search command evaluates OR
    # before AND operators" (order: parentheses, NOT, OR, AND).
    # https://help.splunk.com/en/splunk-enterprise/search/search-manual/9.3/expressions-and-predicates
    # `a=1 b=2 OR c=3` is a=1 AND (b=2 OR c=3); read with AND first it would match the first event.
    events: list[SplEvent] = [{"a": "0", "c": "3"}, {"a": "1", "c": "3"}, {"a": "1", "b": "2"}]
    assert which("a=1 b=2 OR c=3", events) == [False, True, True]
    assert which("a=1 AND b=2 OR c=3", events) == [False, True, True]


def test_3_not_binds_tightest() -> None:
    # Same page: "The NOT operator only applies to the term immediately following NOT"; NOT clauses come
    # right after parentheses in the order of evaluation.
    # https://help.splunk.com/en/splunk-enterprise/search/search-manual/9.3/expressions-and-predicates
    # `NOT a=1 OR b=2` is (NOT a=1) OR b=2, not NOT (a=1 OR b=2).
    events: list[SplEvent] = [{"a": "1", "b": "2"}, {"a": "1", "b": "0"}, {"a": "0", "b": "0"}]
    assert which("NOT a=1 OR b=2", events) == [True, False, True]
    assert which("NOT (a=1 OR b=2)", events) == [False, False, True]


def test_4_values_are_case_insensitive_field_names_are_not() -> None:
    # Values: Splunk Search Manual, "Use CASE() and TERM() to match phrases": "By default, searches are
    # case-insensitive ... You can use the CASE directive to perform case-sensitive matches for terms and
    # field values."
    # https://help.splunk.com/splunk-enterprise/search/search-manual/9.0/search-primer/use-case-and-term-to-match-phrases
    # Names: Splexicon, "Field": "Field names are case-sensitive."  https://docs.splunk.com/Splexicon:Field
    assert matches('verb="CREATE"', {"verb": "create"})
    assert matches("verb IN (Create)", {"verb": "cReAtE"})
    assert not matches('Verb="create"', {"verb": "create"})


def test_5_not_matches_events_without_the_field_but_not_equal_does_not() -> None:
    # Splunk Search Manual, "Difference between != and NOT": with != "Events that do not have a value in
    # the field are not included in the results"; with NOT "every event is returned except the events
    # that contain the value you specify. This includes events that do not have a value in the field."
    # https://docs.splunk.com/Documentation/Splunk/9.0.9/Search/NOTexpressions
    events: list[SplEvent] = [
        {"Location": "Calaveras Farms"},
        {"Location": "Marin Meadows"},
        {"Name": "Roan"},
    ]
    assert which('NOT Location="Calaveras Farms"', events) == [False, True, True]
    assert which('Location!="Calaveras Farms"', events) == [False, True, False]


def test_6_field_star_means_the_field_has_a_value() -> None:
    # Splunk Search Reference, "search", example 6: "If you use a wildcard for the value, NOT fieldA=*
    # returns events where fieldA is null or undefined, and fieldA!=* never returns any events."
    # https://help.splunk.com/splunk-enterprise/search/spl-search-reference/10.0/search-commands/search
    # (read as a stored Markdown copy)
    events: list[SplEvent] = [{"f": "x"}, {"f": ""}, {"f": None}, {"f": []}, {"g": "x"}, {"f": [None, "y"]}]
    assert which("f=*", events) == [True, True, False, False, False, True]
    assert which("NOT f=*", events) == [False, False, True, True, True, False]
    assert which("f!=*", events) == [False] * 6


def test_7_a_multivalue_field_matches_when_any_value_matches() -> None:
    # Splunk Search Reference, "search", example 6: "fieldA!="value2" returns events where fieldA exists
    # and does not have the value "value2"" -- a multivalue field "has" a value when one of its values is
    # it, so `=`, wildcards, IN and comparisons match when any value does, and `!=` needs a value and no
    # value equal to the one given. The regex reference says the same of search's !=: it keeps "events that
    # don't contain a field matching the search string, and for which the field is defined".
    # https://help.splunk.com/splunk-enterprise/search/spl-search-reference/10.0/search-commands/search
    # https://help.splunk.com/splunk-enterprise/search/spl-search-reference/10.0/search-commands/regex
    # (both read as stored Markdown copies)
    event: SplEvent = {"image": ["nginx:1.25", "evil/xmrig:6"], "code": [101, 403]}
    assert matches('image="nginx:1.25"', event)
    assert matches('image="*xmrig*"', event)
    assert matches('image IN ("busybox", "evil/*")', event)
    assert matches("code>=400", event)
    assert not matches('image!="nginx:1.25"', event)
    assert matches('image!="alpine"', event)


def test_8_cidr_values_match_ip_addresses_in_the_block() -> None:
    # Splunk Search Reference, "search", "CIDR matching": "The search command can perform a CIDR match on
    # a field that contains IPv4 and IPv6 addresses ... If you specify ip="10.10.10.0/24", the search
    # returns the events with the first and last values: 10.10.10.12 and 10.10.10.23."
    # https://help.splunk.com/splunk-enterprise/search/spl-search-reference/10.0/search-commands/search
    # (read as a stored Markdown copy)
    events: list[SplEvent] = [{"ip": "10.10.10.12"}, {"ip": "50.10.10.17"}, {"ip": "10.10.10.23"}]
    assert which('ip="10.10.10.0/24"', events) == [True, False, True]
    assert not matches('ip="10.10.10.0/24"', {"ip": "not an address"})
    assert matches('ip="2001:db8::/32"', {"ip": "2001:0db8:ffff::ff99"})


def test_9_star_matches_any_run_of_characters_including_none() -> None:
    # Splunk Search Manual, "Wildcards": "Use the asterisk ( * ) character as a wildcard to match an
    # unlimited number of characters in a string. For example, "my*" matches myhost1 and
    # myhost.ny.mydomain.com."
    # https://help.splunk.com/splunk-enterprise/search/search-manual/9.3/search-primer/wildcards
    assert matches('host="my*"', {"host": "myhost.ny.mydomain.com"})
    assert matches('host="my*"', {"host": "my"})
    assert matches('cmd="*/bin/sh"', {"cmd": "/bin/sh"})
    assert matches('cmd="*curl*|*sh*"', {"cmd": "curl -s x | sh"})
    assert not matches('host="my*"', {"host": "yourhost"})


def test_10_ordering_is_numeric_for_two_numbers_and_lexicographic_otherwise() -> None:
    # Splunk Search Reference, "search": "Comparison expressions with greater than or less than operators
    # < > <= >= numerically compare two numbers and lexicographically compare other values." and
    # "Lexicographical order": "Numbers are sorted before letters ... Uppercase letters are sorted before
    # lowercase letters."
    # https://help.splunk.com/splunk-enterprise/search/spl-search-reference/10.0/search-commands/search
    # (read as a stored Markdown copy)
    assert matches("code>=200", {"code": "1000"})  # numerically; as text "1000" < "200"
    assert matches("code>=200", {"code": 200})
    assert not matches("code>=200", {"code": "199.5"})
    assert matches("code>=200", {"code": "abc"})  # lexicographic: "a" sorts after "2"
    assert matches('name<"a"', {"name": "Zeta"})  # upper case before lower case
    assert not matches("code<5", {"other": 1})  # no value, no match


def test_11_rex_eval_search_pipeline() -> None:
    # Splunk Search Reference, "rex": "The rex command matches the value of the specified field against
    # the unanchored regular expression and extracts the named groups into fields of the corresponding
    # names"; max_match "Controls the number of times the regex is matched ... Multiple matches apply to
    # the repeated application of the whole pattern" (default 1) -- it repeats the match within the value,
    # and the page does not say that rex reads a multivalue field's other values: we read the first.
    # https://help.splunk.com/splunk-enterprise/search/spl-search-reference/10.0/search-commands/rex
    # (read as a stored Markdown copy)
    # Search Reference, "Informational functions": isnotnull "returns TRUE if the value is not NULL";
    # "the eval command can't directly accept a Boolean value. You must specify the function inside
    # another function, such as the if function".
    # https://help.splunk.com/splunk-enterprise/spl-search-reference/9.4/evaluation-functions/informational-functions
    spl = (
        "`detpack_kubernetes_audit` \n"
        '| rex field=user.username "(?<usernameMatch>^(admin|root)$)"\n'
        '| eval usernameCondition=if(isnotnull(usernameMatch), "true", "false")\n'
        '| search usernameCondition="true" OR verb="delete"'
    )
    events: list[SplEvent] = [
        {**SCOPE, "user.username": "admin", "verb": "get"},
        {**SCOPE, "user.username": "xadmin", "verb": "get"},  # anchored pattern, no match
        {**SCOPE, "user.username": "Admin", "verb": "get"},  # the regex is case-sensitive
        {**SCOPE, "verb": "delete"},  # no field: usernameMatch is null, condition "false"
        {**SCOPE, "user.username": ["alice", "root"], "verb": "get"},  # rex reads the first value only
        {"index": "other", "user.username": "admin", "verb": "get"},  # out of the macro's scope
    ]
    assert which(spl, events, MACROS) == [True, False, False, True, False, False]
    # Unanchored: the pattern may match anywhere in the value.
    assert matches('* | rex field=a "(?<aMatch>b+)" | search aMatch="bbb"', {"a": "abbbc"})
    # PCRE named groups and back-references are read as Python's (?P<n>...) and (?P=n).
    assert matches('* | rex field=a "(?<w>\\w+)-\\k<w>" | search w="ab"', {"a": "x ab-ab y"})
    assert matches('* | rex field=a "(?<=@)(?<host>\\w+)" | search host="example"', {"a": "me@example.org"})


def test_12_macros_expand_textually_recursively_and_not_inside_quotes() -> None:
    # Splunk Knowledge Manager Manual, "Use search macros in searches": macros are written between back
    # ticks, "You can reference a search macro within other search macros using this same syntax" and
    # "Macros inside of quoted values are not expanded."
    # https://help.splunk.com/en/splunk-enterprise/manage-knowledge-objects/knowledge-management-manual/10.0/search-macros
    # "Use macros with event types and tags": an unparenthesised definition is concatenated as text
    # (hence the advice to enclose definitions in parentheses).
    # https://help.splunk.com/en/splunk-enterprise/manage-knowledge-objects/knowledge-management-manual/9.0/tags/use-macros-with-event-types-and-tags
    macros = {"scope": "`k8s` verb=create", "k8s": 'index=kubernetes sourcetype="kube:apiserver:audit"'}
    query = SplQuery.parse('`scope` note="`k8s`"', macros)
    assert query.expanded == 'index=kubernetes sourcetype="kube:apiserver:audit" verb=create note="`k8s`"'
    assert query.matches({**SCOPE, "verb": "create", "note": "`k8s`"})
    assert not query.matches({**SCOPE, "verb": "create", "note": "kube"})
    # Textual: `x=1 OR a=1 b=2` is (x=1 OR a=1) AND b=2.
    assert not matches("x=1 OR `ab`", {"x": "1"}, {"ab": "a=1 b=2"})
    assert matches("x=1 OR `ab`", {"x": "1"}, {"ab": "(a=1 b=2)"})
    with pytest.raises(SplSyntaxError, match=r"column 1: unknown macro `nope`"):
        SplQuery.parse("`nope` a=1", macros)
    with pytest.raises(SplSyntaxError, match="expands into itself"):
        SplQuery.parse("`loop`", {"loop": "a=1 `loop`"})


# --------------------------------------------------------------------------------------------------
# Escapes, quoting, the other commands
# --------------------------------------------------------------------------------------------------


def test_backslash_escapes_in_quoted_values() -> None:
    # Splunk Search Reference, "search", "Quotes and escaping characters": "The backslash character is used
    # to escape quotes, pipes, and the backslash character itself. Backslash escape sequences are expanded
    # inside quotation marks ... Unrecognized backslash sequences are not altered".
    # https://help.splunk.com/splunk-enterprise/search/spl-search-reference/10.0/search-commands/search
    # (read as a stored Markdown copy)
    # Search Manual, "Backslashes": "SPL uses the asterisk ( * ) as a wildcard character. The backslash
    # symbol can't be used to escape the asterisk in search strings."
    # https://help.splunk.com/splunk-enterprise/search/search-manual/9.4/search-primer/backslashes
    assert matches(r'e="quo\"te"', {"e": 'quo"te'})
    assert matches(r'p="C:\\Windows\\*"', {"p": "c:\\windows\\system32"})
    assert matches(r'p="a\|b"', {"p": "a|b"})
    assert matches(r'p="a\sb"', {"p": "a\\sb"})  # \s is not an SPL escape: both characters stay
    # What the backend writes for a Sigma literal asterisk: a backslash, then a wildcard.
    assert matches(r'c="a\*b"', {"c": "a\\xyzb"})
    assert not matches(r'c="a\*b"', {"c": "a*b"})


def test_double_quoted_field_names() -> None:
    # The backend quotes field names outside [A-Za-z0-9_.]; JSON list levels appear as {} in the names.
    # Splexicon "Field": field names are case-sensitive.  https://docs.splunk.com/Splexicon:Field
    event: SplEvent = {"requestObject.spec.containers{}.image": ["nginx", "xmrig"]}
    assert matches('"requestObject.spec.containers{}.image"="xmrig"', event)
    assert matches("requestObject.spec.containers{}.image=xmrig", event)
    assert matches('"requestObject.spec.containers{}.image" IN ("a", "xm*")', event)


def test_strings_numbers_and_booleans_as_splunk_sees_them() -> None:
    # Splunk Search Reference, "search": "Comparison expressions with the equal ( = ) or not equal ( != )
    # operator compare string values. For example, "1" does not match "1.0"."
    # https://help.splunk.com/splunk-enterprise/search/spl-search-reference/10.0/search-commands/search
    # (read as a stored Markdown copy)
    # Search Reference, "Informational functions", isbool: "field values are either string or number data
    # types. Instead, use syntax such as <fieldname>=true OR <fieldname>=false".
    # https://help.splunk.com/splunk-enterprise/spl-search-reference/9.4/evaluation-functions/informational-functions
    assert matches("code=1", {"code": 1})
    assert not matches("code=1", {"code": 1.0})
    assert not matches('code="1.0"', {"code": 1})
    assert matches("privileged=true", {"privileged": True})
    assert matches("privileged=true", {"privileged": "True"})
    assert not matches("privileged=true", {"privileged": False})
    assert matches("a=-5", {"a": -5})


def test_regex_command_keeps_or_drops_and_keeps_nulls_with_not_equal() -> None:
    # Splunk Search Reference, "regex": "<field>=<regex-expression> ... keeps results that match ... To
    # keep results that do not match, specify <field>!=<regex-expression>"; "You can use a regex command
    # with != to filter for events that don't have a field value matching the regular expression, or for
    # which the field is null." The expression is unanchored PCRE.
    # https://help.splunk.com/splunk-enterprise/search/spl-search-reference/10.0/search-commands/regex
    # (read as a stored Markdown copy)
    events: list[SplEvent] = [
        {"ns": "kube-system"},
        {"ns": "default"},
        {"other": "x"},
        {"ns": ["default", "kube-public"]},
    ]
    assert which('* | regex ns="^kube-"', events) == [True, False, False, True]
    assert which('* | regex ns!="^kube-"', events) == [False, True, True, False]
    assert which('* | regex ns="SYSTEM"', events) == [False, False, False, False]  # case-sensitive


def test_where_compares_two_fields() -> None:
    # Splunk Search Reference, "where": "both commands interpret quoted strings as literals. If the string
    # is not quoted, it is treated as a field name ... you can use the where command to compare two
    # different fields"; "The <eval-expression> is case-sensitive."; a field name with non-alphanumeric
    # characters "must be surrounded by single quotation marks".
    # https://help.splunk.com/splunk-enterprise/spl-search-reference/9.2/search-commands/where
    events: list[SplEvent] = [
        {"a": "alice", "b": "alice"},
        {"a": "alice", "b": "Alice"},
        {"a": "7", "b": "7.0"},
        {"a": "alice"},
    ]
    assert which("* | where 'a'='b'", events) == [True, False, True, False]
    assert which("* | where NOT 'a'='b'", events) == [False, True, False, False]  # null stays null
    with pytest.raises(SplEvaluationError, match="multivalue"):
        matches("* | where 'a'='b'", {"a": ["x", "y"], "b": "x"})


def test_table_does_not_filter() -> None:
    # The backend appends `| table f1,f2` for a rule's `fields`; table only chooses output columns.
    # Splunk Search Reference, "search" ("Use the vertical bar ( | ) ... to apply a command to the
    # retrieved events").
    # https://help.splunk.com/splunk-enterprise/spl-search-reference/9.2/search-commands/search
    assert matches("a=1 | table a,b", {"a": 1})


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(a=1", r"line 1, column 5: expected '\)', found the end of the search"),
        ("((a=1) OR b=2", r"column 14: expected .*'\)'"),
        ("a=1)", r"column 4: expected one of '\|', the end of the search, found '\)'"),
        ("a=1 OR", r"column 7: expected one of '\(', 'NOT', .*found the end of the search"),
        ("OR a=1", r"column 1: OR has no search term on one side"),
        ("a=1 AND", r"column 8: expected one of '\(', 'NOT'"),
        ("a=1 NOT", r"column 8: expected one of '\('"),
        ("a=", r"column 3: expected one of .*a field name or value"),
        ('a IN ("x",)', r"column 11: expected .*found '\)'"),
        ('a="open', r"column 3: a quoted string starts here and is never closed"),
        (
            "a=1 | stats count",
            r"column 7: expected one of 'eval', 'regex', 'rex', 'search', 'table', 'where'",
        ),
        ("state=OR", r"column 7: OR is an operator here"),
        ('* | rex field=a "(?<a-b>x)"', r"column 17: invalid regular expression group name 'a-b'"),
        ('* | regex a="(unclosed"', r"column 13: regular expression '\(unclosed' does not compile"),
    ],
)
def test_syntax_errors_name_the_column_and_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(SplSyntaxError, match=message):
        SplQuery.parse(text, {})


def test_syntax_errors_after_macro_expansion_say_so() -> None:
    with pytest.raises(SplSyntaxError, match=r"^after macro expansion, line 1, column \d+: expected"):
        SplQuery.parse("`detpack_kubernetes_audit` (verb=create", MACROS)


@pytest.mark.parametrize(
    "text",
    [
        '"foo" OR "bar baz"',  # Sigma keywords: bare terms search _raw by indexed terms
        "foo",
        '| rex field=a "(?<aMatch>x)"',  # no leading search: nothing retrieved
        "`m(1)` a=1",  # macro arguments
        '* | rex field=a "\\Qx\\E"',  # PCRE quoting has no Python equivalent
    ],
)
def test_valid_spl_outside_what_the_evaluator_implements_is_refused(text: str) -> None:
    with pytest.raises(SplUnsupportedError):
        SplQuery.parse(text, {"m(1)": "a=$x$"})


# --------------------------------------------------------------------------------------------------
# End to end: Sigma rules -> pysigma-backend-splunk -> this evaluator
# --------------------------------------------------------------------------------------------------

PIPELINE = """
name: detpack-test-splunk-kubernetes-audit
priority: 20
transformations:
  - id: lists
    type: field_name_mapping
    mapping:
      sourceIPs: "sourceIPs{}"
      requestObject.spec.containers.image: "requestObject.spec.containers{}.image"
      requestObject.spec.containers.command: "requestObject.spec.containers{}.command{}"
      ? requestObject.spec.containers.securityContext.privileged
      : "requestObject.spec.containers{}.securityContext.privileged"
postprocessing:
  - id: scope
    type: simple_template
    template: "`detpack_kubernetes_audit` {query}"
"""

RULES = {
    # contains, endswith, startswith, list values, OR and NOT groupings, multivalue fields
    "miner_or_shell_pod": """
detection:
  create:
    verb: create
    objectRef.resource: pods
  image:
    requestObject.spec.containers.image|contains:
      - xmrig
      - miner
  shell:
    requestObject.spec.containers.command|endswith:
      - /sh
      - /bash
  system:
    user.username|startswith: 'system:'
  condition: create and (image or shell) and not system
""",
    # contains|all, gte, cidr on a multivalue field, re under an OR (rex/eval/search)
    "exec_from_inside_or_as_admin": """
detection:
  sel:
    requestURI|contains|all:
      - /exec
      - command=
  code:
    responseStatus.code|gte: 200
  src:
    sourceIPs|cidr: 10.0.0.0/8
  re_user:
    user.username|re: '^(admin|root)$'
  condition: sel and code and (src or re_user)
""",
    # re not under an OR (| regex), and a negated one (| regex !=)
    "delete_in_kube_namespace": """
detection:
  sel:
    verb: delete
    objectRef.namespace|re: '^kube-'
  filter:
    user.username|re: '^system:serviceaccount:kube-system:'
  condition: sel and not filter
""",
    # boolean value, null, exists
    "privileged_without_sa_or_host_network": """
detection:
  priv:
    requestObject.spec.containers.securityContext.privileged: true
  no_sa:
    requestObject.spec.serviceAccountName: null
  has_host:
    requestObject.spec.hostNetwork|exists: true
  condition: priv and (no_sa or has_host)
""",
}

CONTAINERS = "requestObject.spec.containers{}"
EVENTS: dict[str, SplEvent] = {
    "E1_miner": {
        **SCOPE,
        "verb": "create",
        "objectRef.resource": "pods",
        "user.username": "alice",
        f"{CONTAINERS}.image": ["nginx:1.25", "evil/XMRig:latest"],
        f"{CONTAINERS}.command{{}}": ["/usr/bin/xmrig"],
        f"{CONTAINERS}.securityContext.privileged": [False, False],
        "requestObject.spec.serviceAccountName": "default",
    },
    "E2_system_shell_privileged": {
        **SCOPE,
        "verb": "create",
        "objectRef.resource": "pods",
        "user.username": "system:serviceaccount:kube-system:replicaset-controller",
        f"{CONTAINERS}.image": ["busybox"],
        f"{CONTAINERS}.command{{}}": ["/bin/sh"],
        f"{CONTAINERS}.securityContext.privileged": [True],
    },
    "E3_exec_switching_protocols": {
        **SCOPE,
        "verb": "create",
        "objectRef.resource": "pods",
        "requestURI": "/api/v1/namespaces/default/pods/web/exec?command=sh&stdin=true",
        "responseStatus.code": 101,
        "sourceIPs{}": ["10.1.2.3"],
        "user.username": "bob",
    },
    "E4_exec_from_pod_network": {
        **SCOPE,
        "verb": "create",
        "objectRef.resource": "pods",
        "requestURI": "/api/v1/namespaces/default/pods/web/EXEC?command=id",
        "responseStatus.code": 200,
        "sourceIPs{}": ["192.168.0.9", "10.9.9.9"],
        "user.username": "carol",
    },
    "E5_exec_denied_admin": {
        **SCOPE,
        "verb": "create",
        "objectRef.resource": "pods",
        "requestURI": "/api/v1/namespaces/default/pods/web/exec?command=id",
        "responseStatus.code": 403,
        "sourceIPs{}": ["172.16.0.1"],
        "user.username": "admin",
    },
    "E6_exec_Admin_other_case": {
        **SCOPE,
        "verb": "create",
        "objectRef.resource": "pods",
        "requestURI": "/api/v1/namespaces/default/pods/web/exec?command=id",
        "responseStatus.code": 200,
        "sourceIPs{}": ["172.16.0.1"],
        "user.username": "Admin",
    },
    "E7_delete_kube_system_by_user": {
        **SCOPE,
        "verb": "delete",
        "objectRef.namespace": "kube-system",
        "user.username": "mallory",
    },
    "E8_delete_kube_system_by_controller": {
        **SCOPE,
        "verb": "delete",
        "objectRef.namespace": "kube-system",
        "user.username": "system:serviceaccount:kube-system:namespace-controller",
    },
    "E9_delete_kube_public_anonymous": {**SCOPE, "verb": "delete", "objectRef.namespace": "kube-public"},
    "E10_delete_KUBE_upper_case": {
        **SCOPE,
        "verb": "DELETE",
        "objectRef.namespace": "KUBE-system",
        "user.username": "mallory",
    },
    "E11_privileged_host_network": {
        **SCOPE,
        "verb": "create",
        "objectRef.resource": "pods",
        "user.username": "dave",
        f"{CONTAINERS}.image": ["nginx"],
        f"{CONTAINERS}.command{{}}": ["/usr/bin/python3"],
        f"{CONTAINERS}.securityContext.privileged": [False, True],
        "requestObject.spec.serviceAccountName": "default",
        "requestObject.spec.hostNetwork": False,
    },
    "E12_coinminer_with_sa": {
        **SCOPE,
        "verb": "create",
        "objectRef.resource": "pods",
        "user.username": "dave",
        f"{CONTAINERS}.image": ["coinminer/app"],
        f"{CONTAINERS}.securityContext.privileged": [True],
        "requestObject.spec.serviceAccountName": "builder",
    },
    "E13_miner_other_sourcetype": {
        "index": "kubernetes",
        "sourcetype": "kube:other",
        "verb": "create",
        "objectRef.resource": "pods",
        "user.username": "alice",
        f"{CONTAINERS}.image": ["evil/xmrig"],
    },
    "E14_bash_in_second_command": {
        **SCOPE,
        "verb": "create",
        "objectRef.resource": "pods",
        "user.username": "erin",
        f"{CONTAINERS}.image": ["alpine"],
        f"{CONTAINERS}.command{{}}": ["/bin/busybox", "/bin/bash"],
    },
}

# Written from the Sigma rules' meaning (case-insensitive strings, case-sensitive `re`, a missing field
# matches nothing, a list field matches when any element does) and the data source scope, not from the
# evaluator's output.
EXPECTED: dict[str, set[str]] = {
    # E2 is excluded by `not system`; E11 has neither a miner image nor a shell; E13 is out of scope.
    "miner_or_shell_pod": {"E1_miner", "E12_coinminer_with_sa", "E14_bash_in_second_command"},
    # E3: code 101 < 200; E4: 10.9.9.9 is in 10/8 (second value, EXEC matches case-insensitively);
    # E5: admin matches the regex; E6: Admin does not (re is case-sensitive) and 172.16/12 is outside.
    "exec_from_inside_or_as_admin": {"E4_exec_from_pod_network", "E5_exec_denied_admin"},
    # E8 is the filtered controller; E9 has no user, so the filter does not match and `not filter` holds;
    # E10: ^kube- is case-sensitive.
    "delete_in_kube_namespace": {"E7_delete_kube_system_by_user", "E9_delete_kube_public_anonymous"},
    # E2: privileged and no service account; E11: privileged (second container) and hostNetwork exists;
    # E12: privileged but has a service account and no hostNetwork.
    "privileged_without_sa_or_host_network": {"E2_system_shell_privileged", "E11_privileged_host_network"},
}


def _convert(name: str, detection: str) -> str:
    rule = f"title: {name}\nlogsource:\n  product: kubernetes\n  service: audit\n{detection}"
    backend = SplunkBackend(processing_pipeline=ProcessingPipeline.from_yaml(PIPELINE))
    queries = backend.convert(SigmaCollection.from_yaml(rule))
    assert len(queries) == 1
    query = queries[0]
    assert isinstance(query, str)
    return query


@pytest.mark.parametrize("rule", sorted(RULES))
def test_sigma_rules_converted_by_the_splunk_backend_match_what_sigma_means(rule: str) -> None:
    spl = _convert(rule, RULES[rule])
    query = SplQuery.parse(spl, MACROS)
    hits = {name for name, event in EVENTS.items() if query.matches(event)}
    assert hits == EXPECTED[rule], spl


def test_the_end_to_end_rules_exercise_every_emitted_shape() -> None:
    spl = {name: _convert(name, detection) for name, detection in RULES.items()}
    assert ' IN ("*xmrig*", "*miner*")' in spl["miner_or_shell_pod"]
    assert '"requestObject.spec.containers{}.image"' in spl["miner_or_shell_pod"]
    assert "\n| rex field=user.username" in spl["exec_from_inside_or_as_admin"]
    assert (
        '\n| search responseStatus.code>=200 sourceIPs{}="10.0.0.0/8" OR'
        in spl["exec_from_inside_or_as_admin"]
    )
    assert '\n| regex user.username!="' in spl["delete_in_kube_namespace"]
    assert (
        "NOT requestObject.spec.serviceAccountName=* OR requestObject.spec.hostNetwork=*"
        in (spl["privileged_without_sa_or_host_network"])
    )
    assert (
        '"requestObject.spec.containers{}.securityContext.privileged"=true'
        in (spl["privileged_without_sa_or_host_network"])
    )


# --------------------------------------------------------------------------------------------------
# What the backend emits that is wrong (kept here so a backend upgrade that fixes it shows up)
# --------------------------------------------------------------------------------------------------


def test_backend_hoists_a_term_out_of_an_or_and_leaves_a_dangling_or() -> None:
    # finalize_query_default moves leading `field=value` terms before the rex pipeline without looking at
    # the OR that follows them: `v=1 OR <re>` becomes `v=1 | rex ... | search OR vCondition="true"`, which
    # is not a valid search (and would have turned the OR into an AND).
    spl = _convert(
        "hoist",
        "detection:\n  s1:\n    v: 1\n  s2:\n    a|re: 'p'\n  condition: s1 or s2\n",
    )
    assert "\n| search OR " in spl
    with pytest.raises(SplSyntaxError, match="OR has no search term on one side"):
        SplQuery.parse(spl, MACROS)


def test_backend_gives_two_fields_with_the_same_last_name_one_condition_field() -> None:
    # clean_field keeps only the text after the last dot, so a.x and b.x both become xMatch/xCondition:
    # the second eval overwrites the first, and (a.x~p OR c=1) AND (b.x~q OR d=1) fires when only one of
    # the regular expressions matches. Sigma says no for this event; Splunk, run as documented, says yes.
    spl = _convert(
        "collision",
        "detection:\n  s1:\n    a.x|re: '^p$'\n  s2:\n    c: 1\n  s3:\n    b.x|re: '^q$'\n  s4:\n    d: 1\n"
        "  condition: (s1 or s2) and (s3 or s4)\n",
    )
    assert spl.count('"(?<xMatch>') == 2
    assert matches(spl, {**SCOPE, "a.x": "p", "b.x": "z", "c": 0, "d": 0}, MACROS)


def test_backend_turns_the_sigma_single_character_wildcard_into_star() -> None:
    # wildcard_single is "*": a Sigma `?` (exactly one character) becomes SPL `*` (any run), so the Splunk
    # query matches more than the rule says.
    spl = _convert("question", "detection:\n  s:\n    f: 'q?m'\n  condition: s\n")
    assert spl.endswith('f="q*m"')
    assert matches(spl, {**SCOPE, "f": "qxxxm"}, MACROS)
    assert matches(spl, {**SCOPE, "f": "qm"}, MACROS)


def test_backend_escapes_a_literal_asterisk_with_a_backslash_that_splunk_does_not_honour() -> None:
    # A Sigma value `a\*b` (a literal asterisk) is written `"a\*b"`; Splunk has no escape for `*`
    # ("The backslash symbol can't be used to escape the asterisk in search strings", Search Manual,
    # "Backslashes", https://help.splunk.com/splunk-enterprise/search/search-manual/9.4/search-primer/backslashes),
    # so the query looks for a backslash followed by anything, and misses the value the rule describes.
    spl = _convert("asterisk", "detection:\n  s:\n    f: 'a\\*b'\n  condition: s\n")
    assert spl.endswith('f="a\\*b"')
    assert not matches(spl, {**SCOPE, "f": "a*b"}, MACROS)
