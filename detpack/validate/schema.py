"""JSON Schema checks that report the line of the offending key, not just a JSON path."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from detpack.findings import Finding

LineOf = Callable[[tuple[str | int, ...]], int]


@cache
def load_validator(schema_file: Path) -> Draft202012Validator:
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _offending_keys(error: ValidationError) -> list[str]:
    """For additionalProperties errors: the keys the schema does not allow."""
    instance, schema = error.instance, error.schema
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return []
    allowed = set(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    return [k for k in instance if k not in allowed and not any(p.search(str(k)) for p in patterns)]


def _describe(error: ValidationError) -> str:
    location = "/".join(str(p) for p in error.absolute_path)
    message = error.message
    if len(message) > 300:
        message = message[:300] + "..."
    return f"{location}: {message}" if location else message


def schema_findings(
    validator: Draft202012Validator, data: Any, path: str, code: str, line_of: LineOf
) -> list[Finding]:
    findings: list[Finding] = []
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        json_path = tuple(error.absolute_path)
        fix = str(error.schema.get("description", "")) if isinstance(error.schema, dict) else ""
        if error.validator == "additionalProperties":
            for key in _offending_keys(error):
                hint = "remove it or correct its spelling"
                allowed = sorted(error.schema.get("properties", {}))
                if allowed:
                    close = _closest(str(key), allowed)
                    hint = f"did you mean {close!r}?" if close else f"allowed keys: {', '.join(allowed)}"
                findings.append(Finding(path, line_of((*json_path, key)), code, f"unknown key {key!r}", hint))
            continue
        if "propertyNames" in error.relative_schema_path:
            # the failing instance is a key of the object at json_path: point at the key's own line
            key = str(error.instance)
            findings.append(
                Finding(
                    path,
                    line_of((*json_path, key)),
                    code,
                    f"key {key!r} is not valid here",
                    fix or "check the key's spelling",
                )
            )
            continue
        findings.append(Finding(path, line_of(json_path), code, _describe(error), fix))
    return findings


def _closest(word: str, choices: list[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return matches[0] if matches else None
