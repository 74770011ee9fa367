#!/usr/bin/env python3
"""Trim an Enterprise ATT&CK STIX bundle to the snapshot detpack ships.

The pack pins ATT&CK v18.1 and never downloads it: pySigma's loader (``sigma.data.mitre_attack``) is pointed
at the trimmed file by ``detpack.offline.configure_offline()``, and ``detpack.attack`` reads the same file for
the pack's own checks. This script regenerates, from the full STIX 2.1 bundle:

* ``detpack/data/attack/enterprise-attack-<version>.trimmed.json`` -- the trimmed bundle;
* ``detpack/data/attack/PROVENANCE.md`` -- where it came from and how to rebuild it;
* ``detpack/data/attack/LICENSE.txt`` -- MITRE's ATT&CK license (copied verbatim; it requires attribution).

The output is deterministic: rerunning on the same input gives byte-identical files. Run from the repository
root::

    python scripts/trim_attack.py ../shared/attack/enterprise-attack-18.1.json

``--check`` compares instead of writing and exits 1 if the committed files are stale.
Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUNDLE = REPO_ROOT.parent / "shared" / "attack" / "enterprise-attack-18.1.json"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "detpack" / "data" / "attack"
EXPECTED_VERSION = "18.1"

# The command recorded in PROVENANCE.md. Fixed text (not sys.argv) so the output stays byte-identical.
REGENERATE_COMMAND = "python scripts/trim_attack.py ../shared/attack/enterprise-attack-18.1.json"

# Object types kept. pySigma's loader also reads intrusion-set, malware, tool, x-mitre-data-source and
# course-of-action (for attack.gNNNN / attack.sNNNN / data source / mitigation tags), but it does not need
# them to load: every collection it builds simply stays empty. The pack tags only tactics and techniques.
KEPT_TYPES: frozenset[str] = frozenset({"x-mitre-collection", "x-mitre-tactic", "attack-pattern"})

# Fields kept on every kept object (when present in the source; nothing is invented).
KEPT_FIELDS: frozenset[str] = frozenset(
    {
        "type",
        "id",
        "name",
        "spec_version",
        "external_references",
        "kill_chain_phases",
        "x_mitre_shortname",
        "x_mitre_platforms",
        "x_mitre_is_subtechnique",
        "revoked",
        "x_mitre_deprecated",
        "x_mitre_version",
    }
)

# Fields kept from the single ``mitre-attack`` external reference.
KEPT_REFERENCE_FIELDS: tuple[str, ...] = ("source_name", "external_id", "url")

# Namespace for the derived bundle id (uuid5 of the source digest): stable for a given source bundle.
_BUNDLE_NAMESPACE = uuid.UUID("8f0c1f5e-3a52-5b9e-9d7c-6a1d0c2b4e71")

_CTI_COMMIT_RE = re.compile(r"\bcommit\s+([0-9a-f]{7,40})\b", re.IGNORECASE)
_ATTRIBUTION_RE = re.compile(r'"(\u00a9[^"\n]*The MITRE Corporation\.)"')
_CTI_DATE_RE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


class TrimError(Exception):
    """The source bundle is not what this script expects."""


def _mitre_reference(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    for ref in obj.get("external_references", []):
        if isinstance(ref, Mapping) and ref.get("source_name") == "mitre-attack":
            return {key: ref[key] for key in KEPT_REFERENCE_FIELDS if key in ref}
    return None


def _external_id(obj: Mapping[str, Any]) -> str:
    ref = _mitre_reference(obj)
    if ref is None:
        return ""
    return str(ref.get("external_id", ""))


def _trim_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    trimmed: dict[str, Any] = {}
    for key in KEPT_FIELDS:
        if key not in obj:
            continue
        if key == "external_references":
            ref = _mitre_reference(obj)
            if ref is not None:
                trimmed[key] = [ref]
        elif key == "kill_chain_phases":
            trimmed[key] = [
                {"kill_chain_name": phase["kill_chain_name"], "phase_name": phase["phase_name"]}
                for phase in obj[key]
            ]
        else:
            trimmed[key] = obj[key]
    return trimmed


def _sort_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(obj.get("type", "")), _external_id(obj), str(obj.get("id", "")))


def _collection(objects: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    collections = [obj for obj in objects if obj.get("type") == "x-mitre-collection"]
    if len(collections) != 1:
        raise TrimError(f"expected exactly one x-mitre-collection object, found {len(collections)}")
    collection = collections[0]
    if not isinstance(collection.get("x_mitre_version"), str):
        raise TrimError("the x-mitre-collection object has no x_mitre_version")
    return collection


def trim_bundle(bundle: Mapping[str, Any], source_sha256: str) -> dict[str, Any]:
    """Return the trimmed bundle (a new dict; ``bundle`` is not modified)."""
    if bundle.get("type") != "bundle" or not isinstance(bundle.get("objects"), list):
        raise TrimError("the input is not a STIX bundle (no type=bundle with an objects list)")
    objects: list[Mapping[str, Any]] = [obj for obj in bundle["objects"] if isinstance(obj, Mapping)]
    _collection(objects)
    kept = [_trim_object(obj) for obj in objects if obj.get("type") in KEPT_TYPES]
    for obj in kept:
        if obj["type"] != "x-mitre-collection" and not _external_id(obj):
            raise TrimError(f"{obj['id']} has no mitre-attack external_id")
    kept.sort(key=_sort_key)
    ids = Counter((obj["type"], _external_id(obj)) for obj in kept if obj["type"] != "x-mitre-collection")
    duplicates = sorted(f"{kind} {ext_id}" for (kind, ext_id), count in ids.items() if count > 1)
    if duplicates:
        raise TrimError(f"duplicate ATT&CK IDs in the source bundle: {', '.join(duplicates)}")
    return {
        "type": "bundle",
        "id": f"bundle--{uuid.uuid5(_BUNDLE_NAMESPACE, 'detpack-trimmed-attack:' + source_sha256)}",
        "objects": kept,
    }


def dump_bundle(bundle: Mapping[str, Any]) -> bytes:
    """Canonical serialisation: sorted keys, no whitespace, UTF-8, trailing newline."""
    text = json.dumps(bundle, sort_keys=True, indent=None, separators=(",", ":"), ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def render_provenance(
    *,
    source: Mapping[str, Any],
    trimmed: Mapping[str, Any],
    source_name: str,
    source_size: int,
    source_sha256: str,
    output_name: str,
    output_size: int,
    license_text: str,
) -> bytes:
    """PROVENANCE.md for the snapshot. Depends only on the input bundle, so it is deterministic."""
    collection = _collection([obj for obj in source["objects"] if isinstance(obj, Mapping)])
    version = str(collection["x_mitre_version"])
    description = str(collection.get("description", ""))
    commit_match = _CTI_COMMIT_RE.search(description)
    date_match = _CTI_DATE_RE.search(description)
    commit = commit_match.group(1) if commit_match else "not stated in the bundle"
    commit_date = date_match.group(1) if date_match else "not stated"

    source_counts = Counter(str(obj.get("type")) for obj in source["objects"] if isinstance(obj, Mapping))
    kept_objects: list[Mapping[str, Any]] = list(trimmed["objects"])
    techniques = [obj for obj in kept_objects if obj["type"] == "attack-pattern"]
    revoked = sum(1 for obj in techniques if obj.get("revoked"))
    deprecated = sum(1 for obj in techniques if obj.get("x_mitre_deprecated") and not obj.get("revoked"))
    subtechniques = sum(1 for obj in techniques if obj.get("x_mitre_is_subtechnique"))
    tactics = sum(1 for obj in kept_objects if obj["type"] == "x-mitre-tactic")
    dropped = sorted((kind, count) for kind, count in source_counts.items() if kind not in KEPT_TYPES)
    dropped_lines = "\n".join(f"| `{kind}` | {count} |" for kind, count in dropped)
    attribution_match = _ATTRIBUTION_RE.search(license_text)
    attribution = (
        f"{attribution_match.group(1)} See `LICENSE.txt`."
        if attribution_match
        else "See `LICENSE.txt` for MITRE's copyright designation and license."
    )
    kept_fields = ", ".join(f"`{field}`" for field in sorted(KEPT_FIELDS))

    text = f"""# Provenance of the ATT&CK snapshot

