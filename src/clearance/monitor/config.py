"""``monitor.yaml``: what the monitor expects, its thresholds, and where alerts go.

Every key is optional::

    interval_seconds: 60            # follow mode: time between passes
    verdict_deadline_hours: 72      # monitor.release-without-verdict
    checkpoint_stale_hours: 24      # monitor.checkpoint-stale (0: off)
    witness_silent_hours: 0         # monitor.witness-silent after this long without cosigning
    products: [agent]               # monitor.unexpected-product for any other
    signers:                        # monitor.unexpected-signer: vendor keys allowed per product
      agent: ["vendor.example+1a2b3c4d"]     # DSSE key ids (name+hash) or key names
    witnesses: ["http://witness-1:8001"]      # compared with the log's view (split view)
    webhooks:
      - url: https://hooks.example/clearance
        secret_file: /etc/clearance/hook.secret   # or secret_env: NAME; HMAC-SHA256 key
    signing_key: /etc/clearance/monitor.key   # the monitor's own Ed25519 key: webhooks
                                              # also carry its signature (docs/monitor.md)
    email:
      host: smtp.example
      port: 25
      from: monitor@example.org
      to: [oncall@example.org]
      starttls: false
      username_env: SMTP_USER        # optional login, read from the environment
      password_env: SMTP_PASSWORD

Secrets are never written in the file itself: a file or an environment variable names them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clearance._untrusted import load_yaml
from clearance.errors import BadInput
from clearance.keys import Signer, load_signer
from clearance.monitor.errors import MonitorInputError


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: bytes
    #: The monitor's own key: when set, each POST also carries its Ed25519 signature, which
    #: a receiver checks with the public key alone (no shared secret to leak).
    signer: Signer | None = None

    def __repr__(self) -> str:  # never print the secret
        return f"Webhook({self.url!r})"


@dataclass(frozen=True)
class Email:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = False
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return f"Email({self.host}:{self.port} -> {', '.join(self.recipients)})"


@dataclass(frozen=True)
class MonitorConfig:
    interval_seconds: float = 60.0
    verdict_deadline_hours: float = 72.0
    checkpoint_stale_hours: float = 24.0
    witness_silent_hours: float = 0.0
    products: tuple[str, ...] | None = None
    signers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    witnesses: tuple[str, ...] = ()
    webhooks: tuple[Webhook, ...] = ()
    email: Email | None = None

    @classmethod
    def load(cls, path: Path) -> MonitorConfig:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MonitorInputError(f"{path}: cannot read monitor config: {exc.strerror}") from None
        try:
            raw = load_yaml(text, f"{path}: monitor config")
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
            problem = getattr(exc, "problem", None) or "syntax error"
            raise MonitorInputError(
                f"{path}: monitor config is not YAML ({problem}{where})"
            ) from None
        return cls.from_dict(raw or {}, str(path), path.parent)

    @classmethod
    def from_dict(cls, raw: Any, where: str = "config", base: Path | None = None) -> MonitorConfig:
        if not isinstance(raw, dict):
            raise MonitorInputError(f"{where}: expected a mapping at the top level")
        known = {
            "interval_seconds",
            "verdict_deadline_hours",
            "checkpoint_stale_hours",
            "witness_silent_hours",
            "products",
            "signers",
            "witnesses",
            "webhooks",
            "email",
            "signing_key",
        }
        unknown = sorted(set(raw) - known)
        if unknown:
            raise MonitorInputError(f"{where}: unknown key(s) {', '.join(unknown)}")
        products = raw.get("products")
        signer = _signing_key(raw.get("signing_key"), f"{where}: signing_key", base)
        return cls(
            interval_seconds=_number(raw, "interval_seconds", 60.0, where, minimum=0.01),
            verdict_deadline_hours=_number(raw, "verdict_deadline_hours", 72.0, where),
            checkpoint_stale_hours=_number(raw, "checkpoint_stale_hours", 24.0, where),
            witness_silent_hours=_number(raw, "witness_silent_hours", 0.0, where),
            products=None if products is None else _strings(products, f"{where}: products"),
            signers={
                str(p): _strings(v, f"{where}: signers.{p}")
                for p, v in _mapping(raw.get("signers", {}), f"{where}: signers").items()
            },
            witnesses=_strings(raw.get("witnesses", []), f"{where}: witnesses"),
            webhooks=tuple(
                _webhook(h, f"{where}: webhooks[{i}]", base, signer)
                for i, h in enumerate(_list(raw.get("webhooks", []), f"{where}: webhooks"))
            ),
            email=None if raw.get("email") is None else _email(raw["email"], f"{where}: email"),
        )


def _number(
    raw: Mapping[str, Any], key: str, default: float, where: str, minimum: float = 0.0
) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise MonitorInputError(f"{where}: {key} must be a number >= {minimum:g}")
    return float(value)


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise MonitorInputError(f"{what}: expected a list")
    return value


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MonitorInputError(f"{what}: expected a mapping")
    return value


def _strings(value: Any, what: str) -> tuple[str, ...]:
    items = _list(value, what)
    if not all(isinstance(v, str) and v for v in items):
        raise MonitorInputError(f"{what}: expected a list of non-empty strings")
    return tuple(items)


def _secret(raw: Mapping[str, Any], what: str, base: Path | None) -> bytes:
    if "secret_file" in raw:
        path = Path(str(raw["secret_file"]))
        if not path.is_absolute() and base is not None:
            path = base / path
        try:
            data = path.read_bytes().strip()
        except OSError as exc:
            raise MonitorInputError(f"{what}: secret_file {path}: {exc.strerror}") from None
    elif "secret_env" in raw:
        data = os.environ.get(str(raw["secret_env"]), "").encode()
    else:
        raise MonitorInputError(f"{what}: give secret_file or secret_env (the HMAC key)")
    if len(data) < 16:
        raise MonitorInputError(f"{what}: the webhook secret must be at least 16 bytes")
    return data


def _webhook(raw: Any, what: str, base: Path | None, signer: Signer | None) -> Webhook:
    raw = _mapping(raw, what)
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise MonitorInputError(f"{what}: url must be an http(s) URL")
    return Webhook(url, _secret(raw, what, base), signer)


def _signing_key(value: Any, what: str, base: Path | None) -> Signer | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise MonitorInputError(f"{what}: expected the path of a private key file")
    path = Path(value)
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        return load_signer(path)
    except BadInput as exc:
        raise MonitorInputError(f"{what}: {exc}") from None


def _email(raw: Any, what: str) -> Email:
    raw = _mapping(raw, what)
    host, sender = raw.get("host"), raw.get("from")
    if not isinstance(host, str) or not isinstance(sender, str) or "@" not in sender:
        raise MonitorInputError(f"{what}: host and a from address are required")
    port = raw.get("port", 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise MonitorInputError(f"{what}: port must be 1..65535")
    to = raw.get("to", [])
    recipients = (to,) if isinstance(to, str) else _strings(to, f"{what}: to")
    if not recipients:
        raise MonitorInputError(f"{what}: at least one recipient (to) is required")
    user_env, pass_env = raw.get("username_env"), raw.get("password_env")
    return Email(
        host,
        port,
        sender,
        tuple(recipients),
        bool(raw.get("starttls", False)),
        os.environ.get(str(user_env)) if user_env else None,
        os.environ.get(str(pass_env)) if pass_env else None,
    )
