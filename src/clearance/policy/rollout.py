"""The rollout rule: rings, and when a ring halts or advances, as a pure function of reports.

This is the one statement of the rule, used by the gateway to decide, by the
auditor to recompute every logged transition, and by the endpoint to read a
release's rollout state from its signed transitions.  Nothing here reads the
clock, a store or the network.

* Rings are cumulative shares of customers; a customer's position is a stable
  hash of its id, so the canary customers are the same for every release.
* Health reports count **once per reporting device per window**: the window is
  the ring's current stay (from the logged transition that entered or resumed
  it), and a device's latest report in the window is its vote.  One key sending
  forty ``ok`` reports is one healthy device; five reports of one failing device
  are one failure.
* A ring **halts** when at least ``min_reports`` devices reported and the share of
  failing devices exceeds ``failure_threshold``.
* A ring **advances** only after its soak time, and only when at least
  ``min_healthy`` distinct devices reported healthy in the window and the failure
  share is within the threshold.  **Silence counts as failure**: when the soak
  time plus ``silence_after`` has passed without enough healthy devices, the
  ring halts (canaries that crash and never report do not look healthy).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clearance.policy.errors import PolicyFormatError

HEALTH_OK = "ok"
HEALTH_FAILED = "failed"
HEALTH_ENGINE_CRASH = "engine-crash"
HEALTH_STATES = (HEALTH_OK, HEALTH_FAILED, HEALTH_ENGINE_CRASH)

ADVANCED = "advanced"
HALTED = "halted"
COMPLETED = "completed"

_BUCKETS = 10_000
DEFAULT_SILENCE = timedelta(hours=24)


@dataclass(frozen=True)
class Ring:
    name: str
    #: Cumulative share of customers reached once this ring is open, in percent.
    percent: float
    soak: timedelta
    #: Halt when failing devices / reporting devices exceeds this, once min_reports reported.
    failure_threshold: float = 0.05
    min_reports: int = 1
    #: Distinct devices that must report healthy before the ring may advance; None: the
    #: same as ``min_reports``.  0 means "no health gate" (tests and demos only).
    min_healthy: int | None = None
    #: After soak + this without enough healthy devices, the ring halts (silence).
    silence_after: timedelta = DEFAULT_SILENCE

    def __post_init__(self) -> None:
        if self.min_healthy is None:  # normalised, so a ring equals its round trip
            object.__setattr__(self, "min_healthy", self.min_reports)

    @property
    def healthy_needed(self) -> int:
        return self.min_reports if self.min_healthy is None else self.min_healthy

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "percent": self.percent,
            "soak_seconds": int(self.soak.total_seconds()),
            "failure_threshold": self.failure_threshold,
            "min_reports": self.min_reports,
            "min_healthy": self.healthy_needed,
            "silence_seconds": int(self.silence_after.total_seconds()),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ring:
        try:
            return cls(
                str(data["name"]),
                float(data["percent"]),
                timedelta(seconds=int(data["soak_seconds"])),
                float(data["failure_threshold"]),
                int(data["min_reports"]),
                int(data["min_healthy"]) if "min_healthy" in data else None,
                timedelta(
                    seconds=int(data.get("silence_seconds", DEFAULT_SILENCE.total_seconds()))
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PolicyFormatError(f"rollout ring is malformed: {exc}") from None


def customer_bucket(customer: str) -> float:
    """The customer's stable position in [0, 100): who is canary does not change per release."""
    digest = hashlib.sha256(b"clearance-rollout\x00" + customer.encode()).digest()
    return (int.from_bytes(digest[:8], "big") % _BUCKETS) * 100.0 / _BUCKETS


def reaches(ring: Ring, customer: str) -> bool:
    return customer_bucket(customer) < ring.percent


@dataclass(frozen=True)
class Report:
    """One logged health report: who (the signing device key id), what, and where in the log."""

    device: str
    status: str
    log_index: int


