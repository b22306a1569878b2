"""The admission rule: for every kind of log entry, who must sign and how many distinct keys.

This module is the one place that says it.  ``submit --log``, the gateway's
write path, the verifiable index (:mod:`clearance.index`), the auditor
(``audit/entries.py``) and the withholding check all call it, so they cannot
disagree.  Signers are counted by DSSE key id (``name+keyhash``, i.e. by public
key), never by name, and each distinct trusted key counts once however many
signatures it made.  A signature whose key id names a trusted key but does not
verify is a forgery: the entry is refused outright.

=================  ==========================================  =======================
kind               keys                                        distinct keys required
=================  ==========================================  =======================
release            vendors                                     vendor threshold
entitlement        vendors                                     vendor threshold
verdict            inspectors                                  1 (approval: k-of-n, below)
policy             policy authority                            policy threshold
revocation         policy authority                            policy threshold
channel-reset      policy authority                            policy threshold
rollout            inspectors or policy authority              1
health             the customer's registered client keys       1
trust-root         every party the rotation changes, and the   per party
                   policy authority (:func:`~clearance.attest.accept_rotation`)
rollout-transition rollout role (signed statement)             rollout threshold
                   (a plain-JSON record of older gateways:     none: not trusted)
report             inspectors or policy authority              1
=================  ==========================================  =======================

A report (:mod:`clearance.report`) is a reading of the public log: it changes nobody's
rights and anyone can recompute it, so one key attributes it, as for a rollout decision.
Who may sign it are the parties that judge the others: the policy authority (the
regulator) and the inspectors.  Vendors and the rollout operator are the parties a report
judges, and the log and witness keys sign only checkpoints, so a report signed by any of
them is refused (and, once logged by an older gateway, is a key used outside its role).

Keys revoked by a logged revocation (``revoked_keys``, key ids) are dropped
from every role first.  Approval of a release across verdicts
(:func:`evaluate_verdicts`): a rejection by any trusted inspector key vetoes;
otherwise the release is approved when the distinct trusted inspector keys
that signed approving verdicts reach the inspector threshold.
"""

from __future__ import annotations

import functools
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass

from clearance.attest.dsse import Envelope, key_id
from clearance.attest.recovery import ChannelReset
from clearance.attest.release import Release
from clearance.attest.statement import (
    CHANNEL_RESET_V1,
    ENTITLEMENT_V1,
    HEALTH_V1,
    POLICY_V1,
    RELEASE_V1,
    REPORT_V1,
    REVOCATION_V1,
    ROLLOUT_V1,
    TRANSITION_V1,
    VERDICT_V1,
    Statement,
    statement_of,
)
from clearance.attest.trust_root import Role, TrustRoot
from clearance.attest.verdict import APPROVED, NEEDS_REVIEW, REJECTED
from clearance.attest.version import Version
from clearance.errors import BadInput, Refused
from clearance.keys import Verifier

KIND_RELEASE = "release"
KIND_VERDICT = "verdict"
KIND_POLICY = "policy"
KIND_ENTITLEMENT = "entitlement"
KIND_ROLLOUT = "rollout"
KIND_HEALTH = "health"
KIND_REVOCATION = "revocation"
KIND_CHANNEL_RESET = "channel-reset"
KIND_TRUST_ROOT = "trust-root"
KIND_TRANSITION = "rollout-transition"
KIND_REPORT = "report"

#: Statement kind by in-toto predicate type: the only such map (the gateway's index and the
#: auditor derive theirs from it, renaming a kind only where their stored names differ).
KIND_OF_PREDICATE = {
    RELEASE_V1: KIND_RELEASE,
    VERDICT_V1: KIND_VERDICT,
    POLICY_V1: KIND_POLICY,
    ENTITLEMENT_V1: KIND_ENTITLEMENT,
    ROLLOUT_V1: KIND_ROLLOUT,
    HEALTH_V1: KIND_HEALTH,
    REVOCATION_V1: KIND_REVOCATION,
    CHANNEL_RESET_V1: KIND_CHANNEL_RESET,
    TRANSITION_V1: KIND_TRANSITION,
    REPORT_V1: KIND_REPORT,
}
#: Short kind names, as in receipts (kept for callers of the former module).
KIND_NAMES = KIND_OF_PREDICATE
#: What ``submit --log`` appends (the gateway takes more: entitlements, rollout, health).
LOG_KINDS = (
    KIND_RELEASE,
    KIND_VERDICT,
    KIND_POLICY,
    KIND_REVOCATION,
    KIND_CHANNEL_RESET,
    KIND_REPORT,
)


