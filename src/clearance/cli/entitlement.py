"""``clearance entitlement``: a customer's entitlement, written by its vendor in readable YAML.

- ``entitlement create --customer C --jurisdiction J --product P --start D --end D
  [--client-key F.pub]... --out ent.yaml``
- ``entitlement check FILE``: parse and show it (YAML or the signed envelope)
- ``entitlement sign FILE.yaml --key vendor.key [--trust-root T] --out ent.json``: the
  envelope to submit with ``clearance submit --server`` (vendor token)

``clearance policy explain`` takes these files to show the decision for a customer.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clearance.cli._common import EXIT_OK, SubParsers, add_json_flag, emit, set_handler
from clearance.cli._documents import ENTITLEMENT_TEMPLATE, subject_digest
from clearance.cli._files import check_output_dir, write_output
from clearance.cli.policy import check_signing_keys, load_entitlement_file
from clearance.errors import BadInput
from clearance.policy.model import ENTITLEMENT_PREDICATE_TYPE as ENTITLEMENT_TYPE


def register(sub: SubParsers) -> None:
    group = sub.add_parser(
        "entitlement", help="write, check and sign a customer entitlement (YAML)"
    )
    actions = group.add_subparsers(dest="entitlement_command", metavar="ACTION")
    actions.required = True

    create = actions.add_parser("create", help="write an entitlement as YAML")
    create.add_argument("--customer", required=True, help="the customer id")
    create.add_argument(
        "--jurisdiction", required=True, help="the customer's jurisdiction (US, DE...)"
    )
    create.add_argument("--product", required=True, help="the product sold")
    create.add_argument(
        "--start", required=True, metavar="WHEN", help="first day (RFC 3339 or date)"
    )
    create.add_argument(
        "--end", required=True, metavar="WHEN", help="end, exclusive (RFC 3339 or date)"
    )
    create.add_argument(
        "--client-key",
        action="append",
        default=[],
        type=Path,
        metavar="F.pub",
        help="public key of one of the customer's devices (repeatable)",
    )
    create.add_argument(
        "--out", required=True, type=Path, metavar="ENT.yaml", help="where to write it"
    )
    create.add_argument("--force", action="store_true", help="overwrite an existing file")
    add_json_flag(create)
    set_handler(create, _create)

    check = actions.add_parser("check", help="parse an entitlement and show it")
    check.add_argument(
        "entitlement", metavar="FILE", type=Path, help="YAML, or the signed envelope"
    )
    add_json_flag(check)
    set_handler(check, _check)

    sign = actions.add_parser("sign", help="sign a YAML entitlement into an envelope to submit")
    sign.add_argument("entitlement", metavar="ENT.yaml", type=Path, help="the entitlement (YAML)")
    sign.add_argument(
        "--key", required=True, action="append", type=Path, help="a vendor .key (repeatable)"
    )
    sign.add_argument(
        "--trust-root",
        type=Path,
        metavar="trust-root.json",
        help="refuse keys that are not this trust root's vendor keys",
    )
    sign.add_argument(
        "--out", required=True, type=Path, metavar="ENT.json", help="the signed envelope"
    )
    add_json_flag(sign)
    set_handler(sign, _sign)


def _create(args: argparse.Namespace) -> int:
    from clearance.keys import load_verifier
    from clearance.policy import Entitlement

    if args.out.exists() and not args.force:
        raise BadInput(f"{args.out}: already exists (give --force to overwrite)")
    keys = [load_verifier(p).to_string() for p in args.client_key]
    text = ENTITLEMENT_TEMPLATE.format(
        customer=json.dumps(args.customer),
        jurisdiction=json.dumps(args.jurisdiction),
        product=json.dumps(args.product),
        start=json.dumps(args.start),
        end=json.dumps(args.end),
        client_keys=json.dumps(keys),
    )
    import yaml

    Entitlement.from_dict(yaml.safe_load(text))  # refuse what would not load back
    write_output(args.out, text.encode(), "entitlement")
    emit(args, {"out": str(args.out)}, f"wrote {args.out}")
    return EXIT_OK


def _text(ent: object, signed: bool) -> str:
    from clearance.policy import Entitlement
    from clearance.policy._time import format_time

    assert isinstance(ent, Entitlement)
    return (
        f"{ent.customer} ({ent.jurisdiction}): {ent.product} from {format_time(ent.start)} "
        f"to {format_time(ent.end)}, {len(ent.client_keys)} client key(s)\n"
        + ("ok: signed envelope" if signed else "ok: valid, not signed yet")
    )


def _check(args: argparse.Namespace) -> int:
    ent, envelope = load_entitlement_file(args.entitlement)
    emit(
        args,
        {"ok": True, "signed": envelope is not None, "entitlement": ent.to_dict()},
        _text(ent, envelope is not None),
    )
    return EXIT_OK


def _sign(args: argparse.Namespace) -> int:
    from clearance.attest import Statement, Subject
    from clearance.keys import load_signer

    ent, envelope = load_entitlement_file(args.entitlement)
    if envelope is not None:
        raise BadInput(f"{args.entitlement}: already a signed envelope; sign the YAML file")
    check_output_dir(args.out, "signed entitlement")
    signers = [load_signer(p) for p in args.key]
    check_signing_keys(signers, args.trust_root, "vendors")
    body = ent.to_dict()
    subject = Subject(ent.customer, subject_digest(body))
    signed = Statement((subject,), ENTITLEMENT_TYPE, body).sign(signers)
    write_output(args.out, signed.to_bytes(), "signed entitlement")
    emit(
        args,
        {"out": str(args.out), "sha256": signed.sha256},
        f"wrote {args.out}: entitlement of {ent.customer} to {ent.product}; submit it with "
        "`clearance submit ENT.json --server URL` (vendor token)",
    )
    return EXIT_OK
