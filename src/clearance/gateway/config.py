"""The gateway's data directory and its configuration file ``gateway.json``.

Layout of ``--data DIR``::

    gateway.json        this configuration (token digests, vendor products, witnesses, rings)
    trust-root.json     the trust root served at /trust-root.json and used to check writes
    keys/               the embedded inspector's key, if any
    log/                the transparency log with its key (log/public/: C2SP tlog-tiles;
                        with ``database``, log/log.dsn and the log's state in PostgreSQL)
    gateway.sqlite      metadata index of the log (health.sqlite: bulk health reports,
                        jobs.sqlite: the job queue)
    artifacts/          uploaded artifacts, by SHA-256
    tuf/                the TUF repository of approved releases

With ``database`` the SQLite files are not made: the index, health reports,
jobs, artifacts, openings and TUF files are in PostgreSQL (artifacts/ and
tuf/ are this replica's copies), see :mod:`clearance.gateway.backends`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearance._files import write_private
from clearance._untrusted import UntrustedInputError, load_json
from clearance.errors import BadInput
from clearance.gateway.errors import GatewayInputError
from clearance.gateway.rollout import DEFAULT_RINGS, Ring, check_rings
from clearance.keys import Verifier
from clearance.witness.collector import WitnessConfig

CONFIG_NAME = "gateway.json"
TRUST_ROOT_FILE = "trust-root.json"
ROLES = ("vendor", "inspector", "policy", "client", "operator")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(role: str) -> str:
    return f"{role}-{secrets.token_urlsafe(24)}"


def witness_endpoint(name: str, url: str, verifier_key: str) -> WitnessConfig:
    """A witness from its name, URL and verifier key line (as in ``gateway.json``)."""
    try:
        verifier = Verifier.parse(verifier_key)
    except BadInput as exc:
        raise GatewayInputError(f"witness {name!r}: {exc}") from None
    return WitnessConfig(name, url, verifier)


@dataclass(frozen=True)
class GatewayConfig:
    """What ``clearance serve`` needs beyond the trust root."""

    #: Optional key of the embedded (deterministic) inspector that signs verdicts of the
    #: inspection workers; without one, verdicts come only from external inspectors.
    inspector_key: str | None = None
    #: The rollout operator's key (signs rollout transitions; in the trust root's rollout role).
    rollout_key: str | None = None
    #: token digest -> role
    tokens: Mapping[str, str] = field(default_factory=dict)
    #: vendor key name -> products it may release
    vendor_products: Mapping[str, Sequence[str]] = field(default_factory=dict)
    witnesses: tuple[WitnessConfig, ...] = ()
    rings: tuple[Ring, ...] = DEFAULT_RINGS
    workers: int = 2
    max_envelope_bytes: int = 60_000  # a log entry is at most 65535 bytes (tlog-tiles)
    max_artifact_bytes: int = 64 << 20
    corpus_dirs: tuple[str, ...] = ()
    #: A PostgreSQL job queue (libpq DSN) shared with remote inspection workers
    #: (``clearance gateway worker``); without it, the SQLite queue in the data directory.
    job_queue_dsn: str | None = None
    job_queue_table: str = "clearance_jobs"
    #: PostgreSQL (libpq DSN) holding the log, shared by every ``clearance serve`` replica;
    #: ``None``: the embedded SQLite log in the data directory.
    database: str | None = None
    #: Health reports accepted in bulk are logged as one aggregate per ring per window.
    health_window_seconds: int = 300
    #: With replicas: forward signed submissions to the leader, the one sequencer, instead
    #: of taking turns at integrating them (``clearance.gateway._forwarding``).
    forward_to_leader: bool = True

    def role_of(self, token: str | None) -> str | None:
        if not token:
            return None
        return self.tokens.get(token_digest(token))

    def to_dict(self) -> dict[str, Any]:
        return {
            "inspector_key": self.inspector_key,
            "rollout_key": self.rollout_key,
            "tokens": dict(self.tokens),
            "vendor_products": {k: list(v) for k, v in self.vendor_products.items()},
            "witnesses": [
                {"name": w.name, "url": w.url, "key": w.verifier.to_string()}
                for w in self.witnesses
            ],
            "rings": [r.to_dict() for r in self.rings],
            "workers": self.workers,
            "max_envelope_bytes": self.max_envelope_bytes,
            "max_artifact_bytes": self.max_artifact_bytes,
            "corpus_dirs": list(self.corpus_dirs),
            "job_queue_dsn": self.job_queue_dsn,
            "job_queue_table": self.job_queue_table,
            "database": self.database,
            "health_window_seconds": self.health_window_seconds,
            "forward_to_leader": self.forward_to_leader,
        }

    @classmethod
    def from_dict(cls, data: Any) -> GatewayConfig:
        if not isinstance(data, dict):
            raise GatewayInputError("gateway.json is not a JSON object")
        try:
            rings = tuple(
                Ring.from_dict(r) for r in data.get("rings", [r.to_dict() for r in DEFAULT_RINGS])
            )
            check_rings(rings)
            tokens = {str(k): str(v) for k, v in data.get("tokens", {}).items()}
            for role in tokens.values():
                if role not in ROLES:
                    raise GatewayInputError(f"gateway.json: unknown role {role!r}")
            return cls(
                inspector_key=data.get("inspector_key"),
                rollout_key=data.get("rollout_key"),
                tokens=tokens,
                vendor_products={
                    str(k): tuple(str(p) for p in v)
                    for k, v in data.get("vendor_products", {}).items()
                },
                witnesses=tuple(
                    witness_endpoint(str(w["name"]), str(w["url"]), str(w["key"]))
                    for w in data.get("witnesses", [])
                ),
                rings=rings,
                workers=int(data.get("workers", 2)),
                max_envelope_bytes=int(data.get("max_envelope_bytes", 60_000)),
                max_artifact_bytes=int(data.get("max_artifact_bytes", 64 << 20)),
                corpus_dirs=tuple(str(c) for c in data.get("corpus_dirs", [])),
                job_queue_dsn=data.get("job_queue_dsn"),
                job_queue_table=str(data.get("job_queue_table", "clearance_jobs")),
                database=_optional_dsn(data.get("database")),
                health_window_seconds=_positive(data.get("health_window_seconds", 300)),
                forward_to_leader=_flag(data.get("forward_to_leader", True), "forward_to_leader"),
            )
        except (KeyError, TypeError, ValueError, BadInput) as exc:
            raise GatewayInputError(f"gateway.json: malformed ({exc})") from None


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise GatewayInputError(f"gateway.json: {name!r} must be true or false")
    return value


def _positive(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GatewayInputError("gateway.json: 'health_window_seconds' must be a positive integer")
    return value


def _optional_dsn(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise GatewayInputError("gateway.json: 'database' must be a PostgreSQL DSN or null")
    return value


def load_config(data_dir: Path) -> GatewayConfig:
    path = data_dir / CONFIG_NAME
    if not path.is_file():
        raise GatewayInputError(
            f"{data_dir}: not a gateway data directory (no {CONFIG_NAME}; "
            "create one with `clearance gateway init`)"
        )
    try:
        return GatewayConfig.from_dict(load_json(path.read_bytes(), str(path)))
    except UntrustedInputError as exc:
        raise GatewayInputError(str(exc)) from None


def write_config(data_dir: Path, config: GatewayConfig) -> Path:
    path = data_dir / CONFIG_NAME
    write_private(path, json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    return path
