"""Health reports in bulk, and the per-ring, per-window aggregate that goes into the log.

Health reports are the high-volume write: one per endpoint per install.
Logging each would grow the log by one entry per endpoint, so instead:

* ``POST /api/v1/health-reports/bulk`` takes many signed reports at once;
  their signatures are checked in the :class:`~clearance.gateway._sigpool.SignaturePool`
  and the accepted ones are stored (``health.sqlite``, one transaction per
  request) and counted towards the rollout at once;
* when a window closes, the leader replica appends one :class:`HealthAggregate`
  per (release, ring, window): the counts per status plus the RFC 6962
  Merkle root over the individual report envelopes, ordered by their SHA-256
  (so every replica computes the same aggregate, whatever the arrival order).
  The entry is covered by the log's signed checkpoint, as rollout transitions
  are;
* the individual reports stay retrievable
  (``GET /api/v1/health-aggregates/{log_index}``), and anyone can recompute
  the root and prove one report's membership with :mod:`clearance.log.merkle`.

This format is separate from how the rollout counts reports (per device or
per report): the aggregate records exactly which reports were accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from clearance.attest import canonical_json
from clearance.gateway._entries import HEALTH_AGGREGATE_TYPE
from clearance.gateway.errors import GatewayInputError
from clearance.log import merkle

AGGREGATE_TYPE = HEALTH_AGGREGATE_TYPE
STATUSES = ("ok", "failed", "engine-crash")


@dataclass(frozen=True)
class HealthAggregate:
    """The logged summary of one (release, ring, window) of health reports."""

    release: str
    ring: str
    window_start: int
    window_seconds: int
    counts: tuple[tuple[str, int], ...]
    reports: int
    merkle_root: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "_type": AGGREGATE_TYPE,
            "release": self.release,
            "ring": self.ring,
            "window_start": self.window_start,
            "window_seconds": self.window_seconds,
            "counts": dict(self.counts),
            "reports": self.reports,
            "merkle_root": self.merkle_root.hex(),
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> HealthAggregate:
        if not isinstance(data, dict) or data.get("_type") != AGGREGATE_TYPE:
            raise GatewayInputError("not a health aggregate")
        try:
            counts = data["counts"]
            if not isinstance(counts, dict) or set(counts) - set(STATUSES):
                raise ValueError("counts")
            root = bytes.fromhex(str(data["merkle_root"]))
            if len(root) != merkle.HASH_SIZE:
                raise ValueError("merkle_root")
            return cls(
                release=str(data["release"]),
                ring=str(data["ring"]),
                window_start=int(data["window_start"]),
                window_seconds=int(data["window_seconds"]),
                counts=tuple((s, int(counts.get(s, 0))) for s in STATUSES),
                reports=int(data["reports"]),
                merkle_root=root,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GatewayInputError(f"health aggregate: malformed ({exc})") from None

    @classmethod
    def build(
        cls,
        release: str,
        ring: str,
        window_start: int,
        window_seconds: int,
        reports: Sequence[tuple[str, str, bytes]],
    ) -> HealthAggregate:
        """From (sha256, status, envelope) rows: counts and the root over the envelopes."""
        return cls.from_ordered(release, ring, window_start, window_seconds, sorted(reports))

    @classmethod
    def from_ordered(
        cls,
        release: str,
        ring: str,
        window_start: int,
        window_seconds: int,
        reports: Iterable[tuple[str, str, bytes]],
    ) -> HealthAggregate:
        """From (sha256, status, envelope) rows already ordered by digest, read once: a
        window of millions of reports is never held in memory."""
        counts = {s: 0 for s in STATUSES}
        previous = ""

        def leaves() -> Iterator[bytes]:
            nonlocal previous
            for sha256, status, envelope in reports:
                if sha256 <= previous:
                    raise GatewayInputError(
                        f"health reports out of digest order: {sha256} after {previous}"
                    )
                previous = sha256
                counts[status] += 1
                yield merkle.leaf_hash(envelope)

        root = merkle.root_from_leaf_hashes(leaves())
        return cls(
            release,
            ring,
            window_start,
            window_seconds,
            tuple(counts.items()),
            sum(counts.values()),
            root,
        )


@dataclass(frozen=True)
class AcceptedReport:
    sha256: str
    release: str
    customer: str
    ring: str
    status: str
    envelope: bytes
    #: The key id of the first signature, or the digest of an unsigned one: the device
    #: the rollout rule counts once (stored, so that a window is tallied in the database).
    device: str
