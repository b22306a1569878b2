"""``clearance policy``: the policy authority's distribution policy, from readable YAML.

- ``policy create --out policy.yaml [--name N]``: a commented YAML policy to edit
- ``policy check POLICY``: parse and show it (YAML or the signed envelope)
- ``policy explain POLICY --entitlement F... --customer C (--product P | --release R) [--date D]``:
  the decision for that customer, release and instant, before signing (exit 1 when refused)
- ``policy sign POLICY.yaml --key policy.key [--trust-root T] --out policy.json``
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clearance.cli._common import (
    EXIT_OK,
    EXIT_REFUSED,
    SubParsers,
    add_actions,
    add_json_flag,
    emit,
    set_handler,
)
from clearance.cli._documents import POLICY_TEMPLATE, load_document, subject_digest
from clearance.cli._files import check_output_dir, write_output
from clearance.errors import BadInput, Refused
from clearance.policy.model import ENTITLEMENT_PREDICATE_TYPE as ENTITLEMENT_TYPE
from clearance.policy.model import POLICY_PREDICATE_TYPE as POLICY_TYPE


class WrongRoleKeyError(Refused):
    """The signing key is not one of the trust root's keys for that role: the log would refuse it."""


def register(sub: SubParsers) -> None:
    actions = add_actions(
        sub, "policy", help="write, check, explain and sign a distribution policy (YAML)"
    )

    create = actions.add_parser("create", help="write a commented YAML policy to start from")
    create.add_argument("--name", default="my-policy", help="the policy's name")
    create.add_argument(
        "--out", required=True, type=Path, metavar="POLICY.yaml", help="where to write it"
    )
    create.add_argument("--force", action="store_true", help="overwrite an existing file")
    set_handler(create, _create)

    check = actions.add_parser("check", help="parse a policy and show what it says")
    check.add_argument("policy", metavar="POLICY", type=Path, help=_POLICY_HELP)
    add_json_flag(check)
    set_handler(check, _check)

    explain = actions.add_parser(
        "explain",
        help="the decision for a customer, a release and a date (exit 1 when refused)",
    )
    explain.add_argument("policy", metavar="POLICY", type=Path, help=_POLICY_HELP)
    explain.add_argument(
        "--entitlement",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="the customer's entitlement(s): YAML, signed, or the opening of a committed one "
        "(repeatable; none: no entitlement)",
    )
    explain.add_argument("--customer", required=True, help="the customer id")
    what = explain.add_mutually_exclusive_group(required=True)
    what.add_argument("--product", help="the product of the update")
    what.add_argument(
        "--release", type=Path, metavar="RELEASE.json", help="the release (its product)"
    )
    explain.add_argument(
        "--date",
        metavar="WHEN",
        help="the instant to decide at, RFC 3339 or a date (default: now)",
    )
    add_json_flag(explain)
    set_handler(explain, _explain)

    sign = actions.add_parser("sign", help="sign a YAML policy into an envelope to submit")
    sign.add_argument("policy", metavar="POLICY.yaml", type=Path, help="the policy (YAML)")
    sign.add_argument(
        "--key", required=True, action="append", type=Path, help="a policy .key (repeatable)"
    )
    sign.add_argument(
        "--trust-root",
        type=Path,
        metavar="trust-root.json",
        help="refuse keys that are not this trust root's policy keys",
    )
    sign.add_argument(
        "--out", required=True, type=Path, metavar="POLICY.json", help="the signed envelope"
    )
    add_json_flag(sign)
    set_handler(sign, _sign)


_POLICY_HELP = "the policy: YAML, or the signed envelope"


def load_policy_file(path: Path) -> tuple[Any, Any]:
    """``(DistributionPolicy, envelope or None)``."""
    from clearance.policy import DistributionPolicy, PolicyFormatError

    body, envelope = load_document(path, "policy", POLICY_TYPE)
    try:
        return DistributionPolicy.from_dict(body), envelope
    except PolicyFormatError as exc:
        raise PolicyFormatError(f"{path}: {exc}") from None


def load_entitlement_file(path: Path) -> tuple[Any, Any]:
    """``(Entitlement, envelope or None)``."""
    from clearance.policy import Entitlement, PolicyFormatError

    body, envelope = load_document(path, "entitlement", ENTITLEMENT_TYPE)
    if isinstance(body, dict) and "salt" in body and isinstance(body.get("entitlement"), dict):
        body = body["entitlement"]  # the private opening of a committed entitlement
    elif envelope is not None and isinstance(body, dict) and "customer" not in body:
        raise PolicyFormatError(
            f"{path}: this logged entitlement shows only a commitment; pass its opening "
            "(the OPENING.json the vendor gave the customer) instead"
        )
    try:
        return Entitlement.from_dict(body), envelope
    except PolicyFormatError as exc:
        raise PolicyFormatError(f"{path}: {exc}") from None


