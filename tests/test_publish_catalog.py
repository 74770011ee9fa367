"""The analyst catalog, opened in real headless Chromium (Debian's package): the index and every ADS page
load without script errors, and every link and image resolves to a file or anchor of the catalog.

Chromium is required: scripts/install-system-packages.sh installs it. If it is missing the test fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from detpack.content.pack import load_pack
from detpack.correlation import building_blocks
from detpack.publish.catalog import render_markdown
from tests.conftest import PackCopy

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
EXTERNAL = ("http://", "https://", "mailto:")


def chromium() -> str:
    for candidate in (os.environ.get("DETPACK_CHROMIUM", ""), *CHROMIUM_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("chromium")
    if found:
        return found
    pytest.fail("Chromium is not installed: run `bash scripts/install-system-packages.sh` (apt chromium)")


class Chromium:
    """One headless Chromium driven through the DevTools protocol over a pipe (--remote-debugging-pipe:
    it reads commands on fd 3 and writes replies and events on fd 4, each a JSON text ending in NUL), so
    that every page loads in the same browser instead of one browser start per page."""

    def __init__(self, profile: Path, timeout: float = 120.0) -> None:
        commands_r, commands_w = os.pipe()
        replies_r, replies_w = os.pipe()
        # The child's ends above fd 10, so that moving them to 3 and 4 cannot overwrite one another.
        child_r = fcntl.fcntl(commands_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(replies_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(commands_r)
        os.close(replies_w)
        command = [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # A small Python puts the pipe ends on fds 3 and 4 and execs Chromium (no preexec_fn: the test
        # process runs threads, the JVM's among them, and forking with them is only safe up to exec).
        place = (
            f"import os, sys; os.dup2({child_r}, 3); os.dup2({child_w}, 4); "
            f"os.close({child_r}); os.close({child_w}); os.execv(sys.argv[1], sys.argv[1:])"
        )
        self._log = profile.with_name(profile.name + ".log")
        with self._log.open("wb") as log:  # a file: a pipe nobody reads while pages load could fill up
            self.process = subprocess.Popen(
                [sys.executable, "-c", place, *command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                pass_fds=(child_r, child_w),
            )
        os.close(child_r)
        os.close(child_w)
        self._out, self._in = commands_w, replies_r
        self._buffer = b""
        self._id = 0
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=self.session)

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._in], [], [], max(deadline - time.monotonic(), 0))
            assert ready, f"Chromium did not answer within {self.timeout} s"
            chunk = os.read(self._in, 1 << 20)
            assert chunk, "Chromium closed the DevTools pipe"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        decoded: dict[str, Any] = json.loads(message)
        return decoded

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str = "", until: str = ""
    ) -> dict[str, Any]:
        """Send a command; its result, once the event `until` (if any) has arrived for the session too."""
        self._id += 1
        command: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        os.write(self._out, json.dumps(command).encode("utf-8") + b"\0")
        deadline = time.monotonic() + self.timeout
        result: dict[str, Any] | None = None
        waiting = bool(until)
        while result is None or waiting:
            message = self._message(deadline)
            if message.get("id") == self._id:
                assert "error" not in message, f"{method}: {message['error']}"
                result = message.get("result", {})
            elif "method" in message:
                self.events.append(message)
                if message["method"] == until and message.get("sessionId") == session:
                    waiting = False
        return result

    def load(self, page: Path) -> tuple[str, list[str]]:
        """The DOM after the page loaded and ran its scripts, and the errors it reported (uncaught
        exceptions, console errors, resources that failed to load)."""
        self.events.clear()
        self.send("Page.navigate", {"url": page.as_uri()}, self.session, until="Page.loadEventFired")
        value = self.send(
            "Runtime.evaluate",
            {"expression": "document.documentElement.outerHTML", "returnByValue": True},
            self.session,
        )
        errors = []
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                errors.append(json.dumps(params["exceptionDetails"])[:500])
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(json.dumps(params.get("args"))[:500])
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(f"{params['entry'].get('url', '')}: {params['entry']['text']}")
        return str(value["result"]["value"]), errors

    def close(self) -> str:
        """Quit; Chromium's own log."""
        with contextlib.suppress(AssertionError, OSError):  # Chromium may close the pipe before replying
            self.send("Browser.close")
        os.close(self._out)
        os.close(self._in)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self._log.read_text(encoding="utf-8", errors="replace")


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        for attribute in ("href", "src"):
            if tag in ("a", "link", "img", "script") and values.get(attribute):
                self.links.append(str(values[attribute]))
        self._in_title = tag == "title"

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


