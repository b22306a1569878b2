"""The log's side of C2SP tlog-witness: collect cosignatures for a new checkpoint.

Every configured witness is asked in parallel, each within ``timeout``
seconds overall.  A 409 answer tells the size the witness holds; the
collector then retries once with a consistency proof from that size.  Every
returned cosignature is verified against the witness's key before it is
kept; a witness that is down, slow, answers garbage, or refuses is reported
in :attr:`CollectionResult.failures` with the reason, never silently dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from clearance.errors import ClearanceError
from clearance.keys import (
    ALG_COSIGNATURE_V1,
    Note,
    NoteSignature,
    SignatureError,
    Verifier,
    verify_cosignature,
)
from clearance.witness._checkpoint import parse_checkpoint_text
from clearance.witness.errors import WitnessConfigError
from clearance.witness.protocol import (
    ADD_CHECKPOINT_PATH,
    SIZE_CONTENT_TYPE,
    AddCheckpointRequest,
    parse_cosignatures,
    parse_size,
)

#: Returns the consistency proof between two tree sizes of the log.
ConsistencyProver = Callable[[int, int], list[bytes]]

#: Failure kinds, stable strings for reports and JSON.
FAILURE_UNREACHABLE = "unreachable"
FAILURE_TIMEOUT = "timeout"
FAILURE_BAD_SIGNATURE = "bad-cosignature"
FAILURE_BAD_RESPONSE = "bad-response"
FAILURE_REFUSED = "refused"


@dataclass(frozen=True)
class WitnessConfig:
    """One witness: a label, its submission URL prefix, and its public key."""

    name: str
    url: str
    verifier: Verifier

    @property
    def cosignature_verifier(self) -> Verifier:
        return self.verifier.as_alg(ALG_COSIGNATURE_V1)


@dataclass(frozen=True)
class WitnessFailure:
    """Why one witness gave no valid cosignature."""

    name: str
    url: str
    kind: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "url": self.url, "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True)
class CollectionResult:
    """The verified cosignatures collected, and the witnesses that failed."""

    signatures: tuple[NoteSignature, ...]
    failures: tuple[WitnessFailure, ...]
    threshold: int
    #: Per witness name, the tree size it now holds (for the next round's old size).
    witness_sizes: Mapping[str, int] = field(default_factory=dict)
    #: Names of the witnesses whose cosignature verified.
    cosigners: tuple[str, ...] = ()

    @property
    def threshold_met(self) -> bool:
        return len(self.cosigners) >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "threshold_met": self.threshold_met,
            "cosigners": list(self.cosigners),
            "signatures": [s.to_line().rstrip("\n") for s in self.signatures],
            "failures": [f.to_dict() for f in self.failures],
            "witness_sizes": dict(self.witness_sizes),
        }


@dataclass(frozen=True)
class _Outcome:
    witness: WitnessConfig
    signature: NoteSignature | None = None
    size: int | None = None
    failure: WitnessFailure | None = None


def collect_cosignatures(
    checkpoint_note: Note,
    witnesses: Sequence[WitnessConfig],
    consistency_proof: ConsistencyProver,
    threshold: int,
    timeout: float = 10.0,
    old_sizes: Mapping[str, int] | None = None,
) -> CollectionResult:
    """Ask every witness to cosign ``checkpoint_note``; verify and return what they sign.

    ``old_sizes`` are hints of the size each witness holds (by name); unknown
    witnesses start at 0 and are corrected by their 409 answer.
    """
    if threshold < 0 or threshold > len(witnesses):
        raise WitnessConfigError(
            f"threshold {threshold} is not between 0 and the {len(witnesses)} witnesses"
        )
    names = [w.name for w in witnesses]
    if len(set(names)) != len(names):
        raise WitnessConfigError("two witnesses have the same name")
    head = parse_checkpoint_text(checkpoint_note.text)
    hints = dict(old_sizes or {})
    deadline = time.monotonic() + timeout
    outcomes: list[_Outcome] = []
    if witnesses:
        with (
            httpx.Client(timeout=timeout) as client,
            ThreadPoolExecutor(max_workers=min(16, len(witnesses))) as pool,
        ):
            futures = [
                pool.submit(
                    _ask_one,
                    client,
                    w,
                    checkpoint_note,
                    head.size,
                    hints.get(w.name, 0),
                    consistency_proof,
                    deadline,
                )
                for w in witnesses
            ]
            outcomes = [f.result() for f in futures]
    signatures = tuple(o.signature for o in outcomes if o.signature is not None)
    return CollectionResult(
        signatures=signatures,
        failures=tuple(o.failure for o in outcomes if o.failure is not None),
        threshold=threshold,
        witness_sizes={o.witness.name: o.size for o in outcomes if o.size is not None},
        cosigners=tuple(o.witness.name for o in outcomes if o.signature is not None),
    )


def _ask_one(
    client: httpx.Client,
    witness: WitnessConfig,
    note: Note,
    new_size: int,
    old_size: int,
    prover: ConsistencyProver,
    deadline: float,
) -> _Outcome:
    def fail(kind: str, reason: str) -> _Outcome:
        return _Outcome(witness, failure=WitnessFailure(witness.name, witness.url, kind, reason))

    url = witness.url.rstrip("/") + ADD_CHECKPOINT_PATH
    checkpoint = note.to_bytes()
    # At most two rounds: the first may be corrected by a 409 naming the witness's size.
    for _ in range(2):
        if old_size > new_size:
            return fail(
                FAILURE_REFUSED,
                f"witness holds size {old_size}, newer than this checkpoint ({new_size})",
            )
        try:
            proof = prover(old_size, new_size) if old_size > 0 else []
        except ClearanceError as exc:
            return fail(FAILURE_REFUSED, f"no consistency proof from size {old_size}: {exc}")
        body = AddCheckpointRequest(old_size, tuple(proof), checkpoint).to_bytes()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return fail(FAILURE_TIMEOUT, "no answer before the deadline")
        try:
            response = client.post(url, content=body, timeout=remaining)
        except httpx.TimeoutException:
            return fail(FAILURE_TIMEOUT, "no answer before the deadline")
        except httpx.HTTPError as exc:
            return fail(FAILURE_UNREACHABLE, f"{type(exc).__name__}: {exc}")
        if response.status_code == 409:
            media = response.headers.get("content-type", "").split(";")[0].strip()
            if media != SIZE_CONTENT_TYPE:
                return fail(FAILURE_BAD_RESPONSE, f"409 with content type {media!r}")
            try:
                witness_size = parse_size(response.content)
            except ClearanceError as exc:
                return fail(FAILURE_BAD_RESPONSE, f"409 body: {exc}")
            if witness_size == old_size:
                # Same size, other root: the witness has cosigned a different tree.
                return _Outcome(
                    witness,
                    size=witness_size,
                    failure=WitnessFailure(
                        witness.name,
                        witness.url,
                        FAILURE_REFUSED,
                        f"witness reports a conflict at size {witness_size} (split view?)",
                    ),
                )
            old_size = witness_size
            continue
        if response.status_code != 200:
            snippet = response.text[:200].strip()
            return fail(FAILURE_REFUSED, f"HTTP {response.status_code}: {snippet}")
        return _check_response(witness, note, response.content, new_size)
    return fail(FAILURE_BAD_RESPONSE, "witness keeps answering 409 with changing sizes")


def _check_response(witness: WitnessConfig, note: Note, body: bytes, size: int) -> _Outcome:
    try:
        lines = parse_cosignatures(body)
    except ClearanceError as exc:
        return _Outcome(
            witness,
            failure=WitnessFailure(witness.name, witness.url, FAILURE_BAD_RESPONSE, str(exc)),
        )
    verifier = witness.cosignature_verifier
    problems: list[str] = []
    for line in lines:
        if line.name != verifier.name or line.key_id != verifier.key_id:
            continue  # the spec: ignore cosignatures from keys we do not know
        try:
            verify_cosignature(note.text, line, verifier)
        except SignatureError as exc:
            problems.append(str(exc))
            continue
        return _Outcome(witness, signature=line, size=size)
    reason = "; ".join(problems) or "no cosignature by the configured witness key"
    return _Outcome(
        witness,
        failure=WitnessFailure(witness.name, witness.url, FAILURE_BAD_SIGNATURE, reason),
    )