<!-- Generated by scripts/trim_attack.py; do not edit by hand, rerun the script. -->

| | |
|---|---|
| Framework | MITRE ATT&CK, Enterprise domain |
| ATT&CK version | {version} (`x_mitre_version` of the `x-mitre-collection` object) |
| Source bundle | `{source_name}` ({source_size} bytes), STIX 2.1 |
| Source sha256 | `{source_sha256}` |
| mitre/cti commit | `{commit}` ({commit_date}), as named in the collection's description |
| Trimmed file | `{output_name}` ({output_size} bytes) |
| License | MITRE's ATT&CK license, copied verbatim to `LICENSE.txt` (attribution required) |

The collection object describes its source as:

> {description}

{attribution}

## Regenerating

From the repository root, with the full bundle checked out next to the repository:

```sh
{REGENERATE_COMMAND}
```

The script uses the standard library only and is deterministic: objects are sorted by (type, ATT&CK ID, STIX
id) and serialised with `json.dumps(sort_keys=True, separators=(",", ":"))` plus a trailing newline, so a
rerun on the same bundle gives byte-identical output:
`{output_name}`, `PROVENANCE.md` and `LICENSE.txt`. `tests/test_attack_snapshot.py` checks this whenever
`../shared` is present; add `--check` to compare without writing. The bundle id is derived from the
source sha256 (uuid5), so it changes only with the source.

