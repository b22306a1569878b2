"""A small real world for audit tests: keys, a trust root, a real TransparencyLog, and
release / verdict / policy envelopes signed with real Ed25519 keys."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yara_x

from clearance.attest import (
    Artifact,
    Envelope,
    Role,
    TrustRoot,
    create_policy,
    create_release,
    create_verdict,
)
from clearance.audit import Reinspection, ReleaseFiles
from clearance.keys import Signer
from clearance.log.store import TransparencyLog

ORIGIN = "log.example.org"
GOOD_RULE = b'rule honest_rule { strings: $a = "EVIL-MARKER-1234" condition: $a }\n'
BROKEN_RULE = b"rule broken { condition: undefined_identifier }\n"


@dataclass
class World:
    root_dir: Path
    log_signer: Signer = field(default_factory=lambda: Signer.generate(ORIGIN))
    vendor: Signer = field(default_factory=lambda: Signer.generate("vendor.example"))
    inspector: Signer = field(default_factory=lambda: Signer.generate("inspector.example"))
    policy_key: Signer = field(default_factory=lambda: Signer.generate("regulator.example"))
    witness: Signer = field(default_factory=lambda: Signer.generate("witness.example"))
    witness_threshold: int = 0

    def __post_init__(self) -> None:
        self.logdir = self.root_dir / "log"
        self.artifacts = self.root_dir / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        TransparencyLog.create(self.logdir, ORIGIN, self.log_signer).close()

    def trust_root(self) -> TrustRoot:
        return TrustRoot(
            log_origin=ORIGIN,
            log_key=self.log_signer.verifier,
            vendors=Role((self.vendor.verifier,), 1),
            inspectors=Role((self.inspector.verifier,), 1),
            witnesses=Role((self.witness.verifier,), self.witness_threshold)
            if self.witness_threshold
            else Role(),
            policy=Role((self.policy_key.verifier,), 1),
        )

    def write_trust_root(self) -> Path:
        path = self.root_dir / "trust-root.json"
        path.write_bytes(self.trust_root().to_bytes())
        return path

    def append(self, *entries: bytes) -> list[int]:
        with TransparencyLog.open(self.logdir) as log:
            return [r.index for r in log.append(list(entries))]

    def release(
        self,
        version: str,
        content: bytes = GOOD_RULE,
        signer: Signer | None = None,
        product: str = "agent",
        previous: Envelope | None = None,
    ) -> Envelope:
        name = f"rules-{version}.yar"
        path = self.artifacts / name
        path.write_bytes(content)
        return create_release(
            product=product,
            version=version,
            channel="stable",
            artifacts=[Artifact.from_file(path, "content")],
            signers=signer or self.vendor,
            previous=previous,
        )

    def verdict(
        self,
        release: Envelope,
        decision: str = "approved",
        signer: Signer | None = None,
        findings: dict[str, dict[str, int]] | None = None,
        automated: bool = True,
    ) -> Envelope:
        return create_verdict(
            release,
            decision,
            signers=signer or self.inspector,
            findings_summary=findings or {},
            engines={"yara-x": yara_x.__version__ if hasattr(yara_x, "__version__") else "1"}
            if automated
            else {},
            inspected_at="2026-11-22T00:00:00Z",
        )

    def policy(self, body: dict[str, Any]) -> Envelope:
        return create_policy(body, self.policy_key)


def rollout_transition(event: str, release: str = "agent@1.0.0") -> bytes:
    return json.dumps(
        {
            "_type": "https://clearance.dev/rollout-transition/v1",
            "release": release,
            "event": event,
            "ring": "canary",
            "at": "2026-11-22T00:00:00Z",
            "reason": "failure rate 30% over 2%",
            "evidence": {},
        },
        sort_keys=True,
    ).encode()


def yara_reinspector(
    release: ReleaseFiles, previous: ReleaseFiles | None, work_dir: Path
) -> Reinspection:
    """A real, deterministic re-inspection: compile every .yar artifact with yara-x and report
    ``content.compile-error`` (critical) for each one that does not compile."""
    broken = 0
    digest = hashlib.sha256()
    for path in sorted(release.artifacts_dir.rglob("*.yar")):
        try:
            yara_x.compile(path.read_text())
        except yara_x.CompileError:
            broken += 1
            digest.update(path.name.encode())
    findings = {"content.compile-error": {"critical": broken}} if broken else {}
    return Reinspection(findings, digest.hexdigest())
