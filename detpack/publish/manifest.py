"""dist/manifest.json: what was built from what, with a checksum of every file.

No timestamps: the same input must give the same bytes (the pack's version and the pinned tool
versions say when it was built).
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

from detpack import __version__
from detpack.attack import load_attack
from detpack.content.pack import Pack
from detpack.correlation import building_blocks

TOOL_PACKAGES = (
    "pysigma",
    "pysigma-backend-splunk",
    "pysigma-backend-elasticsearch",
    "pysigma-backend-sqlite",
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(pack: Pack, out: Path, details: dict[str, Any] | None = None) -> Path:
    """Write dist/manifest.json; `details` (artifact paths, rule versions, what each target skipped and
    why) is merged in at the top level.

    `rules` lists what ships, like the Splunk app, the Kibana NDJSON and versions.lock.json: building
    blocks (base rules of a correlation, `generate: false`, no query of their own) are under
    `building_blocks` instead, each with the correlation it belongs to."""
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")
    blocks = building_blocks(pack)
    manifest: dict[str, Any] = {
        "detpack": __version__,
        "attack": {"domain": "enterprise-attack", "version": load_attack().version},
        "tools": {name: version(name) for name in TOOL_PACKAGES},
        "rules": [
            {
                "name": rule.name,
                "id": rule.rule_id,
                "title": rule.title,
                "file": rule.path,
                "level": rule.data.get("level"),
                "status": rule.data.get("status"),
            }
            for rule in sorted(pack.rules, key=lambda r: r.name)
            if rule.name not in blocks
        ],
        "building_blocks": dict(sorted(blocks.items())),
        "files": {p.relative_to(out).as_posix(): sha256(p) for p in files},
        **(details or {}),
    }
    path = out / "manifest.json"
    path.write_text(
        json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return path