## What was kept

| Kept | Count |
|---|---|
| `x-mitre-collection` | 1 (carries the version) |
| `x-mitre-tactic` | {tactics} |
| `attack-pattern` (techniques and sub-techniques) | {len(techniques)} ({subtechniques} sub-techniques) |
| of which revoked | {revoked} |
| of which deprecated (not revoked) | {deprecated} |

Revoked and deprecated techniques are kept on purpose, so the pack can report "T1234 is deprecated" (or
revoked) instead of "unknown technique". pySigma's own loader skips them, so its `ATTACKTagValidator` treats
them as invalid tags either way.

Fields kept, where the source has them:

{kept_fields}.

Of `external_references` only the `mitre-attack` entry is kept, with `source_name`, `external_id` and `url`.
Nothing is added or rewritten.

## What was trimmed, and why

Fields: descriptions, detection text, citations (all other `external_references`), contributors,
timestamps, `created_by_ref`, marking references, domains and ATT&CK spec versions. Neither pySigma's loader
(`sigma.data.mitre_attack._load_mitre_attack_data`) nor `detpack.attack` reads them, and they are most of
the 9.5 MB. Because `created`/`modified` are dropped, the file is a STIX 2.1 bundle in shape (types, ids,
bundle wrapper) but not one a strict STIX 2.1 schema validator would accept; it is a build input, not a
feed for a threat-intelligence platform.

Object types dropped entirely:

| Dropped type | Count in source |
|---|---|
{dropped_lines}

pySigma's loader reads `intrusion-set`, `malware`, `tool`, `x-mitre-data-source` and `course-of-action`
only to accept `attack.gNNNN`, `attack.sNNNN`, data-source and mitigation tags; it loads fine without them
(those tag sets are then empty, so such tags are reported invalid). The pack tags only tactics and
techniques. Analytics, detection strategies, data components, campaigns, the matrix, the identity and the
marking definition are not read by pySigma at all. The source bundle has no `relationship` objects, so
"revoked-by" links are not available from it either.

## Why ATT&CK v18.1 and not v19

