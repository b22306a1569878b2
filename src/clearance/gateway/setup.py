"""Creating a gateway data directory (``clearance gateway init``, the demo, tests)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from clearance._files import write_private
from clearance.attest.trust_root import TrustRoot
from clearance.gateway.backends import tuf_share
from clearance.gateway.config import (
    ROLES,
    TRUST_ROOT_FILE,
    GatewayConfig,
    new_token,
    token_digest,
    write_config,
)
from clearance.gateway.errors import GatewayInputError
from clearance.gateway.rollout import DEFAULT_RINGS, Ring, check_rings
from clearance.gateway.tuf_repo import TufRepository
from clearance.index import LogIndex
from clearance.keys import Signer
from clearance.log import TransparencyLog
from clearance.witness.collector import WitnessConfig

TOKENS_NAME = "tokens.json"


def init_gateway(
    data_dir: Path,
    *,
    trust_root: TrustRoot,
    log_signer: Signer,
    vendor_products: Mapping[str, Sequence[str]],
    inspector_signer: Signer | None = None,
    rollout_signer: Signer | None = None,
    witnesses: Sequence[WitnessConfig] = (),
    rings: Sequence[Ring] = DEFAULT_RINGS,
    workers: int = 2,
    tokens: Mapping[str, str] | None = None,
    corpus_dirs: Sequence[str] = (),
    max_artifact_bytes: int = 64 << 20,
    job_queue_dsn: str | None = None,
    job_queue_table: str = "clearance_jobs",
    database: str | None = None,
) -> dict[str, str]:
    """Create ``data_dir`` with its log, trust root and configuration.

    With ``database`` (a PostgreSQL DSN) the log lives in that database and
    the job queue too (unless ``job_queue_dsn`` names another), so that
    several ``clearance serve`` replicas can share them.

    Returns the API token of each role (also written to ``tokens.json``, mode
    0600, for the operator to hand out); only their digests are in the config.
    """
    if (data_dir / "gateway.json").exists():
        raise GatewayInputError(f"{data_dir}: already a gateway data directory")
    if log_signer.verifier.public_key != trust_root.log_key.public_key:
        raise GatewayInputError("the log key is not the one the trust root names")
    check_rings(rings)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / TRUST_ROOT_FILE).write_bytes(trust_root.to_bytes())
    # The empty checkpoint already commits to the (empty) verifiable index.
    TransparencyLog.create(
        data_dir / "log",
        trust_root.log_origin,
        log_signer,
        LogIndex(trust_root),
        database=database,
    ).close()
    if database is not None and job_queue_dsn is None:
        job_queue_dsn = database
    if rollout_signer is not None and all(
        k.public_key != rollout_signer.public_key for k in trust_root.rollout.keys
    ):
        raise GatewayInputError("the rollout key is not in the trust root's rollout role")
    inspector_key = None if inspector_signer is None else _keep_key(data_dir, inspector_signer)
    rollout_key = None if rollout_signer is None else _keep_key(data_dir, rollout_signer)
    plain = dict(tokens) if tokens is not None else {role: new_token(role) for role in ROLES}
    for role in plain:
        if role not in ROLES:
            raise GatewayInputError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    config = GatewayConfig(
        inspector_key=inspector_key,
        rollout_key=rollout_key,
        tokens={token_digest(t): role for role, t in plain.items()},
        vendor_products={k: tuple(v) for k, v in vendor_products.items()},
        witnesses=tuple(witnesses),
        rings=tuple(rings),
        workers=workers,
        corpus_dirs=tuple(corpus_dirs),
        max_artifact_bytes=max_artifact_bytes,
        job_queue_dsn=job_queue_dsn,
        job_queue_table=job_queue_table,
        database=database,
    )
    write_config(data_dir, config)
    # The TUF keys and root are made here, once: replicas started together would race.
    # With a database the repository's files go there too (replicas on other machines).
    TufRepository(data_dir / "tuf", shared=tuf_share(database)).close()
    write_private(data_dir / TOKENS_NAME, json.dumps(plain, indent=2, sort_keys=True) + "\n")
    return plain


def _keep_key(data_dir: Path, signer: Signer) -> str:
    """Write ``signer`` under ``data_dir/keys`` (mode 0600); its path relative to data_dir."""
    keys = data_dir / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    path = keys / f"{signer.name}.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(signer.to_string() + "\n")
    return str(path.relative_to(data_dir))
