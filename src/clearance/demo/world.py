"""A complete set of parties for a gateway: keys for each role, trust root, data directory.

Used by the worked example (``make run``), the tests and the benchmark; all
keys are real Ed25519 keys written as C2SP signed-note key files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from clearance.attest.trust_root import Role, TrustRoot
from clearance.gateway.rollout import Ring
from clearance.gateway.setup import init_gateway
from clearance.keys import Signer, Verifier, generate_key_files, load_signer
from clearance.witness.collector import WitnessConfig

#: Rings for demonstrations: the same shape as production, with soak times of seconds.
DEMO_RINGS: tuple[Ring, ...] = (
    Ring("canary", 1.0, timedelta(seconds=2), failure_threshold=0.2, min_reports=1),
    Ring("early", 10.0, timedelta(seconds=2), failure_threshold=0.1, min_reports=3),
    Ring("broad", 100.0, timedelta(0), failure_threshold=0.05, min_reports=10),
)


@dataclass(frozen=True)
class World:
    data_dir: Path
    keys_dir: Path
    origin: str
    log: Signer
    vendor: Signer
    inspector: Signer
    policy: Signer
    client: Signer
    witnesses: tuple[Signer, ...]
    trust_root: TrustRoot
    tokens: dict[str, str]
    product: str

    def token(self, role: str) -> str:
        return self.tokens[role]


def _key(keys_dir: Path, name: str) -> Signer:
    private, _ = generate_key_files(name, keys_dir)
    return load_signer(private)


def build_world(
    root: Path,
    *,
    origin: str = "clearance.example/log",
    product: str = "endpoint-antivirus",
    embedded_inspector: bool = True,
    witness_urls: Sequence[str] = (),
    witness_signers: Sequence[Signer] = (),
    rings: Sequence[Ring] = DEMO_RINGS,
    workers: int = 1,
    extra_products: Sequence[str] = ("threat-intelligence-feed",),
    log_signer: Signer | None = None,
    max_artifact_bytes: int = 64 << 20,
    job_queue_dsn: str | None = None,
    job_queue_table: str = "clearance_jobs",
    database: str | None = None,
) -> World:
    """Create keys under ``root/keys`` and a gateway data directory ``root/gateway``."""
    keys_dir = root / "keys"
    keys_dir.mkdir(parents=True, exist_ok=True)
    log = log_signer or _key(keys_dir, "log")
    vendor = _key(keys_dir, "vendor")
    inspector = _key(keys_dir, "inspector")
    policy = _key(keys_dir, "policy")
    client = _key(keys_dir, "client")
    witness_keys: tuple[Verifier, ...] = tuple(w.verifier for w in witness_signers)
    trust_root = TrustRoot(
        log_origin=origin,
        log_key=log.verifier,
        vendors=Role((vendor.verifier,), 1),
        inspectors=Role((inspector.verifier,), 1),
        witnesses=Role(witness_keys, len(witness_keys)),
        policy=Role((policy.verifier,), 1),
    )
    (root / "trust-root.json").write_bytes(trust_root.to_bytes())
    data_dir = root / "gateway"
    tokens = init_gateway(
        data_dir,
        trust_root=trust_root,
        log_signer=log,
        vendor_products={vendor.name: (product, *extra_products)},
        inspector_signer=inspector if embedded_inspector else None,
        witnesses=[
            WitnessConfig(s.name, url, s.verifier)
            for s, url in zip(witness_signers, witness_urls, strict=True)
        ],
        rings=rings,
        workers=workers,
        max_artifact_bytes=max_artifact_bytes,
        job_queue_dsn=job_queue_dsn,
        database=database,
        job_queue_table=job_queue_table,
    )
    return World(
        data_dir,
        keys_dir,
        origin,
        log,
        vendor,
        inspector,
        policy,
        client,
        tuple(witness_signers),
        trust_root,
        tokens,
        product,
    )
