"""``clearance entitlement``: a vendor's private, logged entitlement, and opening it.

- ``entitlement create (--from ENTITLEMENT.yaml | --customer C --jurisdiction J
  --product P --start T --end T [--device-key D.pub]...) --key vendor.key
  --out ENTITLEMENT.json --opening OPENING.json``:
  the vendor-signed statement logs only a salted commitment (``ENTITLEMENT.json``, to
  submit); ``OPENING.json`` (salt + entitlement, mode 0600) goes privately to the
  customer, the gateway and, on request, the regulator.
- ``entitlement open ENTITLEMENT.json --opening OPENING.json``: check that the opening
  opens the logged commitment and print the entitlement (exit 1 if it does not).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clearance.attest import statement_of
from clearance.cli._common import (
    EXIT_OK,
    SubParsers,
    add_actions,
    add_json_flag,
    emit,
    read_json,
    set_handler,
)
from clearance.cli._files import write_output
from clearance.cli.release import load_envelope
from clearance.errors import BadInput
from clearance.keys import load_signer, load_verifier
from clearance.policy import ENTITLEMENT_PREDICATE_TYPE, Entitlement
from clearance.policy._time import parse_time
from clearance.policy.commitment import (
    EntitlementOpening,
    new_opening,
    open_commitment,
    sign_entitlement,
)


def register(sub: SubParsers) -> None:
    actions = add_actions(sub, "entitlement", help="private (committed) customer entitlements")
    create = actions.add_parser("create", help="sign a committed entitlement and its opening")
    create.add_argument(
        "--from",
        dest="source",
        type=Path,
        metavar="ENTITLEMENT.yaml",
        help="the entitlement as a readable YAML file (customer, jurisdiction, product, start, "
        "end, client_keys; see `entitlement check`), instead of the options below",
    )
    create.add_argument("--customer", help="the customer (never logged in clear)")
    create.add_argument("--jurisdiction", help="the customer's jurisdiction (US)")
    create.add_argument("--product", help="the product sold")
    create.add_argument("--start", metavar="RFC3339", help="first instant covered")
    create.add_argument("--end", metavar="RFC3339", help="first instant not covered")
    create.add_argument(
        "--device-key",
        action="append",
        type=Path,
        default=[],
        metavar="DEVICE.pub",
        help="a device key of the customer (signs its requests and health reports)",
    )
    create.add_argument("--key", required=True, action="append", type=Path, help="vendor .key")
    create.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="ENTITLEMENT.json",
        help="the signed commitment (to submit)",
    )
    create.add_argument(
        "--opening",
        required=True,
        type=Path,
        metavar="OPENING.json",
        help="the private opening (salt and entitlement), written mode 0600",
    )
    add_json_flag(create)
    set_handler(create, _create)

    opener = actions.add_parser("open", help="check an opening against a logged commitment")
    opener.add_argument(
        "entitlement", metavar="ENTITLEMENT.json", type=Path, help="the logged commitment"
    )
    opener.add_argument(
        "--opening", required=True, type=Path, metavar="OPENING.json", help="its opening"
    )
    add_json_flag(opener)
    set_handler(opener, _open)

    check = actions.add_parser(
        "check", help="parse an entitlement written in YAML (or its opening) and show it"
    )
    check.add_argument(
        "entitlement", metavar="FILE", type=Path, help="YAML, or the private OPENING.json"
    )
    add_json_flag(check)
    set_handler(check, _check)


def _check(args: argparse.Namespace) -> int:
    """The fields ``policy explain --entitlement`` will use, or the file and field at fault."""
    from clearance.cli.policy import load_entitlement_file
    from clearance.policy._time import format_time

    entitlement, _ = load_entitlement_file(args.entitlement)
    emit(
        args,
        {"entitlement": entitlement.to_dict()},
        f"{entitlement.customer} ({entitlement.jurisdiction}): {entitlement.product} from "
        f"{format_time(entitlement.start)} to {format_time(entitlement.end)}, "
        f"{len(entitlement.client_keys)} device key(s)",
    )
    return EXIT_OK


def _create(args: argparse.Namespace) -> int:
    fields = ("customer", "jurisdiction", "product", "start", "end")
    if args.source is not None:
        given = [f"--{f}" for f in fields if getattr(args, f) is not None]
        if given or args.device_key:
            raise BadInput(f"--from {args.source} already says it all; drop {', '.join(given)}")
        from clearance.cli.policy import load_entitlement_file

        entitlement, _ = load_entitlement_file(args.source)
    else:
        missing = [f"--{f}" for f in fields if getattr(args, f) is None]
        if missing:
            raise BadInput(f"entitlement create needs --from FILE.yaml or {', '.join(missing)}")
        entitlement = Entitlement(
            args.customer,
            args.jurisdiction,
            args.product,
            parse_time(args.start, "--start"),
            parse_time(args.end, "--end"),
            tuple(load_verifier(p).to_string() for p in args.device_key),
        )
    opening = new_opening(entitlement)
    envelope = sign_entitlement(opening, [load_signer(p) for p in args.key])
    write_output(args.out, envelope.to_bytes(), "entitlement")
    write_output(args.opening, opening.to_bytes(), "entitlement opening")
    args.opening.chmod(0o600)
    emit(
        args,
        {"out": str(args.out), "opening": str(args.opening), "commitment": opening.commitment},
        f"wrote {args.out} (commitment {opening.commitment[:16]}…, nothing in clear) and "
        f"{args.opening} (keep private: customer, gateway, regulator)",
    )
    return EXIT_OK


def _open(args: argparse.Namespace) -> int:
    envelope = load_envelope(args.entitlement, "entitlement")
    statement = statement_of(envelope, ENTITLEMENT_PREDICATE_TYPE)
    opening = EntitlementOpening.from_dict(read_json(args.opening, "entitlement opening"))
    entitlement = open_commitment(statement.predicate, opening)
    emit(
        args,
        {"commitment": opening.commitment, "entitlement": entitlement.to_dict()},
        f"opens commitment {opening.commitment[:16]}…: {entitlement.customer} "
        f"({entitlement.jurisdiction}) {entitlement.product} "
        f"{entitlement.start:%Y-%m-%d} to {entitlement.end:%Y-%m-%d}",
    )
    return EXIT_OK
