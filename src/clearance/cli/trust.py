"""``clearance trust``: write, show, sign and rotate the trust root endpoints pin.

- ``trust init``: the contract of DESIGN.md, plus ``--rollout-key``/``--rollout-threshold``,
  ``--root-key``/``--root-threshold`` (extra signers of every rotation; by default there
  are none: each party governs its own keys), ``--max-checkpoint-age`` and ``--root-version``
- ``trust sign ROOT --key K... --out ENVELOPE``: sign a (new) trust root as a rotation
  envelope, or add signatures to an existing rotation envelope
- ``trust rotate --current T --rotation ENVELOPE --out NEW``: accept a rotation only if
  every party it changes signed it (``clearance.attest._governance``)
- ``trust show T``: print the root's roles
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clearance._untrusted import UntrustedInputError, load_json
from clearance.attest import (
    Envelope,
    Role,
    TrustRoot,
    TrustRootFormatError,
    accept_rotation,
    rotation_envelope,
)
from clearance.attest.trust_root import DEFAULT_MAX_CHECKPOINT_AGE, TRUST_ROOT_PAYLOAD_TYPE
from clearance.cli._common import (
    EXIT_OK,
    SubParsers,
    add_actions,
    add_json_flag,
    emit,
    read_bytes,
    set_handler,
    stderr,
)
from clearance.cli._files import write_output
from clearance.keys import load_signer, load_verifier


def register(sub: SubParsers) -> None:
    actions = add_actions(sub, "trust", help="the trust root endpoints pin")

    init = actions.add_parser("init", help="write a trust root")
    init.add_argument("--origin", required=True, help="the log's checkpoint origin")
    init.add_argument("--log-key", required=True, type=Path, help="the log's .pub file")
    for role, label in (
        ("vendor", "vendor"),
        ("inspector", "inspector"),
        ("witness", "witness"),
        ("rollout", "rollout operator"),
    ):
        init.add_argument(
            f"--{role}-key",
            action="extend",
            nargs="+",
            type=Path,
            default=[],
            required=role in ("vendor", "inspector"),
            help=f"{label} .pub file(s)",
        )
        init.add_argument(
            f"--{role}-threshold",
            type=int,
            metavar="K",
            help=f"{label} signatures needed (default: 1 when {label} keys are given)",
        )
    init.add_argument("--policy-key", type=Path, help="the policy authority's .pub file")
    init.add_argument(
        "--root-key",
        action="extend",
        nargs="+",
        type=Path,
        default=[],
        help="extra keys that must also sign every rotation (default: none; each party "
        "changes its own keys with its own threshold and the policy authority's)",
    )
    init.add_argument("--root-threshold", type=int, help="root signatures needed for a rotation")
    init.add_argument(
        "--max-checkpoint-age",
        type=int,
        metavar="SECONDS",
        help="refuse checkpoints whose witness cosignatures are older "
        f"(default {DEFAULT_MAX_CHECKPOINT_AGE} with witnesses; without witnesses nothing "
        "dates a checkpoint, so the default is no limit)",
    )
    init.add_argument("--root-version", type=int, default=1, help="trust root version")
    init.add_argument("--out", required=True, type=Path, help="where to write trust-root.json")
    add_json_flag(init)
    set_handler(init, _init)

    sign = actions.add_parser("sign", help="sign a new trust root as a rotation envelope")
    sign.add_argument("root", metavar="ROOT", type=Path, help="trust root or rotation envelope")
    sign.add_argument("--key", required=True, action="append", type=Path, help="a root .key")
    sign.add_argument(
        "--out", required=True, type=Path, metavar="ROTATION.json", help="the signed envelope"
    )
    add_json_flag(sign)
    set_handler(sign, _sign)

    rotate = actions.add_parser(
        "rotate", help="accept a rotation signed by every party whose keys it changes"
    )
    rotate.add_argument("--current", required=True, type=Path, help="the pinned trust root")
    rotate.add_argument("--rotation", required=True, type=Path, help="the rotation envelope")
    rotate.add_argument("--out", required=True, type=Path, help="where to write the new root")
    add_json_flag(rotate)
    set_handler(rotate, _rotate)

    show = actions.add_parser("show", help="print a trust root")
    show.add_argument("root", metavar="ROOT", type=Path, help="the trust root file")
    add_json_flag(show)
    set_handler(show, _show)


def _role(paths: list[Path], threshold: int | None, what: str) -> Role:
    keys = tuple(load_verifier(p) for p in paths)
    if threshold is None:
        threshold = 1 if keys else 0
    if keys and not 1 <= threshold <= len(keys):
        raise TrustRootFormatError(
            f"--{what}-threshold {threshold} is impossible with {len(keys)} {what} key(s)"
        )
    if not keys and threshold:
        raise TrustRootFormatError(f"--{what}-threshold given without any --{what}-key")
    return Role(keys, threshold)


def _init(args: argparse.Namespace) -> int:
    vendors = _role(args.vendor_key, args.vendor_threshold, "vendor")
    inspectors = _role(args.inspector_key, args.inspector_threshold, "inspector")
    witnesses = _role(args.witness_key, args.witness_threshold, "witness")
    policy = _role([args.policy_key] if args.policy_key else [], None, "policy")
    rollout = _role(args.rollout_key, args.rollout_threshold, "rollout")
    root_role = _role(args.root_key, args.root_threshold, "root") if args.root_key else None
    if args.root_threshold is not None and not args.root_key:
        raise TrustRootFormatError("--root-threshold given without any --root-key")
    max_age = args.max_checkpoint_age
    if max_age is None and witnesses.threshold:
        max_age = DEFAULT_MAX_CHECKPOINT_AGE
    elif max_age is None:
        stderr("note: no witness keys, so endpoints cannot check checkpoint freshness")
    root = TrustRoot(
        log_origin=args.origin,
        log_key=load_verifier(args.log_key),
        vendors=vendors,
        inspectors=inspectors,
        witnesses=witnesses,
        policy=policy,
        rollout=rollout,
        root=root_role,
        max_checkpoint_age=max_age,
        version=args.root_version,
    )
    write_output(args.out, root.to_json().encode(), "trust root")
    emit(args, root.to_dict(), f"wrote {args.out} (trust root version {root.version})")
    return EXIT_OK


def _load_root(path: Path) -> TrustRoot:
    try:
        return TrustRoot.from_bytes(read_bytes(path, "trust root"))
    except TrustRootFormatError as exc:
        raise TrustRootFormatError(f"{path}: {exc}") from None


def _sign(args: argparse.Namespace) -> int:
    data = read_bytes(args.root, "trust root")
    try:
        value = load_json(data, f"{args.root}")
    except UntrustedInputError as exc:
        raise TrustRootFormatError(str(exc)) from None
    if isinstance(value, dict) and value.get("payloadType") == TRUST_ROOT_PAYLOAD_TYPE:
        envelope = Envelope.from_dict(value)
        TrustRoot.from_bytes(envelope.payload)
    else:
        envelope = rotation_envelope(_load_root(args.root))
    signed = envelope.with_signatures([load_signer(p) for p in args.key])
    write_output(args.out, signed.to_bytes(), "rotation envelope")
    keyids = [s.keyid for s in signed.signatures]
    emit(
        args,
        {"out": str(args.out), "signatures": keyids},
        f"wrote {args.out} signed by {', '.join(keyids)}",
    )
    return EXIT_OK


def _rotate(args: argparse.Namespace) -> int:
    current = _load_root(args.current)
    envelope = Envelope.from_bytes(read_bytes(args.rotation, "rotation envelope"))
    new_root = accept_rotation(current, envelope)
    write_output(args.out, new_root.to_json().encode(), "trust root")
    emit(
        args,
        new_root.to_dict(),
        f"accepted trust root version {new_root.version}; wrote {args.out}",
    )
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    root = _load_root(args.root)
    lines = [
        f"trust root version {root.version}",
        f"log: {root.log_origin} {root.log_key.to_string()}",
    ]
    for name in ("vendors", "inspectors", "witnesses", "policy", "rollout", "root"):
        role: Role | None = getattr(root, name)
        if role is None:
            continue
        lines.append(f"{name}: {role.threshold} of {len(role.keys)}")
        lines.extend(f"  {k.to_string()}" for k in role.keys)
    age = root.max_checkpoint_age
    lines.append(f"max checkpoint age: {'no limit' if age is None else f'{age} s'}")
    emit(args, root.to_dict(), "\n".join(lines))
    return EXIT_OK
