"""Located findings: every problem the pack reports names a file, a line, what is wrong and the fix."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Finding:
    path: str  # repository-relative, forward slashes
    line: int  # 1-based; 0 when the problem concerns the whole file
    code: str  # stable identifier, e.g. "schema", "attack-tag-unknown"
    message: str
    fix: str = ""
    severity: Severity = Severity.ERROR

    def render(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        text = f"{where}: {self.severity.value}: [{self.code}] {self.message}"
        if self.fix:
            text += f" (fix: {self.fix})"
        return text


def finding_to_json(finding: Finding) -> list[str | int]:
    return [finding.path, finding.line, finding.code, finding.message, finding.fix, finding.severity.value]


def finding_from_json(value: list[str | int]) -> Finding:
    path, line, code, message, fix, severity = value
    return Finding(str(path), int(line), str(code), str(message), str(fix), Severity(severity))


def relpath(path: Path, root: Path) -> str:
    """The path as the user sees it: relative to the pack root when inside it."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


class ContentError(Exception):
    """Raised when content cannot even be loaded; carries the located findings."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__("\n".join(f.render() for f in findings))
        self.findings = findings


class UsageError(ValueError):
    """A setting or argument the user must correct (the message says how): the CLI prints it as one line
    and exits with its usage code, 2; it is neither a content finding nor a detpack bug."""
