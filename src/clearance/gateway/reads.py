"""The gateway's read model: what the API and the dashboard show, and nothing they change.

:class:`GatewayReads` answers every read of the HTTP API and the dashboard
(:class:`~clearance.web._source.DashboardSource` is its shape) from the
gateway's parts: the log, the metadata store, the customers' openings, the
inspection jobs and the bulk health reports.  It decides what a customer may
have now (the distribution policy in force applied to the customer's
entitlements) with the pure functions of :mod:`clearance.gateway.distribution`.

The one thing it writes is the folder of audit results auditors post for the
dashboard (``DATA/audit-reports/``): kept for display only, never logged.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clearance.attest import Envelope, statement_of
from clearance.attest._fields import is_sha256
from clearance.attest.trust_root import TrustRoot
from clearance.errors import BadInput
from clearance.gateway import distribution, rollout
from clearance.gateway._health_bulk import HealthBulk
from clearance.gateway._log import GatewayLog
from clearance.gateway.config import TRUST_ROOT_FILE, GatewayConfig
from clearance.gateway.customers import Customers
from clearance.gateway.errors import GatewayNotFoundError
from clearance.gateway.inspections import Inspections
from clearance.gateway.states import ReleaseState
from clearance.gateway.store import MetadataStore, ReleaseRow
from clearance.log.reader import read_entry
from clearance.policy import DistributionDecision, DistributionPolicy, LoggedPolicy, decide

#: Audit results kept for the dashboard (the oldest go first).
MAX_AUDIT_REPORTS = 100


class GatewayReads:
    """Read-only views of one gateway (plus the audit-report folder), for the API and the
    dashboard."""

    def __init__(
        self,
        *,
        data_dir: Path,
        config: GatewayConfig,
        trust_root: TrustRoot,
        log: GatewayLog,
        store: MetadataStore,
        customers: Customers,
        inspections: Inspections,
        health: HealthBulk,
        clock: Callable[[], datetime],
        witness_status: Callable[[], dict[str, Any]],
    ) -> None:
        self._data_dir = data_dir
        self._config = config
        self._trust_root = trust_root
        self._log = log
        self._store = store
        self._customers = customers
        self._inspections = inspections
        self._health = health
        self._clock = clock
        self._witness_status = witness_status
        self._audit_lock = threading.Lock()

    # -- the log -------------------------------------------------------------------

    @property
    def trust_root(self) -> TrustRoot:
        return self._trust_root

    @property
    def trust_root_file(self) -> Path:
        """The trust root the gateway runs under, served as it is."""
        return self._data_dir / TRUST_ROOT_FILE

    @property
    def log_size(self) -> int:
        return self._log.size

    @property
    def log_origin(self) -> str:
        return self._log.origin

    @property
    def witness_status(self) -> dict[str, Any]:
        """The outcome of the last witness round (empty before the first)."""
        return self._witness_status()

    def role_of(self, token: str | None) -> str | None:
        """The role an API token was issued for, or ``None``."""
        return self._config.role_of(token)

    def log_entry(self, index: int) -> bytes:
        """The bytes of log entry ``index``."""
        size = self._log.size
        if not 0 <= index < size:
            raise GatewayNotFoundError(f"log entry {index} does not exist")
        return read_entry(self._log, index, size)

    def inclusion(self, index: int) -> tuple[int, list[bytes], bytes]:
        """Entry ``index``'s inclusion proof under the current checkpoint: (tree size, audit
        path, the signed checkpoint note it verifies against)."""
        note = self._log.checkpoint_bytes()
        size = self._log.checkpoint_size(note)
        if not 0 <= index < size:
            raise GatewayNotFoundError(f"log entry {index} is not under the current checkpoint")
        return size, self._log.inclusion_proof(index, size), note

    def checkpoint_note(self) -> bytes:
        return self._log.checkpoint_bytes()

    def entry_kinds(self) -> dict[str, int]:
        """How many log entries of each kind are indexed."""
        return self._store.kinds()

    def recent_entries(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._store.recent_entries(limit)

    def entries_of(self, kind: str) -> list[int]:
        """Log indices of the indexed entries of one kind (release, verdict, health, ...)."""
        return [row[0] for row in self._store.entries_of_kind(kind)]

    # -- releases ------------------------------------------------------------------

    def releases(self) -> list[ReleaseRow]:
        """Every logged release, in log order."""
        return self._store.releases()

    def release(self, sha256: str) -> ReleaseRow | None:
        return self._store.release(sha256)

    def approved_release(self, sha256: str) -> ReleaseRow:
        row = self._store.release(sha256)
        if row is None or row.state != ReleaseState.APPROVED:
            raise GatewayNotFoundError(f"no approved release {sha256}")
        return row

    def verdicts_of(self, release_sha256: str) -> list[dict[str, Any]]:
        return self._store.verdicts(release_sha256)

    def rollout_of(self, release_sha256: str) -> dict[str, Any] | None:
        return self._store.rollout(release_sha256)

    def transitions_of(self, release_sha256: str) -> list[tuple[int, dict[str, Any]]]:
        return self._store.transitions(release_sha256)

    def health_of(self, release_sha256: str) -> list[tuple[datetime, str]]:
        """When each install-health report on a release arrived, and its status."""
        return [
            (datetime.fromtimestamp(at, UTC), status)
            for at, status in self._store.health_reports(release_sha256)
        ]

    def health_aggregate(
        self, log_index: int, after: str = "", limit: int | None = None
    ) -> dict[str, Any]:
        """The logged health aggregate at ``log_index`` with (a page of) the reports it
        covers (:meth:`HealthBulk.aggregate`)."""
        size = self._log.size
        if not 0 <= log_index < size:
            raise GatewayNotFoundError(f"no log entry {log_index}")
        entry = read_entry(self._log, log_index, size)
        return self._health.aggregate(log_index, entry, after, limit)

    def job_counts(self) -> dict[str, int]:
        return self._inspections.job_counts()

    def status(self, sha256: str) -> dict[str, Any]:
        """What the gateway knows of one submission, by the SHA-256 of its envelope."""
        entry = self._store.entry_by_sha(sha256)
        if entry is None:
            raise GatewayNotFoundError(f"no submission with SHA-256 {sha256}")
        index, kind, summary = entry
        out: dict[str, Any] = {
            "sha256": sha256,
            "kind": kind,
            "log_index": index,
            "summary": summary,
        }
        row = self._store.release(sha256)
        if row is not None:
            out["release"] = row.to_dict()
            out["verdicts"] = self._store.verdicts(sha256)
            out["rollout"] = self._store.rollout(sha256)
            out["transitions"] = [{"log_index": i, **b} for i, b in self._store.transitions(sha256)]
            if row.job_id is not None:
                out["job"] = self._inspections.job(row.job_id)
        return out

    def inspection_report(self, release_sha256: str, suffix: str) -> Path | None:
        """The file the embedded inspection wrote for a release (``sarif`` or ``html``)."""
        if suffix not in ("sarif", "html") or not is_sha256(release_sha256):
            return None
        path = self._data_dir / "reports" / f"{release_sha256}.{suffix}"
        return path if path.is_file() else None

    # -- policy, entitlements and what a customer may have ---------------------------

    def policy_in_force(self) -> LoggedPolicy | None:
        latest = self._store.latest_policy()
        if latest is None:
            return None
        return LoggedPolicy(DistributionPolicy.from_dict(latest[1]), latest[0])

    def policy_history(self) -> list[LoggedPolicy]:
        """Every logged policy whose signature the gateway accepted, in log order."""
        out: list[LoggedPolicy] = []
        for index in self.entries_of("policy"):
            try:
                predicate = statement_of(Envelope.from_bytes(self.log_entry(index))).predicate
                out.append(LoggedPolicy(DistributionPolicy.from_dict(predicate), index))
            except BadInput:
                continue
        return out

    def entitlements_of(self, customer: str) -> list[tuple[int, dict[str, Any]]]:
        """A customer's entitlements (legacy clear ones and opened commitments)."""
        out = list(self._store.entitlements(customer))
        out += [(i, o.entitlement.to_dict()) for i, o in self._customers.openings.of(customer)]
        return sorted(out, key=lambda item: item[0])

    def all_entitlements(self) -> list[tuple[int, dict[str, Any]]]:
        """Every entitlement the gateway knows: legacy clear ones and opened commitments
        (for the operator's and the regulator's pages, never public)."""
        out = list(self._store.entitlements())
        out += [(i, o.entitlement.to_dict()) for i, o in self._customers.openings.all()]
        return sorted(out, key=lambda item: item[0])

    def openings(self) -> list[tuple[int, dict[str, Any]]]:
        """Every opening kept (for the regulator)."""
        return [(i, o.to_dict()) for i, o in self._customers.openings.all()]

    def decide_for(
        self, customer: str, product: str, at: datetime | None = None
    ) -> DistributionDecision:
        entitlements = self._customers.entitlements(customer)
        return decide(self.policy_in_force(), entitlements, customer, product, at or self._clock())

    def offer(self, row: ReleaseRow, customer: str) -> dict[str, Any]:
        """Whether ``row`` may go to ``customer`` now, and the logged reason if not."""
        decision = self.decide_for(customer, row.product)
        data = self._store.rollout(row.sha256) if decision.allowed else None
        transitions = self._store.transitions(row.sha256) if data is not None else []
        return distribution.offer(
            decision,
            None if data is None else rollout.RolloutState.from_dict(data),
            transitions[-1][0] if transitions else None,
            customer,
        )

    def latest(self, product: str, channel: str, customer: str) -> dict[str, Any]:
        """The newest approved release of the channel this customer may have now, and when it
        is not the newest approved one in the log, the logged reason for withholding it."""
        return distribution.latest(
            product,
            channel,
            customer,
            self._clock(),
            self._store.approved_releases(product, channel),
            lambda row: self.offer(row, customer),
            self._log.size,
        )

    # -- audit results auditors posted (``clearance audit --post``) -----------------

    def audit_reports(self) -> list[dict[str, Any]]:
        """Audit results auditors posted, oldest first (kept in ``DATA/audit-reports/``)."""
        folder = self._data_dir / "audit-reports"
        out = []
        for path in (
            sorted(folder.glob("*.json"), key=lambda p: int(p.stem)) if folder.is_dir() else []
        ):
            try:
                out.append(json.loads(path.read_bytes()))
            except (OSError, ValueError):
                continue
        return out

    def add_audit_report(self, report: dict[str, Any]) -> int:
        """Keep an auditor's posted result (the last :data:`MAX_AUDIT_REPORTS`); returns its
        number."""
        folder = self._data_dir / "audit-reports"
        folder.mkdir(parents=True, exist_ok=True)
        with self._audit_lock:
            numbers = sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit())
            number = (numbers[-1] + 1) if numbers else 1
            body = {**report, "number": number, "received": self._clock().isoformat()}
            (folder / f"{number}.json").write_text(json.dumps(body, sort_keys=True))
            for old in numbers[: max(0, len(numbers) + 1 - MAX_AUDIT_REPORTS)]:
                (folder / f"{old}.json").unlink(missing_ok=True)
        return number

