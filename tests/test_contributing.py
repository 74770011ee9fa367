"""CONTRIBUTING.md's walkthrough, followed as a new contributor would, on a fresh git clone of the pack.

Every fenced block of the "Walkthrough" section runs in order, in the pack's root:
- ```bash blocks run with bash (-e -u -o pipefail), `detpack` being the command on the PATH;
- ```diff blocks are edits the reader makes by hand; here `git apply` makes them;
- an HTML comment `<!-- walkthrough: skip (why) -->` right before a block skips it (lab-only commands),
  and `<!-- walkthrough: exit=N contains="text" -->` says the block fails with exit code N and prints text.
The walkthrough ends with `detpack build --bump`, which validates, converts and tests every rule in every
engine; the test then checks that `detpack test` passes on the new rule and that it was committed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from markdown_it import MarkdownIt

from detpack.cli import main
from detpack.validate.fixtures import MIN_ATTACK_VARIANTS, MIN_LOOKALIKES
from tests.conftest import BYPASS_RULE, REPO_ROOT, small_pack

CONTRIBUTING = REPO_ROOT / "CONTRIBUTING.md"
PR_TEMPLATE = REPO_ROOT / ".github" / "pull_request_template.md"
SECTION = "Walkthrough"
MARKER = re.compile(r"<!--\s*walkthrough:\s*(?P<body>.*?)\s*-->", re.DOTALL)
NEW_RULE = "docker_events_container_renamed_to_look_kubelet_managed"


@dataclass
class Step:
    kind: str  # bash | diff
    text: str
    line: int  # in CONTRIBUTING.md
    skip: bool = False
    exit_code: int = 0
    contains: str = ""


def walkthrough_steps(markdown: str) -> list[Step]:
    tokens = MarkdownIt("commonmark").parse(markdown)
    steps: list[Step] = []
    inside = False
    marker: str | None = None
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h2":
            inside = tokens[index + 1].content.startswith(SECTION)
            marker = None
            continue
        if not inside:
            continue
        if token.type == "html_block" and (found := MARKER.search(token.content)):
            marker = found.group("body")
            continue
        if token.type == "fence" and token.info.strip() in ("bash", "diff"):
            step = Step(token.info.strip(), token.content, (token.map[0] + 1) if token.map else 0)
            if marker is not None:
                step.skip = marker.startswith("skip")
                if exit_match := re.search(r"exit=(\d+)", marker):
                    step.exit_code = int(exit_match.group(1))
                if contains_match := re.search(r'contains="([^"]*)"', marker):
                    step.contains = contains_match.group(1)
            steps.append(step)
        if token.type in ("fence", "paragraph_open", "bullet_list_open", "heading_open", "ordered_list_open"):
            marker = None  # a marker applies to the block right after it
    return steps


def test_the_walkthrough_is_found_and_annotated() -> None:
    steps = walkthrough_steps(CONTRIBUTING.read_text(encoding="utf-8"))
    assert [s.kind for s in steps].count("diff") == 2
    assert any(s.skip for s in steps)
    assert any(s.exit_code == 1 and s.contains for s in steps)
    commands = "\n".join(s.text for s in steps if s.kind == "bash" and not s.skip)
    for command in (
        "detpack new",
        "detpack validate --changed",
        "detpack test --changed",
        "detpack build --bump",
    ):
        assert command in commands


@pytest.mark.parametrize("document", [CONTRIBUTING, PR_TEMPLATE], ids=lambda p: p.name)
def test_the_fixture_requirement_is_documented(document: Path) -> None:
    """What contributors read asks for as many attack variants and look-alikes as `detpack validate` does."""
    numbers = {1: "one", 2: "two", 3: "three", 4: "four"}
    text = " ".join(document.read_text(encoding="utf-8").split())  # one line: the prose wraps anywhere
    variants = numbers.get(MIN_ATTACK_VARIANTS, str(MIN_ATTACK_VARIANTS))
    lookalikes = numbers.get(MIN_LOOKALIKES, str(MIN_LOOKALIKES))
    assert re.search(rf"at least (\*\*)?{variants} attack variants", text), document
    assert re.search(rf"\b{lookalikes} (\*\*)?realistic look-alikes", text), document
    assert not re.search(r"\bone (real )?attack event|\bone (realistic )?look-alike", text), document


@pytest.fixture
def clone(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A fresh clone of the pack, the content, .gitignore and version lock committed on main: the small pack
    of DP-ADS-0002, the ADS the walkthrough extends, so that its `detpack build --bump` takes seconds."""
    pack = small_pack(tmp_path / "clone", [BYPASS_RULE]).root
    shutil.copyfile(REPO_ROOT / ".gitignore", pack / ".gitignore")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "detpack"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m detpack.cli "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PYTEST_"))}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(REPO_ROOT),
        HOME=str(tmp_path),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Jane Doe",
        GIT_AUTHOR_EMAIL="jane@example.com",
        GIT_COMMITTER_NAME="Jane Doe",
        GIT_COMMITTER_EMAIL="jane@example.com",
    )
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "detpack"]):
        subprocess.run(["git", *command], cwd=pack, env=env, check=True, capture_output=True)
    return pack, env


