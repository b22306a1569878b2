"""Findings: what an inspection check reports, and the stable finding identifiers.

The ``rule_id`` values are a public contract (``shared/DESIGN.md``): reports
from different inspectors and versions are compared by them.  A finding is a
frozen value with a deterministic order, so the same inputs always give
byte-identical SARIF.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    """Ordered so that ``max()`` gives the worst; SARIF levels via :attr:`sarif_level`."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def sarif_level(self) -> str:
        if self >= Severity.HIGH:
            return "error"
        if self == Severity.MEDIUM:
            return "warning"
        return "note"

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of {names})") from None


@dataclass(frozen=True)
class FindingKind:
    """One finding identifier of the public contract."""

    rule_id: str
    default_severity: Severity
    title: str
    description: str


_KINDS = (
    FindingKind(
        "content.compile-error",
        Severity.CRITICAL,
        "Content does not compile",
        "The content does not compile in the real engine.",
    ),
    FindingKind(
        "content.engine-crash",
        Severity.CRITICAL,
        "Engine crashed",
        "Compiling or scanning crashed, hung or ran out of memory in the sandbox.",
    ),
    FindingKind(
        "content.document-hunting",
        Severity.HIGH,
        "Hunts documents",
        "Looks for documents or their contents (markings, keywords, personal data, "
        "office/PDF/mail formats) rather than malicious code.",
    ),
    FindingKind(
        "content.targeting",
        Severity.HIGH,
        "Targets particular machines",
        "Depends on the identity of a host, user, organisation, network, locale or region.",
    ),
    FindingKind(
        "content.overbroad",
        Severity.HIGH,
        "Matches clean files",
        "Matches files of the clean corpus (mass false-positive risk).",
    ),
    FindingKind(
        "content.slow", Severity.MEDIUM, "Too slow", "Compile or scan cost beyond the budget."
    ),
    FindingKind(
        "content.exfiltration-action",
        Severity.CRITICAL,
        "Asks to upload what it matched",
        "Declares an upload / collect action on what is not malware.",
    ),
    FindingKind(
        "content.detection-removed",
        Severity.MEDIUM,
        "Detection removed or weakened",
        "Removes or weakens a detection that the previous release had.",
    ),
    FindingKind(
        "binary.capability-added",
        Severity.HIGH,
        "Capability added",
        "A build gains a capability (network, capture, keylogging, privilege, "
        "persistence, code loading).",
    ),
    FindingKind(
        "binary.undeclared-endpoint",
        Severity.HIGH,
        "Undeclared network endpoint",
        "A build or source contains a network endpoint the release does not declare.",
    ),
    FindingKind(
        "binary.not-reproducible",
        Severity.CRITICAL,
        "Not reproducible",
        "The binary does not rebuild bit-for-bit from the disclosed source.",
    ),
)

#: The finding identifiers of the public contract, by ``rule_id``.
FINDING_KINDS: Mapping[str, FindingKind] = {k.rule_id: k for k in _KINDS}


@dataclass(frozen=True, order=True)
class Location:
    """Where a finding is: a file (URI relative to the artifact root), lines, a logical name.

    For detection content, ``logical_name`` is the detection rule's name and
    ``uri`` its file (contract: ``locations[0].logicalLocations[0].name``).
    """

    uri: str
    logical_name: str | None = None
    start_line: int | None = None
    end_line: int | None = None
    snippet: str | None = None


@dataclass(frozen=True)
class Finding:
    """One finding.  ``evidence`` must be JSON-serialisable; it becomes SARIF properties."""

    rule_id: str
    severity: Severity
    message: str
    locations: tuple[Location, ...] = ()
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rule_id not in FINDING_KINDS:
            raise ValueError(f"unknown finding id {self.rule_id!r}")

    def sort_key(self) -> tuple[Any, ...]:
        """Deterministic order: worst first, then by id, place and message."""
        first = self.locations[0] if self.locations else Location("")
        return (
            -int(self.severity),
            self.rule_id,
            first.uri,
            first.logical_name or "",
            first.start_line or 0,
            self.message,
            json.dumps(self.evidence, sort_keys=True, default=str),
        )


def sorted_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=Finding.sort_key)
