"""``clearance verify ARTIFACT --bundle B --trust-root T [--state DIR] [--customer C]``.

The endpoint check.  With ``--customer``, the distribution policy, the customer's
entitlement (its opening from the bundle or ``--opening``) and the release's signed
rollout are evaluated offline as well; with ``--server`` too, the gateway's answer
about newer releases is checked against its log.

Exit 0 when the artifact may be installed; 1 with the failing check named
on stderr (``refused: [check] reason``); 2 for unreadable input; 3 when
``--server`` cannot be reached.  Without ``--state`` nothing remembers what
was installed or seen, so rollback and freeze protection are off: the
command says so on stderr.  With ``--state`` the state is written last, once
every check (the withholding check included) has passed.
``--product``/``--channel`` name what the bundle must be for; without them a
state pinned to another product or channel refuses the bundle.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from clearance.attest.trust_root import TrustRoot, follow_rotations
from clearance.cli._common import (
    EXIT_OK,
    SubParsers,
    add_json_flag,
    emit,
    gateway_client,
    read_bytes,
    read_json,
    set_handler,
    stderr,
)
from clearance.cli.release import load_envelope
from clearance.cli.submit import load_trust_root
from clearance.client import (
    Bundle,
    BundleVerifier,
    ClientState,
    SplitViewError,
    keep_split_view,
    record_installation,
)
from clearance.errors import BadInput


def register(sub: SubParsers) -> None:
    verify = sub.add_parser("verify", help="verify an artifact offline from a bundle")
    verify.add_argument("artifact", metavar="ARTIFACT", type=Path, help="the file to install")
    verify.add_argument(
        "--bundle",
        required=True,
        type=Path,
        metavar="BUNDLE.json",
        help="the offline bundle (clearance bundle)",
    )
    verify.add_argument(
        "--trust-root",
        required=True,
        type=Path,
        metavar="trust-root.json",
        help="the trust root this endpoint pins",
    )
    verify.add_argument(
        "--state",
        type=Path,
        metavar="DIR",
        help="keeps installed versions and the last checkpoint (rollback, freeze, split view); "
        "without it rollback and freeze protection are off",
    )
    verify.add_argument(
        "--product",
        metavar="P",
        help="the product this bundle must be for (needed to install a product the state "
        "is not pinned to)",
    )
    verify.add_argument(
        "--channel",
        metavar="C",
        help="the channel this bundle must be for (needed to leave the pinned channel)",
    )
    verify.add_argument(
        "--rotation",
        action="append",
        type=Path,
        default=[],
        metavar="ROTATION.json",
        help="signed trust-root rotation(s) to follow from the pinned root before verifying",
    )
    verify.add_argument(
        "--server",
        metavar="URL",
        help="also ask this gateway for the newest release of the channel and check against "
        "its log that nothing newer is withheld without a logged reason (needs --customer)",
    )
    verify.add_argument(
        "--customer",
        metavar="NAME",
        help="evaluate offline the policy in force, this customer's entitlement and the "
        "release's rollout carried by the bundle (refused if the bundle lacks them)",
    )
    verify.add_argument(
        "--device-key",
        type=Path,
        metavar="DEVICE.key",
        help="this endpoint's device key (named by the customer's entitlement): signs the "
        "requests to --server, which derives the customer from it",
    )
    verify.add_argument(
        "--opening",
        type=Path,
        metavar="OPENING.json",
        help="the customer's own opening of its logged entitlement (if the bundle has none)",
    )
    add_json_flag(verify)
    set_handler(verify, _verify)


def _verify(args: argparse.Namespace) -> int:
    digest = hashlib.sha256(read_bytes(args.artifact, "artifact")).hexdigest()
    bundle = read_bytes(args.bundle, "bundle")
    trust_root = load_trust_root(args.trust_root)
    if args.rotation:
        rotations = [load_envelope(p, "trust-root rotation") for p in args.rotation]
        trust_root = follow_rotations(trust_root, rotations)
    state = ClientState.load(args.state) if args.state else None
    if state is None:
        stderr(
            "warning: no --state: rollback and freeze protection are off (nothing remembers "
            "the installed version or the last checkpoint seen)"
        )
    if args.opening is not None:
        if not args.customer:
            raise BadInput("--opening needs --customer NAME")
        opening = read_json(args.opening, "entitlement opening")
        bundle = replace(Bundle.from_bytes(bundle), entitlement_opening=opening).to_bytes()
    try:
        result = BundleVerifier(trust_root).verify(
            digest, bundle, state, args.customer, product=args.product, channel=args.channel
        )
    except SplitViewError as exc:
        if state is None:
            raise
        raise keep_split_view(state, exc) from None
    withholding = _check_withholding(
        args,
        trust_root,
        result.product,
        result.channel,
        result.release_sha256,
        Bundle.from_bytes(bundle).entitlement_opening,
    )
    if state is not None:
        record_installation(state, result)  # last: after every check, withholding included
    emit(
        args,
        {"ok": True, **result.to_dict(), "state": args.state is not None, **withholding},
        f"OK {result.product} {result.version} ({result.channel}): {result.artifact} "
        f"logged at {result.log_index} in tree {result.checkpoint_size}; approved by "
        f"{', '.join(result.inspectors)}; witnessed by {', '.join(result.witnesses) or 'none'}"
        + (
            f"; checkpoint {result.checkpoint_age} s old"
            if result.checkpoint_age is not None
            else ""
        )
        + f"; consistency {result.consistency}"
        + (
            f"\nallowed for {args.customer}: {result.distribution.rule} "
            f"(policy log index {result.distribution.policy_log_index}); "
            f"rollout {result.distribution.rollout}"
            if result.distribution is not None
            else ""
        )
        + (f"\n{withholding['withholding_text']}" if withholding else ""),
    )
    return EXIT_OK


def _check_withholding(
    args: argparse.Namespace,
    trust_root: TrustRoot,
    product: str,
    channel: str,
    verified: str,
    opening: Any = None,
) -> dict[str, Any]:
    """With --server: raises WithheldWithoutReason (exit 1) on an unexplained withholding."""
    if args.server is None:
        return {}
    if not args.customer:
        raise BadInput("--server needs --customer NAME")
    from clearance.client.withholding import check_withholding
    from clearance.keys import load_signer
    from clearance.policy.commitment import EntitlementOpening

    openings = [] if opening is None else [EntitlementOpening.from_dict(opening)]
    with gateway_client(args) as gateway:
        if args.device_key:
            gateway.device = load_signer(args.device_key)
        report = check_withholding(gateway, trust_root, product, channel, args.customer, openings)
    newest = report.newest_approved_in_log
    newer_withheld = report.withheld and newest != verified
    if report.withheld and not newer_withheld:
        # The newest approved release is the one just verified: nothing newer exists.
        text = (
            f"the release verified here is the newest approved {product}/{channel} release; "
            f"the gateway does not offer it to {args.customer} ({report.explained_by})"
        )
    elif newer_withheld:
        text = (
            f"newer approved release {report.newest_approved_in_log} is withheld from "
            f"{args.customer}, explained by the log: {report.explained_by}"
        )
    else:
        text = f"no newer approved {product}/{channel} release is withheld from {args.customer}"
    return {
        "withholding": {**report.to_dict(), "newer_withheld": newer_withheld},
        "withholding_text": text,
    }