@dataclass(frozen=True)
class Tally:
    """Distinct devices in one ring's window, by their latest status."""

    healthy: int = 0
    failing: int = 0

    @property
    def devices(self) -> int:
        return self.healthy + self.failing

    @property
    def failure_rate(self) -> float:
        return 0.0 if self.devices == 0 else self.failing / self.devices

    def to_dict(self) -> dict[str, int]:
        return {"devices": self.devices, "healthy": self.healthy, "failing": self.failing}


def latest_statuses(reports: Iterable[Report]) -> dict[str, str]:
    """Each device's latest status (by log index) among ``reports``; unknown ones skipped."""
    latest: dict[str, Report] = {}
    for report in reports:
        if report.status not in HEALTH_STATES:
            continue
        seen = latest.get(report.device)
        if seen is None or report.log_index > seen.log_index:
            latest[report.device] = report
    return {device: report.status for device, report in latest.items()}


def tally(
    reports: Iterable[Report],
    newer_by_status: Mapping[str, int] | None = None,
    newer_devices: Collection[str] = (),
) -> Tally:
    """Each device counts once: its latest report (by log index) in the window.

    ``newer_by_status`` counts devices whose reports are newer than every one of
    ``reports`` (bulk reports, counted where they are stored) by their status, and
    ``newer_devices`` says which of the devices of ``reports`` are among them: those
    count by their newer report only.
    """
    statuses = [
        status
        for device, status in latest_statuses(reports).items()
        if device not in newer_devices
    ]
    newer = {s: n for s, n in (newer_by_status or {}).items() if s in HEALTH_STATES}
    healthy = statuses.count(HEALTH_OK) + newer.get(HEALTH_OK, 0)
    return Tally(healthy, len(statuses) + sum(newer.values()) - healthy)


@dataclass(frozen=True)
class Judgement:
    """What the rule says now: an event (``halted``, ``advanced``, ``completed``) or None."""

    event: str | None
    reason: str


def judge(
    ring: Ring, last_ring: bool, entered: datetime, counts: Tally, now: datetime
) -> Judgement:
    """The rule for an active ring entered at ``entered`` with ``counts`` in its window."""
    if counts.devices >= ring.min_reports and counts.failure_rate > ring.failure_threshold:
        return Judgement(
            HALTED,
            f"{counts.failing} of {counts.devices} reporting devices failed in ring "
            f"{ring.name} ({counts.failure_rate:.1%} > {ring.failure_threshold:.1%})",
        )
    stayed = now - entered
    if stayed < ring.soak:
        return Judgement(None, f"ring {ring.name} soaks until {entered + ring.soak}")
    if counts.healthy < ring.healthy_needed:
        if stayed >= ring.soak + ring.silence_after:
            return Judgement(
                HALTED,
                f"silence: only {counts.healthy} of the {ring.healthy_needed} healthy devices "
                f"needed reported in ring {ring.name} within {ring.soak + ring.silence_after}",
            )
        return Judgement(
            None,
            f"ring {ring.name}: {counts.healthy} of {ring.healthy_needed} healthy devices reported",
        )
    if last_ring:
        return Judgement(COMPLETED, "all rings open")
    return Judgement(
        ADVANCED,
        f"ring {ring.name} soaked {ring.soak} with {counts.healthy} healthy of "
        f"{counts.devices} reporting devices",
    )


def check_rings(rings: Iterable[Ring]) -> tuple[Ring, ...]:
    out = tuple(rings)
    if not out:
        raise PolicyFormatError("a rollout needs at least one ring")
    last = 0.0
    for ring in out:
        if not 0 < ring.percent <= 100 or ring.percent < last:
            raise PolicyFormatError(f"ring {ring.name}: percents must grow within (0, 100]")
        if ring.healthy_needed < 0 or ring.min_reports < 0:
            raise PolicyFormatError(f"ring {ring.name}: device counts cannot be negative")
        last = ring.percent
    if out[-1].percent != 100:
        raise PolicyFormatError("the last ring must reach 100 % of customers")
    return out
