"""Synthetic content for the benchmarks, made from the pack's own rules, ADS documents and fixtures.

- ``rule_corpus``: a folder of N Sigma rules shaped like the pack's detection rules (for convert.py): each is
  a variant of one pack rule with its own id, title and name, and its detection values changed so no two
  rules are alike. Correlation rules are left out (sigma-cli stops at the first one its target cannot
  express, and the ES backends express none).
- ``scaled_pack``: a whole pack (rules, ADS, data sources, pipelines, fixtures) with every rule present in
  K copies (for test_loop.py): each copy has its own file, id and title, sits in a copy of its ADS, and is
  named next to its original in every fixture expectation and in tests/engine-differences.yml, so the
  scaled pack validates and tests like the original.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import yaml

from detpack.content.yamlfile import MAX_FILE_BYTES

NAMESPACE = uuid.UUID("6f1d3a52-0c7e-4d8e-9a55-2d5b0d1f3c11")
# Modifiers whose values must keep their syntax: a suffix would break a CIDR, regex, number or encoding.
_KEEP = {"cidr", "re", "gt", "gte", "lt", "lte", "base64", "base64offset", "fieldref", "exists", "expand"}


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)


def _vary_value(value: Any, suffix: str) -> Any:
    if isinstance(value, str) and value:
        return value[:-1] + suffix + "*" if value.endswith("*") else value + suffix
    if isinstance(value, list):
        return [_vary_value(value[0], suffix), *value[1:]] if value else value
    return value


def _vary_detection(detection: dict[str, Any], suffix: str) -> dict[str, Any]:
    """The first string value of every field selection gets the suffix (the condition is untouched)."""
    result: dict[str, Any] = {}
    for name, selection in detection.items():
        if name == "condition" or not isinstance(selection, dict):
            result[name] = selection
            continue
        varied: dict[str, Any] = {}
        for key, value in selection.items():
            modifiers = set(str(key).split("|")[1:])
            varied[key] = value if modifiers & _KEEP else _vary_value(value, suffix)
        result[name] = varied
    return result


def pack_rule_files(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The pack's detection rules (correlations left out), in path order."""
    rules = []
    for file in sorted((root / "rules").rglob("*.yml")):
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "correlation" not in data:
            rules.append((file, data))
    return rules


def rule_corpus(root: Path, out: Path, count: int) -> list[Path]:
    """Write `count` rule variants under out/<data source>/ and return their paths."""
    sources = pack_rule_files(root)
    written = []
    for index in range(count):
        file, data = sources[index % len(sources)]
        variant = index // len(sources)
        stem = f"{file.stem}_v{variant:04d}"
        rule = dict(data)
        rule["id"] = str(uuid.uuid5(NAMESPACE, stem))
        rule["title"] = f"{data.get('title', file.stem)} (variant {variant})"
        if "name" in rule:
            rule["name"] = stem
        if isinstance(data.get("detection"), dict) and variant:
            rule["detection"] = _vary_detection(data["detection"], f"-v{variant}")
        target = out / file.parent.name / f"{stem}.yml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_dump(rule), encoding="utf-8")
        written.append(target)
    return written


# --- scaled packs -------------------------------------------------------------------------------------

PACK_DIRS = ("datasources", "pipelines", "schemas", "coverage", "tests/fixtures")
PACK_FILES = ("tests/engine-differences.yml",)


def _copy_name(name: str, copy: int) -> str:
    return name if copy == 0 else f"{name}_c{copy:03d}"


def _with_copies(names: list[Any], copies: int) -> list[Any]:
    return [_copy_name(str(n), c) for n in names for c in range(copies)]


DIFFERENCES_NOTE = (
    "tests/engine-differences.yml would be {size:,} bytes with every copy's differences, over detpack's "
    "{limit:,}-byte limit for a YAML file: it lists the differences on single events for the original rules "
    "only (those on whole rules, `event: all`, for every copy). `detpack test` of the whole scaled pack "
    "fails on the copies' undocumented differences; the runs measured here select none of them"
)