ATT&CK v19 (2026) renumbered Impair Defenses: T1562 and several of its sub-techniques moved to T1685 (for
example T1562.001 "Disable or Modify Tools" became T1685, T1562.002 became T1685.001, T1562.008 became
T1685.002), log clearing (T1070.001/.002) moved to T1685.005/.006, and the firewall sub-techniques moved to
T1686.

The pack pins v18.1 deliberately: the Elastic and Splunk content that SOCs import alongside it still uses
v18.1 IDs, and mixing the two numberings would break correlation across rule sets. A v19 ID such as T1685
is therefore *unknown* to this snapshot. Moving to v19 is a deliberate change: regenerate from a v19 bundle
(the script refuses any version other than `--expect-version`, default {EXPECTED_VERSION}), update the file
name in `detpack/attack.py` and retag the rules using the published v18 -> v19 mapping.
"""
    return text.encode("utf-8")


def build_outputs(bundle_path: Path, license_path: Path, expect_version: str) -> dict[str, bytes]:
    """File name -> content for everything the script writes."""
    raw = bundle_path.read_bytes()
    source_sha256 = hashlib.sha256(raw).hexdigest()
    source = json.loads(raw)
    if not isinstance(source, dict):
        raise TrimError(f"{bundle_path}: not a JSON object")
    trimmed = trim_bundle(source, source_sha256)
    version = str(_collection([o for o in source["objects"] if isinstance(o, Mapping)])["x_mitre_version"])
    if version != expect_version:
        raise TrimError(
            f"{bundle_path} is ATT&CK {version}, expected {expect_version}; the pack pins its ATT&CK version"
            " deliberately (see PROVENANCE.md), pass --expect-version to change it"
        )
    output_name = f"enterprise-attack-{version}.trimmed.json"
    license_bytes = license_path.read_bytes()
    trimmed_bytes = dump_bundle(trimmed)
    provenance = render_provenance(
        source=source,
        trimmed=trimmed,
        source_name=bundle_path.name,
        source_size=len(raw),
        source_sha256=source_sha256,
        output_name=output_name,
        output_size=len(trimmed_bytes),
        license_text=license_bytes.decode("utf-8"),
    )
    return {
        output_name: trimmed_bytes,
        "PROVENANCE.md": provenance,
        "LICENSE.txt": license_bytes,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "bundle",
        nargs="?",
        type=Path,
        default=DEFAULT_BUNDLE,
        help="full Enterprise ATT&CK STIX 2.1 bundle (default: ../shared/attack/enterprise-attack-18.1.json "
        "relative to the repository root)",
    )
    parser.add_argument(
        "--license",
        type=Path,
        default=None,
        help="MITRE's ATT&CK license text (default: LICENSE.txt next to the bundle)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_OUTPUT_DIR,
        help="where to write the snapshot (default: detpack/data/attack in the repository)",
    )
    parser.add_argument(
        "--expect-version",
        default=EXPECTED_VERSION,
        help=f"refuse bundles of any other ATT&CK version (default: {EXPECTED_VERSION})",
    )
    parser.add_argument(
        "--check", action="store_true", help="compare with the files in --output-dir instead of writing"
    )
    args = parser.parse_args(argv)
    bundle_path: Path = args.bundle
    license_path: Path = args.license if args.license is not None else bundle_path.parent / "LICENSE.txt"
    output_dir: Path = args.output_dir

    try:
        outputs = build_outputs(bundle_path, license_path, args.expect_version)
    except (OSError, ValueError, TrimError, KeyError, TypeError) as exc:
        print(f"trim_attack: error: {exc}", file=sys.stderr)
        return 2

    if args.check:
        stale = [
            name
            for name, content in outputs.items()
            if not (output_dir / name).is_file() or (output_dir / name).read_bytes() != content
        ]
        for name in stale:
            print(f"trim_attack: {output_dir / name} is stale; rerun: {REGENERATE_COMMAND}", file=sys.stderr)
        return 1 if stale else 0

    output_dir.mkdir(parents=True, exist_ok=True)
    for name, content in outputs.items():
        (output_dir / name).write_bytes(content)
        print(f"wrote {output_dir / name} ({len(content)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
