"""A logged report cites the log's own tree (``audit.report-tree-mismatch``).

A signed regulator's report says which tree it covers (origin, size, root).  A
report logged with a tree the log never had would let its signer cite "the
log" for a history that was not in it; the auditor checks every logged report
against the checkpoint it audits, with the same consistency rule the verifier,
the witness and ``clearance report verify`` use.
"""

from __future__ import annotations

from clearance.attest.report import ReportClaim
from clearance.audit.rules import AuditFinding
from clearance.log.checkpoint import Checkpoint
from clearance.log.consistency import ProofSource, check_consistent
from clearance.log.errors import CheckpointForkError, ConsistencyUnprovenError


def report_tree_findings(
    index: int, claim: ReportClaim, checkpoint: Checkpoint, proofs: ProofSource
) -> list[AuditFinding]:
    """Findings for the report logged at ``index`` (none when it cites the log's tree)."""
    evidence = {"origin": claim.origin, "treeSize": claim.tree_size, "rootHash": claim.root_hash}
    problem: str | None = None
    if claim.origin != checkpoint.origin:
        problem = f"cites the log {claim.origin!r}, not this log ({checkpoint.origin!r})"
    elif claim.tree_size > index:
        # Logged at ``index``, the report can only have read the entries before it.
        problem = f"cites tree size {claim.tree_size}, beyond the {index} entries logged before it"
    else:
        cited = Checkpoint(claim.origin, claim.tree_size, bytes.fromhex(claim.root_hash))
        try:
            check_consistent(cited, checkpoint, proofs)
        except (CheckpointForkError, ConsistencyUnprovenError) as exc:
            problem = f"cites a root that is not the log's at size {claim.tree_size} ({exc})"
    if problem is None:
        return []
    return [
        AuditFinding(
            "audit.report-tree-mismatch", f"entry {index}: report {problem}", index, evidence
        )
    ]