def scaled_pack(root: Path, out: Path, copies: int, notes: list[str] | None = None) -> int:
    """Write a pack with every rule in `copies` copies to out/; return the number of rule files. What the
    scaled pack cannot hold like the original is appended to `notes`."""
    notes = [] if notes is None else notes
    for folder in PACK_DIRS:
        shutil.copytree(root / folder, out / folder)
    for name in PACK_FILES:
        if (root / name).exists():
            shutil.copy2(root / name, out / name)
    names = {f.stem for f in (root / "rules").rglob("*.yml")}
    count = 0
    for file in sorted((root / "rules").rglob("*.yml")):
        text = file.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        for copy in range(copies):
            stem = _copy_name(file.stem, copy)
            target = out / "rules" / file.parent.name / f"{stem}.yml"
            target.parent.mkdir(parents=True, exist_ok=True)
            count += 1
            if copy == 0:
                target.write_text(text, encoding="utf-8")
                continue
            target.write_text(_copy_rule(text, data, file.stem, copy, names), encoding="utf-8")
    for file in sorted((root / "ads").glob("*.md")):
        for copy in range(copies):
            target = out / "ads" / _ads_name(file, copy)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_copy_ads(file.read_text(encoding="utf-8"), copy, names), encoding="utf-8")
    for expect in sorted((out / "tests" / "fixtures").rglob("*.expect.yml")):
        expect.write_text(_scale_names(expect.read_text(encoding="utf-8"), names, copies), encoding="utf-8")
    differences = out / "tests" / "engine-differences.yml"
    if differences.exists():
        original = differences.read_text(encoding="utf-8")
        scaled = _scale_differences(original, copies)
        size = len(scaled.encode("utf-8"))
        if size > MAX_FILE_BYTES:  # see DIFFERENCES_NOTE
            scaled = _scale_differences(original, copies, per_event=False)
            notes.append(DIFFERENCES_NOTE.format(size=size, limit=MAX_FILE_BYTES))
        differences.write_text(scaled, encoding="utf-8")
    return count


def _copy_rule(text: str, data: dict[str, Any], stem: str, copy: int, names: set[str]) -> str:
    """A copy that differs only in what must be unique (id, title, name) and in the base rules it names."""
    new_id = str(uuid.uuid5(NAMESPACE, f"{stem}/{copy}"))
    text = text.replace(str(data["id"]), new_id, 1)
    title = str(data["title"])
    text = re.sub(r"(?m)^title: .*$", lambda _m: f"title: {title} (copy {copy})", text, count=1)
    if "name" in data:
        text = re.sub(r"(?m)^name: .*$", lambda _m: f"name: {_copy_name(str(data['name']), copy)}", text)
    correlation = data.get("correlation")
    if isinstance(correlation, dict):  # a copied correlation reads the same copy of its base rules
        for ref in correlation.get("rules", []):
            text = re.sub(
                rf"(?m)^(\s+- ){re.escape(str(ref))}\s*$", rf"\g<1>{_copy_name(str(ref), copy)}", text
            )
    return text


def _copy_ads(text: str, copy: int, names: set[str]) -> str:
    """Copy `copy` of ADS number N is number N + 100 * copy, with the same rules' copies."""
    if copy == 0:
        return text
    number = int(re.search(r"(?m)^id: DP-ADS-(\d+)$", text).group(1))  # type: ignore[union-attr]
    text = re.sub(r"(?m)^id: DP-ADS-\d+$", f"id: DP-ADS-{number + 100 * copy:04d}", text, count=1)
    title = re.search(r"(?m)^title: (.*)$", text).group(1)  # type: ignore[union-attr]
    suffix = f" (copy {copy})"
    new_title = title[: 120 - len(suffix)].rstrip() + suffix  # the schema's limit
    text = text.replace(f"title: {title}", f"title: {new_title}", 1)
    text = text.replace(f"\n# {title}\n", f"\n# {new_title}\n", 1)
    head, sep, body = text.partition("\n---\n")
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\b")
    return pattern.sub(lambda m: _copy_name(m.group(1), copy), head) + sep + body


def _ads_name(file: Path, copy: int) -> str:
    if copy == 0:
        return file.name
    number = int(file.name[len("dp-ads-") :][:4])
    return f"dp-ads-{number + 100 * copy:04d}{file.name[len('dp-ads-0000') :]}"


def _scale_names(text: str, names: set[str], copies: int) -> str:
    """Every rule named in an expectation list (fires, lookalike_for, ...) is followed by its copies."""
    data = yaml.safe_load(text)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            if node and all(isinstance(n, str) and n in names for n in node):
                return _with_copies(node, copies)
            return [walk(n) for n in node]
        return node

    return _dump(walk(data))


def _scale_differences(text: str, copies: int, per_event: bool = True) -> str:
    """Each documented difference holds for every copy of its rule (without `per_event`, only those of a
    whole rule, `event: all`; the others for the original only)."""
    data = yaml.safe_load(text)
    entries = data.get("differences") if isinstance(data, dict) else None
    if isinstance(entries, list):
        data["differences"] = [
            {**entry, "rule": _copy_name(str(entry["rule"]), copy)} if isinstance(entry, dict) else entry
            for entry in entries
            for copy in range(copies if per_event or entry.get("event") == "all" else 1)
        ]
    return _dump(data)
