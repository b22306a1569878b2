"""The one admission rule: who must sign each kind of entry, counted by distinct key id."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearance.attest import (
    Artifact,
    Role,
    TrustRoot,
    create_release,
    create_verdict,
    reset_channel,
    revoke_key,
    revoke_release,
)
from clearance.attest.admission import (
    KIND_CHANNEL_RESET,
    KIND_RELEASE,
    KIND_REVOCATION,
    ForgedSignatureError,
    UnloggedSubjectError,
    UnsignedSubmissionError,
    VerdictVote,
    VersionNotIncreasingError,
    check_admission,
    check_signers,
    evaluate_verdicts,
    releases_in,
)
from clearance.attest.dsse import Envelope, Signature, key_id
from clearance.attest.recovery import ChannelReset, Revocation
from clearance.keys import Signer


class Keys:
    def __init__(self) -> None:
        self.log = Signer.generate("log.example")
        self.vendors = [Signer.generate("vendor"), Signer.generate("vendor2")]
        self.inspectors = [Signer.generate(f"inspector{n}") for n in ("", "2", "3")]
        self.policy = Signer.generate("regulator")

    def root(self, vendor_threshold: int = 1, inspector_threshold: int = 3) -> TrustRoot:
        return TrustRoot(
            log_origin="log.example",
            log_key=self.log.verifier,
            vendors=Role(tuple(v.verifier for v in self.vendors), vendor_threshold),
            inspectors=Role(tuple(i.verifier for i in self.inspectors), inspector_threshold),
            policy=Role((self.policy.verifier,), 1),
            max_checkpoint_age=None,
        )


@pytest.fixture
def keys() -> Keys:
    return Keys()


def _release(tmp_path: Path, signers: list[Signer], version: str = "1.0") -> Envelope:
    path = tmp_path / f"r-{version}.yar"
    path.write_bytes(b"rule r { condition: true }" + version.encode())
    return create_release(
        product="av",
        version=version,
        channel="stable",
        artifacts=[Artifact.from_file(path, "content")],
        signers=signers,
    )


def test_one_of_two_vendor_signatures_is_not_admitted(keys: Keys, tmp_path: Path) -> None:
    """Case 2: a trust root requiring 2 of 2 vendor signatures refuses a release signed by one."""
    root = keys.root(vendor_threshold=2)
    one = _release(tmp_path, keys.vendors[:1])
    with pytest.raises(UnsignedSubmissionError, match="vendor signatures by 1 distinct key"):
        check_admission(one, root)
    both = _release(tmp_path, keys.vendors)
    assert check_admission(both, root).key_ids == {key_id(v.verifier) for v in keys.vendors}


def test_the_same_vendor_key_twice_counts_once(keys: Keys, tmp_path: Path) -> None:
    root = keys.root(vendor_threshold=2)
    env = _release(tmp_path, keys.vendors[:1])
    doubled = Envelope(env.payload_type, env.payload, env.signatures * 2)
    with pytest.raises(UnsignedSubmissionError):
        check_admission(doubled, root)


def test_a_forged_signature_refuses_even_beside_valid_ones(keys: Keys, tmp_path: Path) -> None:
    root = keys.root(vendor_threshold=1)
    env = _release(tmp_path, keys.vendors)
    bad = Signature(env.signatures[1].keyid, bytes(64))
    forged = Envelope(env.payload_type, env.payload, (env.signatures[0], bad))
    with pytest.raises(ForgedSignatureError):
        check_admission(forged, root)


def test_signer_names_as_strings_are_not_counted_thrice(keys: Keys, tmp_path: Path) -> None:
    """Case 2: verdicts by A, by B, and one by both A and B are two inspectors, not three."""
    root = keys.root(inspector_threshold=3)
    release = _release(tmp_path, keys.vendors[:1])
    a, b = keys.inspectors[:2]
    votes = []
    for i, signers in enumerate(([a], [b], [a, b])):
        verdict = create_verdict(release, "approved", signers=signers)
        _, ids = check_signers(verdict, root)
        votes.append(VerdictVote(i, "approved", ids))
    approval = evaluate_verdicts(votes, root.inspectors)
    assert approval.state == "pending"
    assert len(approval.approvers) == 2


def test_a_rejection_by_a_trusted_key_vetoes(keys: Keys) -> None:
    root = keys.root(inspector_threshold=1)
    ids = [key_id(i.verifier) for i in keys.inspectors]
    votes = [
        VerdictVote(10, "approved", frozenset(ids[:1])),
        VerdictVote(15, "rejected", frozenset(ids[1:2])),
    ]
    assert evaluate_verdicts(votes, root.inspectors).state == "rejected"
    # The rejecting key revoked: its veto no longer counts (nor would its approval).
    assert evaluate_verdicts(votes, root.inspectors, {ids[1]}).state == "approved"


def test_untrusted_keys_neither_count_nor_veto(keys: Keys) -> None:
    root = keys.root(inspector_threshold=1)
    stranger = key_id(Signer.generate("inspector").verifier)  # same name, other key
    votes = [VerdictVote(1, "rejected", frozenset({stranger}))]
    assert evaluate_verdicts(votes, root.inspectors).state == "pending"


def test_verdict_needs_its_release_logged(keys: Keys, tmp_path: Path) -> None:
    root = keys.root()
    release = _release(tmp_path, keys.vendors[:1])
    verdict = create_verdict(release, "approved", signers=keys.inspectors[0])
    with pytest.raises(UnloggedSubjectError):
        check_admission(verdict, root, (), set())
    assert check_admission(verdict, root, (), {release.sha256}).kind == "verdict"


def test_revocations_and_resets_need_the_policy_authority(keys: Keys, tmp_path: Path) -> None:
    root = keys.root()
    release = _release(tmp_path, keys.vendors[:1], "9999")
    by_vendor = revoke_release(release, "stolen key", keys.vendors[0])
    with pytest.raises(UnsignedSubmissionError, match="policy authority"):
        check_admission(by_vendor, root, (), {release.sha256})
    ok = revoke_release(release, "stolen key", keys.policy)
    admitted = check_admission(ok, root, (), {release.sha256})
    assert admitted.kind == KIND_REVOCATION
    assert Revocation.from_envelope(ok).release_sha256 == release.sha256
    key_rev = revoke_key(keys.vendors[1].verifier, "stolen", keys.policy)
    parsed = Revocation.from_envelope(key_rev)
    assert parsed.key_id == key_id(keys.vendors[1].verifier)
    reset = reset_channel("av", "stable", "2.0.0", "undo 9999", keys.policy)
    assert check_admission(reset, root).kind == KIND_CHANNEL_RESET
    assert ChannelReset.from_envelope(reset).floor == "2.0.0"


def test_a_channel_reset_lowers_the_version_bar(keys: Keys, tmp_path: Path) -> None:
    root = keys.root()
    frozen = _release(tmp_path, keys.vendors[:1], "9999")
    fix = _release(tmp_path, keys.vendors[:1], "2.0.1")
    with pytest.raises(VersionNotIncreasingError):
        check_admission(fix, root, releases_in([frozen.to_bytes()]))
    reset = reset_channel("av", "stable", "2.0.0", "undo 9999", keys.policy)
    history = list(releases_in([frozen.to_bytes(), reset.to_bytes()]))
    assert check_admission(fix, root, history).kind == KIND_RELEASE
    below = _release(tmp_path, keys.vendors[:1], "2.0.0")
    with pytest.raises(VersionNotIncreasingError):
        check_admission(below, root, history)