class AdmissionRefused(Refused):
    """The log refuses the envelope (signature or version rule)."""


class UnsignedSubmissionError(AdmissionRefused):
    """The envelope is not signed by enough distinct keys of the role its kind requires."""


class ForgedSignatureError(UnsignedSubmissionError):
    """A signature names a trusted key but does not verify."""


class VersionNotIncreasingError(AdmissionRefused):
    """A release's version is not higher than one already logged for its product and channel."""


class UnloggedSubjectError(AdmissionRefused):
    """A verdict names a release that is not in the log."""


class UnsupportedStatementError(BadInput):
    """The envelope carries a statement this log does not accept."""


@dataclass(frozen=True)
class SignerRule:
    """Who must sign one entry of ``kind``: ``threshold`` distinct keys among ``keys``."""

    kind: str
    who: str
    keys: tuple[Verifier, ...]
    threshold: int

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(key_id(k) for k in self.keys)


def _without(role_keys: Iterable[Verifier], revoked: Container[str]) -> tuple[Verifier, ...]:
    out: dict[str, Verifier] = {}
    for key in role_keys:
        kid = key_id(key)
        if kid not in revoked:
            out.setdefault(kid, key)
    return tuple(out.values())


#: The trust-root roles whose keys may sign each kind of entry (health reports are signed
#: by client keys, a trust-root rotation per party: see :func:`signer_rule`).  The monitor
#: reads this table too, so "who may sign what" is written once.
SIGNING_ROLES: Mapping[str, tuple[str, ...]] = {
    KIND_RELEASE: ("vendor",),
    KIND_ENTITLEMENT: ("vendor",),
    KIND_VERDICT: ("inspector",),
    KIND_POLICY: ("policy",),
    KIND_REVOCATION: ("policy",),
    KIND_CHANNEL_RESET: ("policy",),
    KIND_ROLLOUT: ("inspector", "policy"),
    KIND_REPORT: ("inspector", "policy"),
    KIND_TRANSITION: ("rollout",),
}

#: Kinds one key suffices for: a verdict is one inspector's view (k-of-n is counted across
#: verdicts by :func:`evaluate_verdicts`); a resume decision or a report changes nobody's
#: rights by itself.  Every other kind needs its role's threshold.
_ONE_KEY_KINDS = frozenset({KIND_VERDICT, KIND_ROLLOUT, KIND_REPORT})

_ROLE_TITLES = {
    "vendor": "vendor",
    "inspector": "inspector",
    "policy": "policy authority",
    "rollout": "rollout operator",
}


def _role(root: TrustRoot, role: str) -> Role:
    return {
        "vendor": root.vendors,
        "inspector": root.inspectors,
        "policy": root.policy,
        "rollout": root.rollout,
    }[role]


def signer_rule(
    kind: str,
    root: TrustRoot,
    *,
    revoked_keys: Container[str] = frozenset(),
    client_keys: Sequence[Verifier] = (),
) -> SignerRule:
    """The rule for ``kind`` under ``root`` (see :data:`SIGNING_ROLES`)."""
    if kind == KIND_HEALTH:
        return SignerRule(kind, "client", _without(client_keys, revoked_keys), 1)
    if kind == KIND_TRUST_ROOT:
        raise UnsupportedStatementError(
            "a trust-root rotation is signed per party: check it with accept_rotation"
        )
    roles = SIGNING_ROLES.get(kind)
    if roles is None:
        raise UnsupportedStatementError(f"no admission rule for entries of kind {kind!r}")
    groups = [_role(root, role) for role in roles]
    keys = _without([k for group in groups for k in group.keys], revoked_keys)
    threshold = 1 if kind in _ONE_KEY_KINDS else groups[0].threshold
    who = " or ".join(_ROLE_TITLES[role] for role in roles)
    return SignerRule(kind, who, keys, threshold)


def valid_key_ids(envelope: Envelope, keys: Sequence[Verifier]) -> frozenset[str]:
    """Key ids of ``keys`` with a valid signature on ``envelope``, each once.

    Raises :class:`ForgedSignatureError` when a signature names one of ``keys``
    and does not verify (whatever other signatures there are).
    """
    by_id = {key_id(k): k for k in keys}
    valid: set[str] = set()
    for sig in envelope.signatures:
        key = by_id.get(sig.keyid)
        if key is None:
            continue  # not a key of this rule: neither counts nor refuses
        if not envelope.signature_valid(key, sig.sig):
            raise ForgedSignatureError(f"signature by key {sig.keyid} does not verify (forgery)")
        valid.add(sig.keyid)
    return frozenset(valid)


