"""The Splunk app: .conf files that parse back to exactly what was meant, a reproducible tarball, and
Splunk AppInspect (precert mode, offline) reporting no failures and no errors."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from detpack.content.pack import load_pack
from detpack.correlation import building_blocks
from detpack.publish.splunk_app import (
    ARCHIVE_MTIME,
    ConfValueError,
    conf_value,
    cron_minute,
    one_line_spl,
    read_conf,
    render_conf,
    stanza_name,
)
from tests.conftest import REPO_ROOT, PackCopy

APP = "dist/splunk/detpack-0.1.0.tgz"


def appinspect_binary() -> Path:
    """AppInspect lives in its own environment (scripts/test.sh creates .venv-appinspect)."""
    configured = os.environ.get("DETPACK_APPINSPECT")
    candidates = [Path(configured)] if configured else []
    candidates.append(REPO_ROOT / ".venv-appinspect" / "bin" / "splunk-appinspect")
    found = shutil.which("splunk-appinspect")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    pytest.fail(
        "splunk-appinspect is not installed: run `bash scripts/test.sh` (it creates .venv-appinspect)"
    )


def offline(command: list[str]) -> list[str]:
    """Run in a network namespace with no interfaces when the machine allows it (root, util-linux unshare)."""
    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0:
        probe = subprocess.run([unshare, "--net", "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [unshare, "--net", *command]
    return command


def app_files(pack: PackCopy) -> dict[str, bytes]:
    with tarfile.open(pack.path(APP), "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


# --- .conf writing: untrusted values cannot break out of their line ------------------------------------


def test_prose_is_folded_onto_one_line() -> None:
    assert (
        conf_value("first line\nsecond\r\nthird\u2028fourth", fold=True) == "first line second third fourth"
    )
    assert conf_value("ends with a continuation \\", fold=True) == "ends with a continuation"
    assert conf_value("bell\x07 and\ttab", fold=True) == "bell and tab"


@pytest.mark.parametrize(
    "value",
    ["index=a\nsourcetype=b", "index=a \\", "x\x00y", "line\u2029break", " leading", "tab\there"],
)
def test_searches_that_cannot_be_written_are_refused(value: str) -> None:
    with pytest.raises(ConfValueError):
        conf_value(value, fold=False)


def test_multi_line_spl_is_joined_outside_quoted_strings() -> None:
    # SPL treats a line break between terms and commands as white space; inside a quoted string it is data.
    assert one_line_spl("`m` a=1\n| stats count by x\r\n| where count > 5\n") == (
        "`m` a=1 | stats count by x | where count > 5"
    )
    kept = one_line_spl('a="x\ny" b')
    assert kept == 'a="x\ny" b'
    with pytest.raises(ConfValueError, match="line break"):
        conf_value(kept, fold=False)
    assert one_line_spl('a="q\\"\n" b') == 'a="q\\"\n" b'  # an escaped quote does not end the string


def test_stanza_names_lose_brackets_and_line_breaks() -> None:
    assert stanza_name("Evil] title\n[injected]") == "detpack - Evil title injected"
    assert stanza_name("Back\\slash") == "detpack - Back slash"
    assert len(stanza_name("x" * 500)) == 200


def test_strict_reader_refuses_what_splunk_would_misread() -> None:
    with pytest.raises(ValueError, match="continuation"):
        read_conf("[a]\nsearch = index=x \\\nmore\n")
    with pytest.raises(ValueError, match="outside a stanza"):
        read_conf("search = x\n")
    with pytest.raises(ValueError, match="duplicate key"):
        read_conf("[a]\nk = 1\nk = 2\n")
    with pytest.raises(ValueError, match="duplicate stanza"):
        read_conf("[a]\n[a]\n")
    assert read_conf("# c\n[a b]\nk = v = w\nempty =\n") == {"a b": {"k": "v = w", "empty": ""}}


def test_render_then_read_round_trips_hostile_values() -> None:
    hostile = conf_value("desc\n[fake]\nsearch = | delete\\", fold=True)
    text = render_conf([(stanza_name("t]\n[x"), [("description", hostile), ("search", "index=a")])], "h")
    assert read_conf(text) == {
        "detpack - t x": {"description": "desc [fake] search = | delete", "search": "index=a"}
    }


def test_cron_minute_comes_from_the_rule_id() -> None:
    # UUID ...3d is the integer 61; 61 mod 60 = 1. ...3c is 60 -> minute 0.
    assert cron_minute("00000000-0000-0000-0000-00000000003d") == 1
    assert cron_minute("00000000-0000-0000-0000-00000000003c") == 0
    assert 0 <= cron_minute("not-a-uuid") < 60


# --- the built app ----------------------------------------------------------------------------------------


def test_app_layout_and_reproducible_members(built_pack: PackCopy) -> None:
    with tarfile.open(built_pack.path(APP), "r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert {
        "detpack/default/app.conf",
        "detpack/default/savedsearches.conf",
        "detpack/default/macros.conf",
        "detpack/metadata/default.meta",
        "detpack/README.md",
    } <= set(names)
    assert all(n == "detpack" or n.startswith("detpack/") for n in names)
    for member in members:
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (
            ARCHIVE_MTIME,
            0,
            0,
            "",
            "",
        )
        assert member.mode == (0o755 if member.isdir() else 0o644)
    raw = built_pack.path(APP).read_bytes()
    assert raw[4:8] == ARCHIVE_MTIME.to_bytes(4, "little")  # gzip header mtime


def test_savedsearches_hold_exactly_one_stanza_per_rule(built_pack: PackCopy) -> None:
    files = app_files(built_pack)
    saved = read_conf(files["detpack/default/savedsearches.conf"].decode())
    loaded = load_pack(built_pack.root)
    blocks = building_blocks(loaded)  # no search of their own: their correlation's search holds them
    assert blocks
    rules = [rule for rule in loaded.rules if rule.name not in blocks]
    assert set(saved) == {f"detpack - {rule.title}" for rule in rules}
    expected_keys = {
        "action.correlationsearch.annotations",
        "action.correlationsearch.enabled",
        "action.correlationsearch.label",
        "actions",
        "alert.digest_mode",
        "alert.severity",
        "alert.suppress",
        "alert.track",
        "alert_comparator",
        "alert_threshold",
        "alert_type",
        "cron_schedule",
        "description",
        "disabled",
        "dispatch.earliest_time",
        "dispatch.latest_time",
        "enableSched",
        "request.ui_dispatch_app",
        "schedule_window",
        "search",
    }
    for rule in rules:
        stanza = saved[f"detpack - {rule.title}"]
        assert set(stanza) == expected_keys
        spl = built_pack.read(f"dist/queries/splunk/{rule.name}.spl").strip()
        # Exactly the query the SPL engine executed; a correlation's search (several lines) on one line.
        assert stanza["search"] == " ".join(line.strip() for line in spl.splitlines() if line.strip())
        assert stanza["disabled"] == "1" and stanza["actions"] == "" and stanza["alert.track"] == "1"
        window = (stanza["cron_schedule"], stanza["dispatch.earliest_time"], stanza["dispatch.latest_time"])
        if rule.data.get("correlation", {}).get("timespan") == "1h":
            # Counted per clock hour (bin span=1h): five past each hour, over exactly the hour that closed.
            assert window == ("5 */1 * * *", "-1h@h", "@h")
        else:
            assert "correlation" not in rule.data, "a new correlation timespan: extend this test"
            assert window == (f"{cron_minute(rule.rule_id)} * * * *", "-65m@m", "-5m@m")
        severity = {"low": "3", "medium": "4", "high": "5", "critical": "6"}[str(rule.data["level"])]
        assert stanza["alert.severity"] == severity
        annotations = json.loads(stanza["action.correlationsearch.annotations"])
        techniques = [t.split(".", 1)[1].upper() for t in rule.tags if t.startswith("attack.t")]
        assert annotations["mitre_attack"] == techniques
        assert rule.rule_id in stanza["description"]


def test_one_macro_per_data_source_wrapped_in_parentheses(built_pack: PackCopy) -> None:
    files = app_files(built_pack)
    macros = read_conf(files["detpack/default/macros.conf"].decode())
    pack = load_pack(built_pack.root)
    assert set(macros) == {ds.splunk_macro for ds in pack.datasources.values()}
    assert macros["detpack_kubernetes_audit"]["definition"] == (
        '(index=kubernetes sourcetype="kube:apiserver:audit")'
    )
    app = read_conf(files["detpack/default/app.conf"].decode())
    assert app["launcher"]["version"] == "0.1.0"
    assert app["package"]["id"] == "detpack"
    assert app["ui"]["is_visible"] == "0"
    meta = read_conf(files["detpack/metadata/default.meta"].decode())
    assert meta[""] == {"access": "read : [ * ], write : [ admin, sc_admin ]", "export": "system"}


def test_appinspect_parser_reads_the_same_stanzas_and_keys(built_pack: PackCopy, tmp_path: Path) -> None:
    """AppInspect's own .conf parser, run in its environment, sees exactly what the strict reader sees."""
    binary = appinspect_binary()
    python = binary.parent / "python"
    script = (
        "import json, sys\n"
        "from splunk_appinspect.configuration_file import ConfigurationFile\n"
        "from splunk_appinspect.configuration_parser import parse, configuration_lexer\n"
        "out = {}\n"
        "for path in sys.argv[1:]:\n"
        "    conf = parse(open(path, encoding='utf-8').read(), ConfigurationFile(), configuration_lexer)\n"
        "    stanzas = {s.name: {k: o.value for k, o in s.options.items()} for s in conf.sections()}\n"
        "    out[path] = {'errors': [list(map(str, e)) for e in conf.errors], 'stanzas': stanzas}\n"
        "print(json.dumps(out))\n"
    )
    paths = []
    for name, content in app_files(built_pack).items():
        if name.endswith((".conf", ".meta")):
            target = tmp_path / name.replace("/", "_")
            target.write_bytes(content)
            paths.append(str(target))
    run = subprocess.run([str(python), "-c", script, *paths], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    parsed = json.loads(run.stdout)
    for path in paths:
        assert parsed[path]["errors"] == []
        ours = read_conf(Path(path).read_text(encoding="utf-8"))
        theirs = parsed[path]["stanzas"]
        assert theirs == ours, path


def test_appinspect_precert_reports_no_failures(built_pack: PackCopy, tmp_path: Path) -> None:
    binary = appinspect_binary()
    report = tmp_path / "appinspect.json"
    command = [
        str(binary),
        "inspect",
        str(built_pack.path(APP)),
        "--mode",
        "precert",
        "--data-format",
        "json",
        "--output-file",
        str(report),
    ]
    run = subprocess.run(offline(command), capture_output=True, text=True, check=False, timeout=600)
    assert report.exists(), run.stdout + run.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    summary = data["summary"]
    problems = [
        (check["name"], [m["message"] for m in check["messages"]])
        for rep in data["reports"]
        for group in rep["groups"]
        for check in group["checks"]
        if check["result"] in ("failure", "error")
    ]
    assert summary["failure"] == 0 and summary["error"] == 0, problems
    assert summary["success"] > 50  # the checks ran


def test_hostile_rule_content_cannot_break_the_conf_files(exec_pack: PackCopy) -> None:
    exec_pack.replace(
        "rules/kubernetes_audit/kubernetes_audit_exec_shell_download.yml",
        "title: Potential Download And Execute Via Shell In Pod Exec",
        'title: "Shell ] In Pod [evil stanza] search = | delete"',
    )
    exec_pack.replace(
        "rules/kubernetes_audit/kubernetes_audit_exec_shell_download.yml",
        "description: |",
        "description: |\n    disabled = 0 \\\n    [injected]",
    )
    result = exec_pack.run("build", "--bump")  # the title and description changed: a new version
    assert result.exit_code == 0, result.output
    files = app_files(exec_pack)
    saved = read_conf(files["detpack/default/savedsearches.conf"].decode())
    assert "evil stanza" not in saved and "injected" not in saved
    stanza = saved["detpack - Shell In Pod evil stanza search = | delete"]
    assert stanza["disabled"] == "1"
    assert stanza["description"].startswith("disabled = 0 \\ [injected] Detects an authorized exec")


def test_tarball_is_identical_across_builds(exec_pack: PackCopy, tmp_path: Path) -> None:
    """Two builds of the small pack of DP-ADS-0001 (the whole pack: tests/test_determinism.py)."""
    first = exec_pack.run("build", "--bump")  # the lock's currency: test_publish_versions
    assert first.exit_code == 0, first.output
    again = exec_pack.run("build", "--output", str(tmp_path / "again"))
    assert again.exit_code == 0, again.output
    tarball = exec_pack.path(APP).read_bytes()
    assert (tmp_path / "again" / "splunk" / "detpack-0.1.0.tgz").read_bytes() == tarball
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        assert tar.getnames()[0] == "detpack"