def _run(step: Step, pack: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if step.kind == "diff":
        return subprocess.run(
            ["git", "apply", "--verbose", "-"],
            cwd=pack,
            env=env,
            input=step.text,
            capture_output=True,
            text=True,
        )
    return subprocess.run(
        ["bash", "-e", "-u", "-o", "pipefail", "-c", step.text],
        cwd=pack,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_following_the_walkthrough_gives_a_rule_that_passes(clone: tuple[Path, dict[str, str]]) -> None:
    pack, env = clone
    steps = walkthrough_steps(CONTRIBUTING.read_text(encoding="utf-8"))
    for step in steps:
        if step.skip:
            continue
        done = _run(step, pack, env)
        where = f"CONTRIBUTING.md:{step.line} ({step.kind} block)"
        output = done.stdout + done.stderr
        assert done.returncode == step.exit_code, f"{where} exited {done.returncode}:\n{output}"
        if step.contains:
            assert step.contains in output, f"{where} did not print {step.contains!r}:\n{output}"

    rule = pack / "rules" / "docker_events" / f"{NEW_RULE}.yml"
    assert rule.is_file()
    text = rule.read_text(encoding="utf-8")
    assert "TODO(detpack new)" not in text and "detpack-placeholder" not in text
    final = CliRunner().invoke(main, ["test", "--rule", NEW_RULE, "-q", "--root", str(pack)])
    assert final.exit_code == 0, final.output
    assert re.search(
        rf"^{NEW_RULE} +2 hits ok +2 hits ok +2 hits ok +2 hits ok +unsupported~$", final.stdout, re.M
    )
    # The walkthrough records what it asks for: two attack variants and two look-alikes, four events.
    expect = (
        pack / "tests" / "fixtures" / "docker_events" / "container_renamed_to_look_kubelet_managed.expect.yml"
    )
    events = yaml.safe_load(expect.read_text(encoding="utf-8"))["events"]
    attacks = {e["line"] for e in events if e["kind"] == "attack" and NEW_RULE in e["fires"]}
    lookalikes = {e["line"] for e in events if NEW_RULE in e.get("lookalike_for", [])}
    assert len(attacks) == 2 and len(lookalikes) == 2 and not attacks & lookalikes, events
    log = subprocess.run(
        ["git", "log", "--name-only", "--format=%s", "-1"], cwd=pack, env=env, capture_output=True, text=True
    ).stdout
    assert f"rules/docker_events/{NEW_RULE}.yml" in log
    assert "tests/fixtures/docker_events/container_renamed_to_look_kubelet_managed.jsonl" in log
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=pack, env=env, capture_output=True, text=True
    )
    assert status.stdout == "", f"the walkthrough leaves files uncommitted:\n{status.stdout}"