@pytest.fixture(scope="module")
def catalog(built_pack: PackCopy) -> tuple[PackCopy, Path]:
    return built_pack, built_pack.path("dist/catalog")


def test_every_page_loads_in_chromium_and_every_link_resolves(
    catalog: tuple[PackCopy, Path], tmp_path: Path
) -> None:
    pack, root = catalog
    pages = sorted(root.rglob("*.html"))
    loaded = load_pack(pack.root)
    assert {p.relative_to(root).as_posix() for p in pages} == {"index.html"} | {
        f"ads/{str(a.meta['id']).lower()}.html" for a in loaded.ads
    }
    doms: dict[Path, Links] = {}
    browser = Chromium(tmp_path / "profile")
    try:
        for page in pages:
            dom, errors = browser.load(page)
            assert errors == [], page
            parsed = Links()
            parsed.feed(dom)
            assert parsed.title.endswith("detpack catalog"), page
            doms[page.resolve()] = parsed
    finally:
        log = browser.close()
    assert "Uncaught" not in log, log
    checked = 0
    for page, parsed in doms.items():
        for link in parsed.links:
            if link.startswith(EXTERNAL):
                continue
            parts = urlsplit(link)
            assert not parts.scheme and not parts.netloc, f"{page.name}: unexpected link {link}"
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            assert target.is_file(), f"{page.relative_to(root.resolve())}: broken link {link}"
            assert root.resolve() in target.parents, f"{page.name}: link {link} leaves the catalog"
            if parts.fragment:
                ids = doms[target].ids if target in doms else set()
                assert parts.fragment in ids, f"{page.name}: link {link}: no element with that id"
            checked += 1
    assert checked > 50


def test_index_lists_every_rule_and_technique(catalog: tuple[PackCopy, Path]) -> None:
    pack, root = catalog
    index = (root / "index.html").read_text(encoding="utf-8")
    loaded = load_pack(pack.root)
    blocks = building_blocks(loaded)
    assert blocks
    for rule in loaded.rules:
        if rule.name in blocks:  # not a detection of its own: its correlation is listed
            assert f'#rule-{rule.name}"' not in index
            assert f'#rule-{blocks[rule.name]}"' in index
        else:
            assert f'#rule-{rule.name}"' in index
    assert 'id="technique-T1609"' in index and 'id="technique-T1572"' in index
    page = (root / "ads" / "dp-ads-0001.html").read_text(encoding="utf-8")
    # The exec rule's page section: its queries, and the fixture events that prove it.
    assert 'id="rule-kubernetes_audit_exec_shell_download-query-esql"' in page
    assert "tests/fixtures/kubernetes_audit/exec_into_pod.jsonl:" in page
    assert "look-alike: must not fire" in page
    assert 'href="https://attack.mitre.org/techniques/T1609/"' in page


def test_untrusted_content_is_escaped(exec_pack: PackCopy) -> None:
    exec_pack.replace(
        "rules/kubernetes_audit/kubernetes_audit_exec_shell_download.yml",
        "description: |",
        "description: |\n    <script>alert('rule')</script>",
    )
    ads = sorted(exec_pack.path("ads").glob("dp-ads-0001-*.md"))[0]
    text = ads.read_text(encoding="utf-8")
    text = text.replace(
        "## Goal\n",
        "## Goal\n\n<img src=x onerror=alert(1)> [click](javascript:alert(2)) [repo](../rules/x.yml)\n",
        1,
    )
    ads.write_text(text, encoding="utf-8")
    result = exec_pack.run("build", "--bump")  # the description changed: a new version
    assert result.exit_code == 0, result.output
    page = exec_pack.read("dist/catalog/ads/dp-ads-0001.html")
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#39;rule&#39;)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "javascript:" not in page.replace("[click](javascript:alert(2))", "")
    assert 'href="../rules/x.yml"' not in page


def test_markdown_links_that_cannot_resolve_become_text() -> None:
    html = str(render_markdown("[a](https://example.org/) [b](other.md) [c](#goal) ![i](x.png) <b>x</b>"))
    assert '<a href="https://example.org/">a</a>' in html
    assert "other.md" not in html and ">b<" not in html and " b " in html
    assert '<a href="#goal">c</a>' in html
    assert "[image: i]" in html and "<img" not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
