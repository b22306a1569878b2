"""The rows a regulator's report is made of: one release, verdict, decision, witness each.

Kept apart from :mod:`clearance.report.collect` so that :mod:`clearance.report.served`
can name them without importing the collector that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from clearance.policy import DistributionDecision


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end


@dataclass
class VerdictRow:
    index: int
    decision: str
    inspector: str
    automated: bool
    inspected_at: datetime | None
    findings: dict[str, dict[str, int]]
    sarif_sha256: str
    note: str


@dataclass
class TransitionRow:
    index: int
    event: str
    ring: str
    at: datetime | None
    reason: str


@dataclass
class ReleaseRow:
    index: int
    sha256: str
    product: str
    version: str
    channel: str
    verdicts: list[VerdictRow] = field(default_factory=list)
    transitions: list[TransitionRow] = field(default_factory=list)
    #: Logged health per ring: [ok, failed] counted from health reports and aggregates.
    health: dict[str, list[int]] = field(default_factory=dict)

    @property
    def dated(self) -> datetime | None:
        moments = [v.inspected_at for v in self.verdicts if v.inspected_at is not None]
        moments += [t.at for t in self.transitions if t.at is not None]
        return min(moments) if moments else None

    @property
    def decision(self) -> str:
        return self.verdicts[-1].decision if self.verdicts else "no verdict"


@dataclass(frozen=True)
class DecisionRow:
    release: ReleaseRow
    entitlement_index: int
    customer: str
    jurisdiction: str
    moment: datetime
    decision: DistributionDecision


@dataclass(frozen=True)
class TreatmentRow:
    """One release that some jurisdictions received and ``jurisdiction`` did not."""

    release: ReleaseRow
    jurisdiction: str
    received_by: tuple[str, ...]
    explanation: str
    explained: bool


@dataclass(frozen=True)
class WitnessRow:
    name: str
    cosigned: bool
    timestamp: datetime | None