def require_signers(envelope: Envelope, rule: SignerRule) -> frozenset[str]:
    """The distinct key ids that satisfy ``rule``; refuse when fewer than its threshold."""
    ids = valid_key_ids(envelope, rule.keys)
    if rule.threshold < 1:
        return ids
    if not rule.keys:
        raise UnsignedSubmissionError(
            f"{rule.kind}: the trust root has no {rule.who} key that could sign it"
        )
    if len(ids) < rule.threshold:
        raise UnsignedSubmissionError(
            f"{rule.kind}: valid {rule.who} signatures by {len(ids)} distinct key(s), "
            f"{rule.threshold} required" + (f" (valid: {', '.join(sorted(ids))})" if ids else "")
        )
    return ids


def kind_of(envelope: Envelope) -> str:
    """The kind of a statement envelope (bad input for unknown predicate types)."""
    return kind_of_statement(statement_of(envelope))


def kind_of_statement(statement: Statement) -> str:
    """The kind of a statement already read from its envelope (see :func:`kind_of`)."""
    kind = KIND_OF_PREDICATE.get(statement.predicate_type)
    if kind is None:
        raise UnsupportedStatementError(
            f"statements of type {statement.predicate_type!r} are not accepted by the log"
        )
    return kind


def check_signers(
    envelope: Envelope,
    root: TrustRoot,
    *,
    revoked_keys: Container[str] = frozenset(),
    client_keys: Sequence[Verifier] = (),
) -> tuple[str, frozenset[str]]:
    """Kind of a statement envelope and the distinct key ids that admit it (or refuse)."""
    kind = kind_of(envelope)
    rule = signer_rule(kind, root, revoked_keys=revoked_keys, client_keys=client_keys)
    return kind, require_signers(envelope, rule)


# -- approval across verdicts ---------------------------------------------------------------


@dataclass(frozen=True)
class VerdictVote:
    """One logged verdict: where, what decision, and which key ids validly signed it."""

    log_index: int
    decision: str
    key_ids: frozenset[str]


@dataclass(frozen=True)
class Approval:
    """The release's state under the verdict rule, with the distinct keys behind it."""

    state: str  # "approved", "rejected", "needs-review" or "pending"
    approvers: frozenset[str]
    rejecters: frozenset[str]
    reviewers: frozenset[str]
    threshold: int

    @property
    def approved(self) -> bool:
        return self.state == APPROVED


PENDING = "pending"


@functools.lru_cache(maxsize=256)
def _trusted_ids(keys: tuple[Verifier, ...], revoked: frozenset[str]) -> frozenset[str]:
    return frozenset(key_id(k) for k in _without(keys, revoked))


def evaluate_verdicts(
    votes: Iterable[VerdictVote], inspectors: Role, revoked_keys: Iterable[str] = frozenset()
) -> Approval:
    """The verdict rule: a trusted rejection vetoes; else k distinct approving keys approve.

    Only key ids of ``inspectors`` that are not revoked count (or veto).  A
    ``needs-review`` neither counts nor vetoes, so a later approval (a human
    inspector's) can still reach the threshold.
    """
    revoked = revoked_keys if isinstance(revoked_keys, frozenset) else frozenset(revoked_keys)
    return evaluate_votes(votes, _trusted_ids(inspectors.keys, revoked), inspectors.threshold)


def evaluate_votes(
    votes: Iterable[VerdictVote], trusted: frozenset[str], threshold: int
) -> Approval:
    """:func:`evaluate_verdicts` over votes whose key ids count when in ``trusted``."""
    approvers: set[str] = set()
    rejecters: set[str] = set()
    reviewers: set[str] = set()
    for vote in votes:
        ids = vote.key_ids & trusted
        if not ids:
            continue
        if vote.decision == REJECTED:
            rejecters |= ids
        elif vote.decision == APPROVED:
            approvers |= ids
        elif vote.decision == NEEDS_REVIEW:
            reviewers |= ids
    if rejecters:
        state = REJECTED
    elif threshold >= 1 and len(approvers) >= threshold:
        state = APPROVED
    elif reviewers:
        state = NEEDS_REVIEW
    else:
        state = PENDING
    return Approval(
        state,
        frozenset(approvers),
        frozenset(rejecters),
        frozenset(reviewers),
        threshold,
    )


