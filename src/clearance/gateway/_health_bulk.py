"""Bulk health reports and their logged aggregates (a collaborator of the gateway).

See :mod:`clearance.gateway.health_batch` for the format and why.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from clearance.attest import HEALTH_V1, Envelope, key_id, statement_of
from clearance.attest._fields import is_sha256, is_text
from clearance.errors import BadInput
from clearance.gateway import rollout
from clearance.gateway._sigpool import SignaturePool
from clearance.gateway.config import GatewayConfig
from clearance.gateway.errors import GatewayInputError, GatewayNotFoundError, GatewayRefused
from clearance.gateway.health_batch import AcceptedReport, HealthAggregate
from clearance.gateway.store import HealthReportStore, MetadataStore, WindowTally
from clearance.keys import Verifier

#: At most this many reports in one bulk request.
MAX_BULK_REPORTS = 20_000
#: A window is aggregated this long after it ends (late commits of bulk requests).
GRACE_SECONDS = 2
#: Client key lines kept parsed (then forgotten all at once).
KEY_CACHE_SIZE = 1_000_000
#: The most reports of a health aggregate one answer holds (``?limit=``, then pages).
MAX_REPORTS_PER_PAGE = 10_000
#: Customers whose client keys a gateway keeps parsed (the least recently used go first).
CUSTOMERS_KEPT = 10_000
_NOT_PARSED = object()


class ReadReport(NamedTuple):
    """A health report parsed and checked on its own (signatures not yet checked)."""

    release: str
    customer: str
    status: str
    #: Hex SHA-256 of ``stored``, the envelope's RFC 8785 bytes (what is kept, hashed and,
    #: parsed again in a worker, verified: cheaper than pickling the parsed envelope).
    sha256: str
    stored: bytes
    #: The key id of the first signature (the device, as the rollout rule counts it).
    device: str
    #: The key ids its signatures name: only those of the customer's keys are tried.
    keyids: tuple[str, ...]


def read_health_reports(items: Sequence[object]) -> list[ReadReport | str]:
    """Each item of a bulk request parsed as a signed health report, or why it is not one.

    Runs in the signature pool's processes (module-level, so a worker imports it).
    """
    out: list[ReadReport | str] = []
    for item in items:
        try:
            envelope = Envelope.from_dict(item)
            p = statement_of(envelope, HEALTH_V1).predicate
            release, customer, status = (p.get("release"), p.get("customer"), p.get("status"))
            # Text without control characters: a NUL would reach PostgreSQL, which refuses it
            # in text, and fail the whole bulk instead of this one report.
            if not (is_text(release) and is_text(customer) and is_text(status)):
                raise GatewayInputError(
                    "release, customer and status must be non-empty strings without "
                    "control characters"
                )
            if status not in rollout.HEALTH_STATES:
                raise GatewayInputError(f"status {status!r} is not one of {rollout.HEALTH_STATES}")
            stored = envelope.to_bytes()  # hashed once, not canonicalised twice
            sha256 = hashlib.sha256(stored).hexdigest()
            keyids = tuple(s.keyid for s in envelope.signatures)
            device = keyids[0] if keyids else sha256
            out.append(ReadReport(release, customer, status, sha256, stored, device, keyids))
        except BadInput as exc:
            out.append(str(exc))
    return out


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
        judge: Callable[[str], int | None],
    ) -> None:
        self.store = store
        self.config = config
        self.health_reports = reports
        self.signatures = signatures
        self.clock = clock
        self._apply_lock = lock
        self._append_and_apply = append
        #: The rollout rule (``Rollouts.judge``), which counts these reports with the logged
        #: ones through :meth:`window_tally`.
        self._judge = judge
        #: Client key lines already parsed and checked: the key, or None for a line that is
        #: not a key (a customer's entitlements are re-read when one is added).  The pool's
        #: workers are handed these keys, not the lines: checking that a key is a point of
        #: the curve's group costs about as much as a signature check, and a fleet signs
        #: each report with a key of its own.
        self._parsed: dict[str, Verifier | None] = {}
        #: Each customer's keys by key id, with the version of its entitlements they were
        #: read at (``MetadataStore.entitlements_version``): a bulk of a fleet's reports
        #: reads a version per customer, not every entitlement (about 200 KB of JSON for
        #: 3,000 devices) again.
        self._keys_of: OrderedDict[str, tuple[tuple[int, int], dict[str, Verifier]]] = (
            OrderedDict()
        )
        self._keys_lock = threading.Lock()
        #: One aggregation at a time: two would both log an aggregate of one window.
        self._aggregating = threading.Lock()

    def _client_keys(self, customer: str) -> dict[str, Verifier]:
        """The customer's registered client keys by key id (a fleet registers one per
        device: thousands, read again only when the customer's entitlements change)."""
        version = self.store.entitlements_version(customer)
        with self._keys_lock:  # concurrent bulk requests
            kept = self._keys_of.get(customer)
            if kept is not None and kept[0] == version:
                self._keys_of.move_to_end(customer)
                return kept[1]
        # Read at ``version`` or later: an entitlement indexed in between is in the keys
        # and changes the version, so the next bulk reads them again.
        keys = self._read_client_keys(customer)
        with self._keys_lock:
            self._keys_of[customer] = (version, keys)
            self._keys_of.move_to_end(customer)
            while len(self._keys_of) > CUSTOMERS_KEPT:
                self._keys_of.popitem(last=False)
        return keys

    def _read_client_keys(self, customer: str) -> dict[str, Verifier]:
        keys: dict[str, Verifier] = {}
        for _, body in self.store.entitlements(customer):
            for vkey in body.get("client_keys", []):
                line = str(vkey)
                verifier = self._parsed.get(line, _NOT_PARSED)
                if verifier is _NOT_PARSED:
                    try:
                        verifier = Verifier.parse(line)
                    except BadInput:
                        verifier = None
                    if len(self._parsed) >= KEY_CACHE_SIZE:
                        self._parsed.clear()
                    self._parsed[line] = verifier
                if isinstance(verifier, Verifier):
                    keys.setdefault(key_id(verifier), verifier)
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
        candidates: list[tuple[int, AcceptedReport, list[Verifier]]] = []
        keys_of: dict[str, dict[str, Verifier]] = {}
        states: dict[str, rollout.RolloutState | None] = {}
        # Parsing, encoding and hashing each report is most of a bulk's work outside the
        # signatures: it runs in the pool's processes too, not under this one's GIL.
        reads = self.signatures.map_chunks(read_health_reports, raw)
        for position, read in enumerate(reads):
            if isinstance(read, str):
                refused.append({"position": position, "reason": read})
                continue
            try:
                customer, release = read.customer, read.release
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
                # Only the keys the signatures name are tried (Envelope.verify matches
                # signatures to keys by key id anyway): not every key of a fleet per report.
                registered = keys_of[customer]
                signers = [registered[k] for k in read.keyids if k in registered]
                if not signers:
                    raise GatewayRefused(f"not signed by a client key registered for {customer!r}")
            except GatewayRefused as exc:
                refused.append({"position": position, "reason": str(exc)})
                continue
            report = AcceptedReport(
                read.sha256,
                release,
                customer,
                state.ring.name,
                read.status,
                read.stored,
                read.device,
            )
            candidates.append((position, report, signers))
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
        """Apply the rollout rule to each release the new reports are about; the log
        indices of the transitions it called for."""
        halted: list[int] = []
        for release in sorted({r.release for r in reports}):
            index = self._judge(release)
            if index is not None:
                halted.append(index)
        return halted

    def window_tally(self, release: str, ring: str, among: Sequence[str]) -> WindowTally:
        """The release's bulk reports in ``ring`` in the current window, each device once,
        and which of the devices ``among`` have one (counted by the store, not read here:
        a window can hold millions of reports and is judged again after every bulk)."""
        window = self.config.health_window_seconds
        now = int(self.clock().timestamp())
        return self.health_reports.window_tally(release, ring, now - now % window, among)

    def aggregate_health(self) -> list[int]:
        """Log one aggregate per (release, ring, window) that has closed; returns log indices."""
        window = self.config.health_window_seconds
        now = int(self.clock().timestamp())
        appended: list[int] = []
        with self._aggregating:
            for release, ring, start in self.health_reports.closed_windows(
                now - window - GRACE_SECONDS
            ):
                log = functools.partial(self._log_aggregate, release, ring, start)
                index = self.health_reports.aggregate_window(release, ring, start, log)
                if index is not None:
                    appended.append(index)
        return appended

    def _log_aggregate(
        self, release: str, ring: str, start: int, rows: Iterator[tuple[str, str, bytes]]
    ) -> int | None:
        """Log the aggregate of a window's reports as the store streams them; its index."""
        window = self.config.health_window_seconds
        aggregate = HealthAggregate.from_ordered(release, ring, start, window, rows)
        if aggregate.reports == 0:
            return None
        return self._append_and_apply(aggregate.to_bytes())

    def aggregate(
        self, log_index: int, entry: bytes, after: str = "", limit: int | None = None
    ) -> dict[str, Any]:
        """The logged aggregate at ``log_index`` with the individual reports it covers, in
        digest order (its Merkle tree's leaf order): those after the digest ``after``, at
        most ``limit`` (``next_after``: where the next page starts, ``None`` at the end).
        Without ``limit``, all of them, if they fit in one answer."""
        try:
            aggregate = HealthAggregate.from_dict(json.loads(entry))
        except (UnicodeDecodeError, json.JSONDecodeError, GatewayInputError):
            raise GatewayNotFoundError(f"log entry {log_index} is not a health aggregate") from None
        if after and not is_sha256(after):
            raise GatewayInputError(f"after: {after!r} is not a lowercase hex SHA-256 digest")
        if limit is not None and not 1 <= limit <= MAX_REPORTS_PER_PAGE:
            raise GatewayInputError(f"limit: {limit} is not between 1 and {MAX_REPORTS_PER_PAGE}")
        if limit is None and aggregate.reports > MAX_REPORTS_PER_PAGE:
            raise GatewayInputError(
                f"the health aggregate at log entry {log_index} covers {aggregate.reports} "
                f"reports, more than {MAX_REPORTS_PER_PAGE} in one answer: ask for pages "
                f"with ?limit=N (at most {MAX_REPORTS_PER_PAGE}), then ?after=<next_after>"
            )
        # One row more than asked for: whether another page follows.
        rows = self.health_reports.in_aggregate(
            log_index, after, None if limit is None else limit + 1
        )
        more = limit is not None and len(rows) > limit
        rows = rows[:limit] if more else rows
        return {
            "log_index": log_index,
            "aggregate": aggregate.to_dict(),
            "reports": [json.loads(env) for _, _, env in rows],
            "next_after": rows[-1][0] if more else None,
        }
