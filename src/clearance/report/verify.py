"""Checking a report folder against its logged, signed envelope (``clearance report verify``).

A signed report (``report.dsse.json``) says which files it consists of (their SHA-256) and
which tree of which log it was computed from (origin, tree size, root hash).  Citing it is
only worth something when all of this holds, checked here in this order:

1. the envelope is signed as the admission rule requires of a report (one key of the
   inspectors or the policy authority: :mod:`clearance.attest.admission`);
2. every file it names is in the folder with exactly the signed digest;
3. the log's current checkpoint verifies under the trust root's log key, and the cited
   (tree size, root hash) is that log's tree at that size: equal to the checkpoint's root,
   or proven a prefix of it by a consistency proof from the log's tiles;
4. the envelope is in the log (at ``log_index`` when given, else searched after the
   cited tree), proven by an inclusion proof against the same checkpoint.

Each failure is its own :class:`~clearance.report.errors.ReportVerificationFailed`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from clearance.attest import Envelope, TrustRoot, admission, statement_of
from clearance.attest.report import ReportClaim
from clearance.audit.auditor import cosigning_witnesses
from clearance.errors import BadInput
from clearance.log import merkle
from clearance.log.checkpoint import Checkpoint
from clearance.log.consistency import check_consistent
from clearance.log.errors import CheckpointForkError, ConsistencyUnprovenError
from clearance.log.tiles import TiledLogClient, TileSource
from clearance.report.errors import (
    ReportFileTampered,
    ReportInputError,
    ReportNotLogged,
    ReportSignatureError,
    ReportTreeMismatch,
)

ENVELOPE_FILE = "report.dsse.json"


@dataclass(frozen=True)
class VerifiedReport:
    """What was checked: the claim, who signed it, where it is logged, against which tree."""

    claim: ReportClaim
    signers: tuple[str, ...]
    log_index: int
    checkpoint_size: int
    checkpoint_root: str
    witnesses: tuple[str, ...]


def load_report_envelope(directory: Path) -> tuple[Envelope, ReportClaim]:
    path = directory / ENVELOPE_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReportInputError(
            f"{path}: not found (a signed report folder holds {ENVELOPE_FILE}; "
            "`clearance report ... --key K` writes it)"
        ) from None
    except OSError as exc:
        raise ReportInputError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        envelope = Envelope.from_bytes(data)
        return envelope, ReportClaim.from_statement(statement_of(envelope))
    except BadInput as exc:
        raise ReportInputError(f"{path}: not a signed report: {exc}") from None


def check_signers(envelope: Envelope, root: TrustRoot) -> frozenset[str]:
    rule = admission.signer_rule(admission.KIND_REPORT, root)
    try:
        return admission.require_signers(envelope, rule)
    except admission.UnsignedSubmissionError as exc:
        raise ReportSignatureError(f"{ENVELOPE_FILE}: {exc}") from None


def check_files(directory: Path, claim: ReportClaim) -> None:
    for subject in claim.files:
        path = directory / subject.name
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            raise ReportFileTampered(
                f"{subject.name}: the signed report names it, but it is not in {directory}"
            ) from None
        if digest != subject.sha256:
            raise ReportFileTampered(
                f"{subject.name}: SHA-256 {digest} is not the signed {subject.sha256} "
                "(the file was changed after the report was signed)"
            )


def check_tree(client: TiledLogClient, claim: ReportClaim, size: int, root: bytes) -> None:
    """The cited (size, root) is the log's tree: a prefix of the verified tree (size, root)."""
    what = f"the report cites tree size {claim.tree_size} with root {claim.root_hash}"
    if claim.tree_size > size:
        raise ReportTreeMismatch(f"{what}, but the log has only {size} entries")
    cited = Checkpoint(claim.origin, claim.tree_size, bytes.fromhex(claim.root_hash))
    try:
        check_consistent(cited, Checkpoint(claim.origin, size, root), client.consistency_proof)
    except (CheckpointForkError, ConsistencyUnprovenError) as exc:
        raise ReportTreeMismatch(
            f"{what}, which is not the log's root at that size ({exc}; checked against the "
            f"signed checkpoint of size {size})"
        ) from None


def find_logged(
    client: TiledLogClient, envelope: Envelope, claim: ReportClaim, size: int, at: int | None
) -> int:
    """The log index of the envelope: ``at`` when given (checked), else the first entry after
    the cited tree with the envelope's digest (a report is logged after what it read)."""
    digest = envelope.sha256
    if at is not None:
        if not 0 <= at < size:
            raise ReportNotLogged(f"log entry {at} does not exist (the log has {size})")
        entry = next(client.entries(at, at + 1, size))
        if hashlib.sha256(entry).hexdigest() != digest:
            raise ReportNotLogged(f"log entry {at} is not this report's envelope ({digest})")
        return at
    start = min(claim.tree_size, size)
    for offset, entry in enumerate(client.entries(start, size, size)):
        if hashlib.sha256(entry).hexdigest() == digest:
            return start + offset
    raise ReportNotLogged(
        f"the report's envelope ({digest}) is not in the log after the tree it cites "
        f"(entries {start} to {size - 1}): log it with `clearance submit` first"
    )


def verify_report(
    directory: Path, trust_root: TrustRoot, source: TileSource, log_index: int | None = None
) -> VerifiedReport:
    envelope, claim = load_report_envelope(directory)
    signers = check_signers(envelope, trust_root)
    if claim.origin != trust_root.log_origin:
        raise ReportTreeMismatch(
            f"the report covers log {claim.origin!r}; the trust root is for "
            f"{trust_root.log_origin!r}"
        )
    check_files(directory, claim)
    client = TiledLogClient(source, trust_root.log_key, trust_root.log_origin)
    checkpoint, note = client.checkpoint()
    check_tree(client, claim, checkpoint.size, checkpoint.root_hash)
    index = find_logged(client, envelope, claim, checkpoint.size, log_index)
    proof = client.inclusion_proof(index, checkpoint.size)
    leaf = merkle.leaf_hash(envelope.to_bytes())
    try:
        merkle.verify_inclusion(index, checkpoint.size, leaf, proof, checkpoint.root_hash)
    except merkle.ProofError as exc:
        raise ReportNotLogged(f"log entry {index}: {exc}") from None
    return VerifiedReport(
        claim,
        tuple(sorted(signers)),
        index,
        checkpoint.size,
        checkpoint.root_hash.hex(),
        tuple(sorted(cosigning_witnesses(note, trust_root))),
    )
