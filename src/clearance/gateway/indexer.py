"""The indexer: turns log entries into the gateway's metadata, the only writer of it.

:meth:`Indexer.index_many` is idempotent and deterministic in the entries, so
indexing the log again rebuilds the store.  It returns the gateway's
:class:`Reaction` to each entry (enqueue an inspection, evaluate verdicts,
resume a rollout, publish to TUF) without carrying it out: the gateway
runs reactions, and skips them while catching up with the log.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from clearance.attest import Release, Verdict, admission
from clearance.attest.errors import AttestFormatError
from clearance.attest.recovery import ChannelReset, Revocation
from clearance.attest.report import ReportClaim
from clearance.attest.trust_root import TrustRoot
from clearance.errors import BadInput
from clearance.gateway import rollout
from clearance.gateway._entries import (
    KIND_CHANNEL_RESET,
    KIND_ENTITLEMENT,
    KIND_HEALTH,
    KIND_POLICY,
    KIND_RELEASE,
    KIND_REPORT,
    KIND_REVOCATION,
    KIND_ROLLOUT_DECISION,
    KIND_TRANSITION,
    KIND_VERDICT,
    ParsedEntry,
    parse_entry,
)
from clearance.gateway.states import ReleaseState, awaiting_artifacts_detail
from clearance.gateway.store import IndexRecord, MetadataStore, ReleaseRow, VerdictRow
from clearance.policy import DistributionPolicy, Entitlement
from clearance.policy.commitment import logged_commitment

log = logging.getLogger("clearance.gateway")


@dataclass(frozen=True)
class Reaction:
    """What the gateway does after indexing an entry."""

    action: Literal["enqueue", "evaluate", "resume", "publish", "revoke", "reset"]
    release: str
    #: For ``resume``: the signed decision's SHA-256, its signers, its reason.
    decision_sha256: str = ""
    signer: str = ""
    reason: str = ""
    #: For ``enqueue``: the release's row as just indexed.
    row: ReleaseRow | None = None


class Indexer:
    def __init__(
        self, store: MetadataStore, trust_root: TrustRoot, default_rings: Sequence[rollout.Ring]
    ) -> None:
        self._store = store
        self._trust_root = trust_root
        self._default_rings = tuple(default_rings)

    def index_many(
        self,
        entries: Sequence[tuple[int, bytes, ParsedEntry | None]],
        *,
        appended_here: bool = False,
    ) -> list[Reaction | None]:
        """Index log entries (``(index, entry, parsed or None)``), written in as few
        transactions as their kinds allow; the reactions, in log order (``None`` for an entry
        without one, or indexed already).

        Entries are indexed in log order.  A rollout transition is computed from the rollout
        state the store holds, so what precedes it is written first.  An entry that does
        not parse under today's rules (one admitted before a check existed) is indexed as
        ``unknown`` with the reason and logged by index: the gateway still starts.

        ``appended_here``: this process has just appended the entries, so they are not
        looked up among the indexed first (a query on every batch's path; another
        replica indexes them only if this one died).  The store still writes no second
        copy of an entry, and that entry gets no reaction.
        """
        if not entries:
            return []
        done = (
            set()
            if appended_here
            else self._store.indexed(min(e[0] for e in entries), max(e[0] for e in entries) + 1)
        )
        reactions: dict[int, Reaction | None] = {}
        pending: list[tuple[IndexRecord, Reaction | None]] = []

        def write_pending() -> None:
            written = self._store.add_entries([record for record, _ in pending])
            for (record, reaction), new in zip(pending, written, strict=True):
                reactions[record.log_index] = reaction if new else None
            pending.clear()

        in_order = sorted(entries, key=lambda e: e[0])
        for index, entry, parsed in in_order:
            if index in done or index in reactions:
                continue
            try:
                parsed = parsed if parsed is not None else parse_entry(entry)
                if parsed.kind == KIND_TRANSITION:
                    write_pending()
                pending.append(self._record(index, parsed))
            except (AttestFormatError, BadInput, admission.ForgedSignatureError) as exc:
                log.error("log entry %d cannot be indexed: %s", index, exc)
                digest = hashlib.sha256(entry).hexdigest()
                pending.append((IndexRecord(index, digest, "unknown", {"error": str(exc)}), None))
            if pending[-1][0].kind == KIND_TRANSITION:
                write_pending()
        write_pending()
        return [reactions.pop(e[0], None) for e in in_order]

    def _record(self, index: int, parsed: ParsedEntry) -> tuple[IndexRecord, Reaction | None]:
        statement = parsed.statement
        sha = parsed.sha256
        if parsed.kind == KIND_RELEASE:
            assert statement is not None and parsed.envelope is not None
            release = Release.from_statement(statement)
            vendors = parsed.envelope.verify(self._trust_root.vendors.keys, 1)
            row = ReleaseRow(
                sha,
                index,
                release.product,
                release.version,
                release.channel,
                ",".join(v.name for v in vendors),
                [
                    {"name": a.name, "sha256": a.sha256, "size": a.size, "kind": a.kind}
                    for a in release.artifacts
                ],
                ReleaseState.AWAITING_ARTIFACTS,
                None,
                # Until looked at (the reaction, with the uploads): all of them.  Mostly
                # true, and then the look needs no second write of the row.
                awaiting_artifacts_detail([a.name for a in release.artifacts]),
            )
            summary = {
                "product": release.product,
                "version": release.version,
                "channel": release.channel,
            }
            return IndexRecord(index, sha, parsed.kind, summary, release=row), Reaction(
                "enqueue", sha, row=row
            )
        if parsed.kind == KIND_VERDICT:
            assert statement is not None and parsed.envelope is not None
            verdict = Verdict.from_statement(statement)
            # The distinct trusted key ids that signed it (never names: two keys may share
            # one, and "a,b" is not two inspectors), space-separated: key ids hold no space.
            signers = admission.valid_key_ids(parsed.envelope, self._trust_root.inspectors.keys)
            vrow = VerdictRow(
                sha,
                index,
                verdict.release_sha256,
                " ".join(sorted(signers)),
                verdict.decision,
            )
            summary = {
                "release": verdict.release_sha256,
                "decision": verdict.decision,
                "inspector": verdict.inspector,
            }
            return IndexRecord(index, sha, parsed.kind, summary, verdict=vrow), Reaction(
                "evaluate", verdict.release_sha256
            )
        if parsed.kind == KIND_POLICY:
            assert statement is not None
            policy = DistributionPolicy.from_dict(statement.predicate)
            return (
                IndexRecord(
                    index,
                    sha,
                    parsed.kind,
                    {"name": policy.name},
                    policy=(policy.name, policy.to_dict()),
                ),
                None,
            )
        if parsed.kind == KIND_ENTITLEMENT:
            assert statement is not None
            commitment = logged_commitment(statement.predicate)
            if commitment is not None:  # private: the opening is kept apart, never logged
                return IndexRecord(index, sha, parsed.kind, {"commitment": commitment}), None
            ent = Entitlement.from_dict(statement.predicate)
            summary = {
                "customer": ent.customer,
                "product": ent.product,
                "jurisdiction": ent.jurisdiction,
            }
            return (
                IndexRecord(
                    index,
                    sha,
                    parsed.kind,
                    summary,
                    entitlement=(ent.customer, ent.product, ent.to_dict()),
                ),
                None,
            )
        if parsed.kind == KIND_REVOCATION and statement is not None:
            revocation = Revocation.from_statement(statement)
            if revocation.release_sha256 is not None:
                summary = {"target": "release", "release": revocation.release_sha256}
                return IndexRecord(index, sha, parsed.kind, summary), Reaction(
                    "revoke", revocation.release_sha256, sha, "", revocation.reason
                )
            summary = {"target": "key", "key": revocation.key_id or ""}
            return IndexRecord(index, sha, parsed.kind, summary), None
        if parsed.kind == KIND_CHANNEL_RESET and statement is not None:
            reset = ChannelReset.from_statement(statement)
            summary = {"product": reset.product, "channel": reset.channel, "floor": reset.floor}
            return IndexRecord(index, sha, parsed.kind, summary), Reaction(
                "reset", "", sha, "", reset.reason
            )
        if parsed.kind == KIND_ROLLOUT_DECISION:
            assert statement is not None
            release_sha = str(statement.predicate.get("release"))
            reason = str(statement.predicate.get("reason", "signed resume decision"))
            signer = (
                ",".join(s.keyid for s in parsed.envelope.signatures)
                if parsed.envelope is not None
                else ""
            )
            summary = {"release": release_sha, "action": "resume", "reason": reason}
            return IndexRecord(index, sha, parsed.kind, summary), Reaction(
                "resume", release_sha, sha, signer, reason
            )
        if parsed.kind == KIND_TRANSITION:
            assert parsed.document is not None
            return self._transition(index, sha, parsed.document)
        if parsed.kind == KIND_REPORT and statement is not None:
            # A signed regulator's report: indexed so the dashboard can list and cite it.
            claim = ReportClaim.from_statement(statement)
            report: dict[str, Any] = {
                "producer": claim.producer,
                "from": claim.period_from,
                "to": claim.period_to,
                "jurisdiction": claim.jurisdiction,
                "treeSize": claim.tree_size,
                "rootHash": claim.root_hash,
                "files": {f.name: f.sha256 for f in claim.files},
            }
            return IndexRecord(index, sha, parsed.kind, report), None
        if parsed.kind == KIND_HEALTH and statement is not None and parsed.envelope is not None:
            # A logged, device-signed report: one vote of that device in its ring's window.
            p = statement.predicate
            device = parsed.envelope.signatures[0].keyid if parsed.envelope.signatures else ""
            vote = (str(p.get("release")), str(p.get("ring")), device, str(p.get("status")))
            summary = {"release": vote[0], "ring": vote[1], "status": vote[3]}
            return IndexRecord(index, sha, parsed.kind, summary, health=vote), None
        return IndexRecord(index, sha, parsed.kind, {}), None

    def _transition(
        self, index: int, sha: str, document: dict[str, Any]
    ) -> tuple[IndexRecord, Reaction | None]:
        transition = rollout.Transition.from_dict(document)
        current = self._store.rollout(transition.release)
        state = rollout.replay(
            None if current is None else rollout.RolloutState.from_dict(current),
            transition,
            self._default_rings,
            index,
        )
        if state is None:
            log.error("transition %s for a rollout that never started", transition.event)
        summary = {
            "release": transition.release,
            "event": transition.event,
            "ring": transition.ring,
        }
        record = IndexRecord(
            index,
            sha,
            KIND_TRANSITION,
            summary,
            transition=(transition.release, transition.event, document),
            rollout=None if state is None else (transition.release, state.to_dict()),
        )
        reaction = (
            Reaction("publish", transition.release) if transition.event == "completed" else None
        )
        return record, reaction
