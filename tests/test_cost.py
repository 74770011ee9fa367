"""Query cost: leading wildcards on exact keyword fields are reported unless the rule justifies them."""

from __future__ import annotations

import re

from tests.conftest import PackCopy

RULE = "rules/kubernetes_audit/kubernetes_audit_exec_shell_download.yml"
PROC = "rules/linux_process_creation/proc_creation_lnx_container_log_driver_disabled.yml"


def _drop_justifications(pack: PackCopy, relative: str) -> None:
    text = pack.read(relative)
    pack.write(relative, text[: text.index("detpack:\n")])


def test_unjustified_leading_wildcard_on_a_keyword_field_is_reported(pack_copy: PackCopy) -> None:
    _drop_justifications(pack_copy, RULE)
    result = pack_copy.run("validate")
    assert result.exit_code == 1
    lines = [
        n for n, line in enumerate(pack_copy.read(RULE).splitlines(), 1) if "requestURI|contains" in line
    ]
    for line in lines:
        assert (
            f"{RULE}:{line}: error: [leading-wildcard] 'requestURI|contains' puts a leading wildcard on "
            "kubernetes.audit.requestURI, a keyword field in the kubernetes integration" in result.output
        )


def test_contains_on_a_wildcard_typed_field_is_fine(pack_copy: PackCopy) -> None:
    # process.command_line is an ECS `wildcard` field, built for *x* patterns; only Image|endswith counts.
    _drop_justifications(pack_copy, PROC)
    result = pack_copy.run("validate")
    reported = set(
        re.findall(rf"{re.escape(PROC)}:\d+: error: \[leading-wildcard\] '([^']+)'", result.output)
    )
    assert reported == {"Image|endswith"}


def test_a_justification_for_a_key_the_rule_does_not_have_is_reported(pack_copy: PackCopy) -> None:
    text = pack_copy.read(RULE)
    pack_copy.write(RULE, text + '    userAgent|contains: "a stale justification left behind by an edit"\n')
    result = pack_copy.run("validate")
    assert result.exit_code == 1
    line = len(pack_copy.read(RULE).splitlines())
    assert (
        f"{RULE}:{line}: error: [leading-wildcard] justification for 'userAgent|contains', "
        "which is not a detection key of this rule" in result.output
    )