# -- the log's admission check ---------------------------------------------------------------


@dataclass(frozen=True)
class Admitted:
    """An accepted envelope: its kind, its canonical bytes (what is logged), its digest,
    and the distinct key ids that signed it."""

    kind: str
    entry: bytes
    sha256: str
    release: Release | None = None
    key_ids: frozenset[str] = frozenset()


def releases_in(entries: Iterable[bytes]) -> Iterable[Release | ChannelReset]:
    """Releases and channel resets among logged entries, in log order (others skipped)."""
    for data in entries:
        if b"payloadType" not in data:
            continue
        try:
            envelope = Envelope.from_bytes(data)
            predicate_type = statement_of(envelope).predicate_type
            if predicate_type == RELEASE_V1:
                yield Release.from_envelope(envelope)
            elif predicate_type == CHANNEL_RESET_V1:
                yield ChannelReset.from_envelope(envelope)
        except BadInput:
            continue


def channel_bar(
    history: Iterable[Release | ChannelReset], product: str, channel: str
) -> Version | None:
    """The version a new release of the channel must exceed, from the log in order: the
    highest release since the last reset, and that reset's floor."""
    bar: Version | None = None
    for item in history:
        if item.product != product or item.channel != channel:
            continue
        if isinstance(item, ChannelReset):
            bar = item.parsed_floor
        elif bar is None or item.parsed_version > bar:
            bar = item.parsed_version
    return bar


def check_version(release: Release, bar: Version | None) -> None:
    if bar is not None and not release.parsed_version > bar:
        raise VersionNotIncreasingError(
            f"{release.product} {release.channel}: version {release.version} is not higher than "
            f"the logged {bar} (the highest since the channel's last reset, or its floor)"
        )


def check_admission(
    envelope: Envelope,
    trust_root: TrustRoot,
    logged_releases: Iterable[Release | ChannelReset] = (),
    logged_digests: Container[str] | None = None,
    *,
    revoked_keys: Container[str] = frozenset(),
    kinds: Sequence[str] = LOG_KINDS,
) -> Admitted:
    """Check ``envelope`` for appending; raise :class:`AdmissionRefused` or bad input.

    ``logged_releases`` are the logged releases and channel resets in log order
    (:func:`releases_in`).  ``logged_digests`` (SHA-256 hex of every logged
    entry), when given, lets a verdict or a release revocation be refused when
    the release it names is not in the log.
    """
    statement = statement_of(envelope)
    kind = kind_of(envelope)
    if kind not in kinds:
        raise UnsupportedStatementError(f"{kind} statements are not accepted by this log")
    key_ids = require_signers(envelope, signer_rule(kind, trust_root, revoked_keys=revoked_keys))
    release = None
    if kind == KIND_RELEASE:
        release = Release.from_statement(statement)
        check_version(release, channel_bar(logged_releases, release.product, release.channel))
    elif kind == KIND_VERDICT:
        from clearance.attest.verdict import Verdict

        verdict = Verdict.from_statement(statement)
        if logged_digests is not None and verdict.release_sha256 not in logged_digests:
            raise UnloggedSubjectError(
                f"verdict on {verdict.release_name} ({verdict.release_sha256}): that release "
                "is not in the log"
            )
    elif kind == KIND_REVOCATION:
        from clearance.attest.recovery import Revocation

        revocation = Revocation.from_statement(statement)
        sha = revocation.release_sha256
        if sha is not None and logged_digests is not None and sha not in logged_digests:
            raise UnloggedSubjectError(f"revocation of release {sha}: that release is not logged")
    elif kind == KIND_CHANNEL_RESET:
        ChannelReset.from_statement(statement)
    elif kind == KIND_REPORT:
        from clearance.attest.report import ReportClaim

        ReportClaim.from_statement(statement)
    return Admitted(kind, envelope.to_bytes(), envelope.sha256, release, key_ids)


def latest_version(releases: Iterable[Release], product: str, channel: str) -> Version | None:
    best: Version | None = None
    for r in releases:
        if (
            r.product == product
            and r.channel == channel
            and (best is None or r.parsed_version > best)
        ):
            best = r.parsed_version
    return best
