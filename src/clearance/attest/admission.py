"""What a log accepts: a statement signed by its role's keys, releases with rising versions.

The log command (``submit --log``) and the gateway both call
:func:`check_admission` before appending.  Roles by predicate type:

* release: vendor keys, vendor threshold; the version must be higher than
  every release of the same product and channel already logged;
* verdict: at least one trusted inspector key (the inspector threshold is
  met across verdicts, by the verifier);
* policy: the policy keys and threshold.

Other predicate types (rollout, health) belong to the gateway and are refused here.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass

from clearance.attest.dsse import Envelope
from clearance.attest.errors import EnvelopeSignatureError
from clearance.attest.release import Release
from clearance.attest.statement import POLICY_V1, RELEASE_V1, VERDICT_V1, statement_of
from clearance.attest.trust_root import Role, TrustRoot
from clearance.attest.version import Version
from clearance.errors import BadInput, Refused

#: Short kind names, as in receipts (the gateway uses the same).
KIND_NAMES = {RELEASE_V1: "release", VERDICT_V1: "verdict", POLICY_V1: "policy"}


class AdmissionRefused(Refused):
    """The log refuses the envelope (signature or version rule)."""


class UnsignedSubmissionError(AdmissionRefused):
    """The envelope is not signed by a threshold of the keys its statement type requires."""


class VersionNotIncreasingError(AdmissionRefused):
    """A release's version is not higher than one already logged for its product and channel."""


class UnloggedSubjectError(AdmissionRefused):
    """A verdict names a release that is not in the log."""


class UnsupportedStatementError(BadInput):
    """The envelope carries a statement this log does not accept."""


@dataclass(frozen=True)
class Admitted:
    """An accepted envelope: its kind (``release``, ``verdict`` or ``policy``), its canonical
    bytes (what is logged) and its digest."""

    kind: str
    entry: bytes
    sha256: str
    release: Release | None = None


def releases_in(entries: Iterable[bytes]) -> Iterable[Release]:
    """The releases among logged entries (other entries are skipped)."""
    for data in entries:
        if b"payloadType" not in data:
            continue
        try:
            yield Release.from_envelope(Envelope.from_bytes(data))
        except BadInput:
            continue


def _signed(envelope: Envelope, role: Role, what: str) -> None:
    if role.threshold < 1:
        raise UnsignedSubmissionError(f"the trust root has no {what} keys")
    try:
        envelope.verify(role.keys, role.threshold)
    except EnvelopeSignatureError as exc:
        raise UnsignedSubmissionError(f"{what} signature: {exc}") from None


def check_admission(
    envelope: Envelope,
    trust_root: TrustRoot,
    logged_releases: Iterable[Release] = (),
    logged_digests: Container[str] | None = None,
) -> Admitted:
    """Check ``envelope`` for appending; raise :class:`AdmissionRefused` or bad input.

    ``logged_digests`` (SHA-256 hex of every logged entry), when given, lets a
    verdict be refused when the release it judges is not in the log.
    """
    statement = statement_of(envelope)
    kind = statement.predicate_type
    release = None
    if kind == RELEASE_V1:
        release = Release.from_statement(statement)
        _signed(envelope, trust_root.vendors, "vendor")
        new = release.parsed_version
        for old in logged_releases:
            if (
                old.product == release.product
                and old.channel == release.channel
                and not new > old.parsed_version
            ):
                raise VersionNotIncreasingError(
                    f"{release.product} {release.channel}: version {release.version} is not "
                    f"higher than the logged {old.version}"
                )
    elif kind == VERDICT_V1:
        from clearance.attest.verdict import Verdict

        verdict = Verdict.from_statement(statement)
        _signed(envelope, Role(trust_root.inspectors.keys, 1), "inspector")
        if logged_digests is not None and verdict.release_sha256 not in logged_digests:
            raise UnloggedSubjectError(
                f"verdict on {verdict.release_name} ({verdict.release_sha256}): that release "
                "is not in the log"
            )
    elif kind == POLICY_V1:
        _signed(envelope, trust_root.policy, "policy")
    else:
        raise UnsupportedStatementError(f"statements of type {kind!r} are not accepted by the log")
    return Admitted(KIND_NAMES[kind], envelope.to_bytes(), envelope.sha256, release)


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