def check_signing_keys(signers: list[Any], trust_root: Path | None, role: str) -> None:
    """With ``--trust-root``: every key must be one of the role's keys there."""
    if trust_root is None:
        return
    from clearance.cli.submit import load_trust_root

    root = load_trust_root(trust_root)
    keys = {k.public_key for k in getattr(root, role).keys}
    for signer in signers:
        if signer.public_key not in keys:
            raise WrongRoleKeyError(
                f"key {signer.name!r} is not a {role} key of {trust_root}: the log would refuse "
                "what it signs"
            )


def _create(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.force:
        raise BadInput(f"{args.out}: already exists (give --force to overwrite)")
    text = POLICY_TEMPLATE.format(name=args.name)
    write_output(args.out, text.encode(), "policy")
    emit(args, {"out": str(args.out)}, f"wrote {args.out}: edit it, then `clearance policy check`")
    return EXIT_OK


def _summary(policy: Any) -> list[str]:
    from clearance.policy._time import format_time

    lines = [f"policy {policy.name}, issued {format_time(policy.issued)}"]
    for product, category in sorted(policy.products.items()):
        lines.append(f"  product {product}: {category}")
    for rule in policy.rules:
        parts = [f"  {rule.jurisdiction}:"]
        if rule.no_new_sales_after:
            parts.append(f"no new sales from {format_time(rule.no_new_sales_after)};")
        if rule.no_updates_after:
            parts.append(f"no updates from {format_time(rule.no_updates_after)};")
        if rule.grace_end:
            parts.append(f"existing customers served until {format_time(rule.grace_end)};")
        if rule.allowed_categories:
            parts.append(f"always allowed: {', '.join(rule.allowed_categories)}")
        lines.append(" ".join(parts).rstrip(";"))
    return lines


def _check(args: argparse.Namespace) -> int:
    policy, envelope = load_policy_file(args.policy)
    signed = envelope is not None
    lines = _summary(policy)
    lines.append("ok: signed envelope" if signed else "ok: valid, not signed yet")
    emit(args, {"ok": True, "signed": signed, "policy": policy.to_dict()}, "\n".join(lines))
    return EXIT_OK


def _moment(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    from clearance.policy._time import parse_time

    return parse_time(text, "--date")


def _explain(args: argparse.Namespace) -> int:
    from clearance.policy import LoggedPolicy, decide
    from clearance.policy._time import format_time

    policy, _ = load_policy_file(args.policy)
    entitlements = [load_entitlement_file(p)[0] for p in args.entitlement]
    if args.release:
        from clearance.attest import Release
        from clearance.cli.release import load_envelope

        release = Release.from_envelope(load_envelope(args.release, "release"))
        product, subject = release.product, f"{release.product} {release.version}"
    else:
        product, subject = args.product, args.product
    moment = _moment(args.date)
    decision = decide(LoggedPolicy(policy, -1), entitlements, args.customer, product, moment)
    result = {
        **decision.to_dict(),
        "customer": args.customer,
        "product": product,
        "at": format_time(moment),
    }
    if result["policy_log_index"] == -1:
        result["policy_log_index"] = None  # explained before logging: no index yet
    verdict = "allowed" if decision.allowed else "refused"
    by = f" by policy {decision.policy_name}" if decision.policy_name else ""
    emit(
        args,
        {"ok": decision.allowed, **result},
        f"{subject} for {args.customer} at {format_time(moment)}: {verdict}{by}\n"
        f"  rule: {decision.rule}\n  reason: {decision.reason}",
    )
    return EXIT_OK if decision.allowed else EXIT_REFUSED


def _sign(args: argparse.Namespace) -> int:
    from clearance.attest import Subject, create_policy
    from clearance.keys import load_signer

    policy, envelope = load_policy_file(args.policy)
    if envelope is not None:
        raise BadInput(f"{args.policy}: already a signed envelope; sign the YAML policy")
    check_output_dir(args.out, "signed policy")
    signers = [load_signer(p) for p in args.key]
    check_signing_keys(signers, args.trust_root, "policy")
    body = policy.to_dict()
    signed = create_policy(
        body, signers, name=policy.name, subjects=[Subject(policy.name, subject_digest(body))]
    )
    write_output(args.out, signed.to_bytes(), "signed policy")
    emit(
        args,
        {"out": str(args.out), "sha256": signed.sha256, "name": policy.name},
        f"wrote {args.out}: policy {policy.name} signed by "
        f"{', '.join(s.name for s in signers)}; submit it with `clearance submit`",
    )
    return EXIT_OK
