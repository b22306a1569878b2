"""Bulk health reports and their logged aggregates (a collaborator of the gateway).

See :mod:`clearance.gateway.health_batch` for the format and why.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from clearance.attest import HEALTH_V1, Envelope, statement_of
from clearance.errors import BadInput
from clearance.gateway import rollout
from clearance.gateway._sigpool import SignaturePool
from clearance.gateway.config import GatewayConfig
from clearance.gateway.errors import GatewayInputError, GatewayNotFoundError, GatewayRefused
from clearance.gateway.health_batch import AcceptedReport, HealthAggregate
from clearance.gateway.store import HealthReportStore, MetadataStore
from clearance.keys import Verifier

#: At most this many reports in one bulk request.
MAX_BULK_REPORTS = 20_000
#: A window is aggregated this long after it ends (late commits of bulk requests).
GRACE_SECONDS = 2


class HealthBulk:
    """Accepting health reports in bulk and logging their aggregates (one gateway's part)."""

    def __init__(
        self,
        store: MetadataStore,
        config: GatewayConfig,
        reports: HealthReportStore,
        signatures: SignaturePool,
        clock: Callable[[], datetime],
        lock: threading.RLock,
        append: Callable[[bytes], int],
        append_transition: Callable[[rollout.Transition], int],
    ) -> None:
        self.store = store
        self.config = config
        self.health_reports = reports
        self.signatures = signatures
        self.clock = clock
        self._apply_lock = lock
        self._append_and_apply = append
        self._append_transition = append_transition

    def _client_keys(self, customer: str) -> list[str]:
        keys: list[str] = []
        for _, body in self.store.entitlements(customer):
            for vkey in body.get("client_keys", []):
                try:
                    Verifier.parse(vkey)
                except BadInput:
                    continue
                keys.append(str(vkey))
        return keys

    def submit_health_bulk(self, body: bytes, role: str | None) -> dict[str, Any]:
        """Check and store many signed health reports; one answer for all of them.

        Body: ``{"reports": [<DSSE envelope>, ...]}``.  Every report is judged on
        its own: the answer lists the refused ones by position with the reason,
        the others are stored durably before the answer and counted in the
        rollout.
        """
        if role != "client":
            raise GatewayRefused("health reports must be submitted with a client token")
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise GatewayInputError("bulk health reports: body is not JSON") from None
        raw = data.get("reports") if isinstance(data, dict) else None
        if not isinstance(raw, list) or not raw:
            raise GatewayInputError("bulk health reports: 'reports' must be a non-empty list")
        if len(raw) > MAX_BULK_REPORTS:
            raise GatewayInputError(
                f"bulk health reports: {len(raw)} reports, at most {MAX_BULK_REPORTS} per request"
            )
        refused: list[dict[str, Any]] = []
        candidates: list[tuple[int, AcceptedReport, list[str]]] = []
        keys_of: dict[str, list[str]] = {}
        states: dict[str, rollout.RolloutState | None] = {}
        for position, item in enumerate(raw):
            try:
                envelope = Envelope.from_dict(item)
                statement = statement_of(envelope, HEALTH_V1)
                p = statement.predicate
                release, customer, status = (p.get("release"), p.get("customer"), p.get("status"))
                if not all(isinstance(v, str) and v for v in (release, customer, status)):
                    raise GatewayInputError("release, customer and status must be strings")
                assert isinstance(release, str) and isinstance(customer, str)
                assert isinstance(status, str)
                if status not in rollout.HEALTH_STATES:
                    raise GatewayInputError(
                        f"status {status!r} is not one of {rollout.HEALTH_STATES}"
                    )
                if customer not in keys_of:
                    keys_of[customer] = self._client_keys(customer)
                if not keys_of[customer]:
                    raise GatewayRefused(f"customer {customer!r} has no registered client key")
                if release not in states:
                    found = self.store.rollout(release)
                    states[release] = (
                        None if found is None else rollout.RolloutState.from_dict(found)
                    )
                state = states[release]
                if state is None:
                    raise GatewayRefused(f"release {release} is not being rolled out")
                if not state.reaches(customer):
                    raise GatewayRefused(f"release {release} was not offered to {customer!r}")
                envelope_bytes = envelope.to_bytes()
                report = AcceptedReport(
                    envelope.sha256, release, customer, state.ring.name, status, envelope_bytes
                )
                candidates.append((position, report, keys_of[customer]))
            except BadInput as exc:
                refused.append({"position": position, "reason": str(exc)})
            except GatewayRefused as exc:
                refused.append({"position": position, "reason": str(exc)})
        verdicts = self.signatures.verify_many([(c[1].envelope, c[2]) for c in candidates])
        good: list[AcceptedReport] = []
        for (position, report, _), problem in zip(candidates, verdicts, strict=True):
            if problem is None:
                good.append(report)
            else:
                refused.append({"position": position, "reason": problem})
        window = self.config.health_window_seconds
        now = int(self.clock().timestamp())
        new = self.health_reports.add_many(good, now - now % window) if good else []
        halted = self._count_in_rollouts(new)
        refused.sort(key=lambda r: int(r["position"]))
        return {
            "accepted": len(good),
            "new": len(new),
            "duplicates": len(good) - len(new),
            "refused": refused,
            "halted_log_indices": halted,
        }

    def _count_in_rollouts(self, reports: list[AcceptedReport]) -> list[int]:
        by_release: dict[str, list[str]] = {}
        for r in reports:
            by_release.setdefault(r.release, []).append(r.status)
        halted: list[int] = []
        for release, statuses in by_release.items():
            transitions: list[rollout.Transition] = []
            with self._apply_lock:
                data = self.store.rollout(release)
                if data is None:
                    continue
                state = rollout.RolloutState.from_dict(data)
                for status in statuses:
                    state, transition = rollout.record_health(state, status, self.clock())
                    if transition is not None:
                        transitions.append(transition)
                self.store.put_rollout(release, state.to_dict())
            halted.extend(self._append_transition(t) for t in transitions)
        return halted

    def aggregate_health(self) -> list[int]:
        """Log one aggregate per (release, ring, window) that has closed; returns log indices."""
        window = self.config.health_window_seconds
        now = int(self.clock().timestamp())
        appended: list[int] = []
        for release, ring, start in self.health_reports.closed_windows(
            now - window - GRACE_SECONDS
        ):
            rows = self.health_reports.window(release, ring, start)
            if not rows:
                continue
            aggregate = HealthAggregate.build(release, ring, start, window, rows)
            index = self._append_and_apply(aggregate.to_bytes())
            self.health_reports.mark([sha for sha, _, _ in rows], index)
            appended.append(index)
        return appended

    def aggregate(self, log_index: int, entry: bytes) -> dict[str, Any]:
        """The logged aggregate at ``log_index`` with the individual reports it covers."""
        try:
            aggregate = HealthAggregate.from_dict(json.loads(entry))
        except (UnicodeDecodeError, json.JSONDecodeError, GatewayInputError):
            raise GatewayNotFoundError(f"log entry {log_index} is not a health aggregate") from None
        rows = self.health_reports.in_aggregate(log_index)
        return {
            "log_index": log_index,
            "aggregate": aggregate.to_dict(),
            "reports": [json.loads(env) for _, _, env in rows],
        }
