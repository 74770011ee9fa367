"""The pinned MITRE ATT&CK snapshot (Enterprise v18.1), as typed data for the pack's own checks.

The snapshot is ``detpack/data/attack/enterprise-attack-18.1.trimmed.json``, produced by
``scripts/trim_attack.py`` (see ``detpack/data/attack/PROVENANCE.md``). Unlike pySigma's loader, which skips
revoked and deprecated objects, this loader keeps them, so a check can say "T1234 is deprecated" rather
than "unknown technique".

Sigma tag convention: ``attack.tNNNN`` / ``attack.tNNNN.NNN`` for techniques and sub-techniques,
``attack.<tactic shortname>`` for tactics (hyphenated, e.g. ``attack.defense-evasion``), ``attack.gNNNN`` and
``attack.sNNNN`` for groups and software (not used by the pack, not in the snapshot).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

ATTACK_VERSION = "18.1"
ATTACK_SNAPSHOT_FILE = f"enterprise-attack-{ATTACK_VERSION}.trimmed.json"

_TECHNIQUE_TAG_RE = re.compile(r"attack\.t(\d{4})(?:\.(\d{3}))?")
_TACTIC_TAG_RE = re.compile(r"attack\.([a-z]+(?:-[a-z]+)*)")
_TECHNIQUE_ID_RE = re.compile(r"T\d{4}(?:\.\d{3})?")


class AttackSnapshotError(ValueError):
    """The packaged snapshot is missing or malformed (a packaging bug, not a rule problem)."""


@dataclass(frozen=True)
class Tactic:
    id: str  # e.g. "TA0005"
    shortname: str  # e.g. "defense-evasion": the Sigma tag name and the kill-chain phase name
    name: str  # e.g. "Defense Evasion"


@dataclass(frozen=True)
class Technique:
    id: str  # upper case, e.g. "T1610" or "T1562.001"
    name: str
    tactics: tuple[str, ...]  # tactic shortnames, in ATT&CK's order
    platforms: tuple[str, ...]
    deprecated: bool
    revoked: bool
    url: str

    @property
    def is_subtechnique(self) -> bool:
        return "." in self.id

    @property
    def parent_id(self) -> str | None:
        """The parent technique ID ("T1562" for "T1562.001"); None for a technique."""
        return self.id.split(".", 1)[0] if self.is_subtechnique else None

    @property
    def current(self) -> bool:
        """Neither revoked nor deprecated: the only techniques pySigma's validator accepts."""
        return not (self.revoked or self.deprecated)


@dataclass(frozen=True)
class AttackSnapshot:
    version: str  # "18.1"
    tactics: dict[str, Tactic]  # keyed by shortname, e.g. "defense-evasion"
    techniques: dict[str, Technique]  # keyed by upper-case ID, e.g. "T1610", "T1562.001"


def technique_for_tag(tag: str) -> str | None:
    """The technique ID a technique-shaped Sigma tag names: "attack.t1562.001" -> "T1562.001", else None.

    Only the lower-case Sigma form is recognised (pySigma's TagFormatValidator rejects upper case anyway).
    The ID is not looked up; use ``load_attack().techniques`` for that.
    """
    match = _TECHNIQUE_TAG_RE.fullmatch(tag)
    if match is None:
        return None
    technique, sub = match.groups()
    return f"T{technique}" if sub is None else f"T{technique}.{sub}"


def tactic_for_tag(tag: str) -> str | None:
    """The tactic shortname a tactic-shaped Sigma tag names: "attack.defense-evasion" -> "defense-evasion".

    None for anything else: technique/group/software tags (they contain digits), other namespaces, and the
    legacy underscore form "attack.defense_evasion". The shortname is not looked up; use
    ``load_attack().tactics`` for that.
    """
    match = _TACTIC_TAG_RE.fullmatch(tag)
    return None if match is None else match.group(1)


