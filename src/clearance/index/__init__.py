"""The verifiable index: every release's and channel's state, derived from the log.

A bundle chosen by a gateway could leave out what counts against a release (a
later rejection, a revocation).  The index removes the choice: it is a
deterministic function of the log (and the trust root pinned by the log) whose
root the log commits to in an extension line of every signed checkpoint
(``clearance-index/v1 <base64 root>``), so the witnesses' cosignatures cover
it.  The auditor recomputes it from the entries and alerts on a wrong root.
A bundle carries, for its release, the index records of the release, of its
channel and the ``meta`` record, each with a sparse-Merkle proof to that root;
the verifier requires every verdict the record lists to be in the bundle, and
refuses a revoked release or key.  Design and threat model: docs/attestations.md.

Records (RFC 8785 JSON values)::

    release/<sha256>  {"sha256", "logIndex", "product", "version", "channel",
                       "vendorKeys": [keyid], "verdicts": [{"logIndex", "decision",
                       "keyIds": [keyid]}], "state": "approved"|"rejected"|
                       "needs-review"|"pending", "approvers": [keyid],
                       "revoked": null | {"logIndex", "by": "release"|"key"|"channel-reset"},
                       "rollout": null | {"event", "ring", "logIndex"}}
    channel\\n<product>\\n<channel>
                      {"product", "channel", "epoch", "floor": version|null,
                       "resetLogIndex": int|null,
                       "latest": null | {"version", "sha256", "logIndex"}}
    meta              {"trustRoot": sha256 of the trust root in force, "trustRootVersion",
                       "revokedKeys": {keyid: logIndex}, "policy": null | {"logIndex", "sha256"}}

Public API::

    LogIndex(trust_root)             .extend(entries) .rebuild(entries) .root() .lines()
                                     .proof(key) .release_proofs(sha) .record(key) .verdict_indices(sha)
                                     .channel_bar(product, channel) .revoked_keys
    build_index(trust_root, entries) -> LogIndex
    IndexProof(key, value, siblings) .record .to_dict()
    index_root_of(checkpoint) -> bytes          # the committed root (IndexMissingError)
    verify_index_proof(proof, root) -> record   # IndexProofError
    release_key(sha), channel_key(product, channel), META_KEY, INDEX_LINE_PREFIX
"""

from clearance.index.errors import IndexMissingError, IndexProofError, IndexRefused
from clearance.index.proofs import index_root_of, verify_index_proof
from clearance.index.state import (
    INDEX_LINE_PREFIX,
    META_KEY,
    REVOKED_BY_KEY,
    REVOKED_BY_RELEASE,
    REVOKED_BY_RESET,
    IndexProof,
    LogIndex,
    build_index,
    channel_key,
    release_key,
)

__all__ = [
    "INDEX_LINE_PREFIX",
    "META_KEY",
    "REVOKED_BY_KEY",
    "REVOKED_BY_RELEASE",
    "REVOKED_BY_RESET",
    "IndexMissingError",
    "IndexProof",
    "IndexProofError",
    "IndexRefused",
    "LogIndex",
    "build_index",
    "channel_key",
    "index_root_of",
    "release_key",
    "verify_index_proof",
]