def _snapshot_resource() -> Traversable:
    return resources.files("detpack") / "data" / "attack" / ATTACK_SNAPSHOT_FILE


def _mitre_reference(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    for ref in obj.get("external_references", []):
        if isinstance(ref, Mapping) and ref.get("source_name") == "mitre-attack" and ref.get("external_id"):
            return ref
    raise AttackSnapshotError(f"{obj.get('id', '?')}: no mitre-attack external reference")


def _str_tuple(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AttackSnapshotError(f"{what}: expected a list of strings")
    return tuple(value)


def parse_snapshot(bundle: Mapping[str, Any]) -> AttackSnapshot:
    """Build an AttackSnapshot from a (trimmed or full) Enterprise ATT&CK STIX bundle."""
    objects = bundle.get("objects")
    if bundle.get("type") != "bundle" or not isinstance(objects, list):
        raise AttackSnapshotError("not a STIX bundle")
    version: str | None = None
    tactics: dict[str, Tactic] = {}
    techniques: dict[str, Technique] = {}
    for obj in objects:
        if not isinstance(obj, Mapping):
            continue
        kind = obj.get("type")
        if kind == "x-mitre-collection":
            version = str(obj["x_mitre_version"])
        elif kind == "x-mitre-tactic":
            shortname = str(obj["x_mitre_shortname"])
            tactics[shortname] = Tactic(
                id=str(_mitre_reference(obj)["external_id"]), shortname=shortname, name=str(obj["name"])
            )
        elif kind == "attack-pattern":
            ref = _mitre_reference(obj)
            technique_id = str(ref["external_id"]).upper()
            if _TECHNIQUE_ID_RE.fullmatch(technique_id) is None:
                raise AttackSnapshotError(f"{obj.get('id', '?')}: unexpected technique ID {technique_id!r}")
            if technique_id in techniques:
                raise AttackSnapshotError(f"duplicate technique ID {technique_id}")
            phases = obj.get("kill_chain_phases", [])
            if not isinstance(phases, list):
                raise AttackSnapshotError(f"{technique_id}: kill_chain_phases is not a list")
            techniques[technique_id] = Technique(
                id=technique_id,
                name=str(obj["name"]),
                tactics=tuple(
                    str(phase["phase_name"])
                    for phase in phases
                    if isinstance(phase, Mapping) and phase.get("kill_chain_name") == "mitre-attack"
                ),
                platforms=_str_tuple(obj.get("x_mitre_platforms", []), f"{technique_id}: x_mitre_platforms"),
                deprecated=bool(obj.get("x_mitre_deprecated", False)),
                revoked=bool(obj.get("revoked", False)),
                url=str(ref.get("url", "")),
            )
    if version is None:
        raise AttackSnapshotError("no x-mitre-collection object with x_mitre_version")
    return AttackSnapshot(version=version, tactics=tactics, techniques=techniques)


@functools.cache
def load_attack() -> AttackSnapshot:
    """The packaged ATT&CK snapshot (read once per process; treat the result as read-only)."""
    resource = _snapshot_resource()
    try:
        bundle = json.loads(resource.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise AttackSnapshotError(
            f"cannot read the packaged ATT&CK snapshot {ATTACK_SNAPSHOT_FILE}: {exc}"
        ) from exc
    if not isinstance(bundle, Mapping):
        raise AttackSnapshotError(f"{ATTACK_SNAPSHOT_FILE}: not a JSON object")
    try:
        snapshot = parse_snapshot(bundle)
    except (KeyError, TypeError) as exc:
        raise AttackSnapshotError(f"{ATTACK_SNAPSHOT_FILE}: malformed object: {exc!r}") from exc
    if snapshot.version != ATTACK_VERSION:
        raise AttackSnapshotError(
            f"{ATTACK_SNAPSHOT_FILE} says ATT&CK {snapshot.version}, expected {ATTACK_VERSION}"
        )
    return snapshot
