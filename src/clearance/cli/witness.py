"""``clearance witness``: run a C2SP tlog-witness, collect cosignatures for a log, export evidence.

- ``witness serve --key witness.key --state DIR --log-key log.pub [--origin ORIGIN]... [--port 8001]``
  (several logs: ``--log-key`` per log, or ``--log ORIGIN=KEYFILE`` binding each origin to its key)
- ``witness collect LOGDIR --witness NAME=URL=KEYFILE... [--threshold K]``: ask the witnesses to
  cosign the log's current checkpoint and publish the cosignatures with it.
- ``witness conflicts --state DIR``: the latest cosigned checkpoints and every conflicting
  checkpoint kept as evidence of log misbehaviour.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clearance.cli._common import (
    EXIT_OK,
    EXIT_REFUSED,
    SubParsers,
    add_actions,
    add_json_flag,
    add_witness_option,
    emit,
    set_handler,
    stderr,
)
from clearance.cli._common import parse_witness_spec as parse_common_spec
from clearance.errors import BadInput, Unreachable
from clearance.keys import load_signer, load_verifier
from clearance.witness import (
    LogConfig,
    ThresholdNotMet,
    Witness,
    WitnessConfig,
    WitnessConfigError,
    WitnessState,
    collect_cosignatures,
)
from clearance.witness.collector import FAILURE_UNREACHABLE


class WitnessesUnreachableError(ThresholdNotMet, Unreachable):
    """The threshold was missed only because witnesses could not be reached (exit 3)."""


def register(sub: SubParsers) -> None:
    actions = add_actions(sub, "witness", help="run a witness, or collect cosignatures for a log")

    serve = actions.add_parser("serve", help="serve POST /add-checkpoint (C2SP tlog-witness)")
    serve.add_argument("--key", required=True, type=Path, help="the witness's private key")
    serve.add_argument("--state", required=True, type=Path, help="state directory (SQLite)")
    serve.add_argument(
        "--log-key",
        action="append",
        default=[],
        type=Path,
        help="a log's public key (repeatable; each key signs only the origin of its name)",
    )
    serve.add_argument(
        "--origin",
        action="append",
        default=[],
        help="origin line to accept for the single --log-key (repeatable; default: its name)",
    )
    serve.add_argument(
        "--log",
        action="append",
        default=[],
        metavar="ORIGIN=KEYFILE",
        help="a log: its origin line and the one public key bound to it (repeatable)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8001, help="port to listen on")
    set_handler(serve, _serve)

    collect = actions.add_parser(
        "collect", help="collect cosignatures on a log's checkpoint and publish them"
    )
    collect.add_argument("logdir", type=Path, metavar="LOGDIR", help="the log directory")
    add_witness_option(collect, required=True)
    collect.add_argument(
        "--threshold",
        type=int,
        default=None,
        metavar="K",
        help="cosignatures needed before publishing (default: all witnesses)",
    )
    collect.add_argument("--timeout", type=float, default=10.0, help="seconds per witness")
    add_json_flag(collect)
    set_handler(collect, _collect)

    conflicts = actions.add_parser("conflicts", help="export the witness's evidence of forks")
    conflicts.add_argument(
        "--state", required=True, type=Path, metavar="DIR", help="the witness's state directory"
    )
    add_json_flag(conflicts)
    set_handler(conflicts, _conflicts)


def log_bindings(log_keys: list[Path], origins: list[str], logs: list[str]) -> list[LogConfig]:
    """Origin-to-key bindings, one key per log: a key never vouches for another log's origin.

    ``--origin`` names origins of the one ``--log-key``; with several logs each is
    either ``--log-key`` (origin = the key's name) or ``--log ORIGIN=KEYFILE``.
    """
    if origins and len(log_keys) != 1:
        raise WitnessConfigError(
            "--origin binds origins to a single --log-key; with several logs give "
            "--log ORIGIN=KEYFILE for each"
        )
    bound: list[LogConfig] = []
    for path in log_keys:
        verifier = load_verifier(path)
        bound += [LogConfig(o, (verifier,)) for o in dict.fromkeys(origins or [verifier.name])]
    for spec in logs:
        origin, sep, keyfile = spec.rpartition("=")
        if not sep or not origin or not keyfile:
            raise WitnessConfigError(f"--log {spec!r}: expected ORIGIN=KEYFILE")
        bound.append(LogConfig(origin, (load_verifier(keyfile),)))
    if not bound:
        raise WitnessConfigError("give at least one --log-key or --log")
    if len({log.origin for log in bound}) != len(bound):
        raise WitnessConfigError("the same origin is bound to a log twice; give --log")
    return bound


def build_witness(
    key: Path,
    state_dir: Path,
    log_keys: list[Path],
    origins: list[str],
    logs: list[str] | None = None,
) -> Witness:
    signer = load_signer(key)
    bound = log_bindings(log_keys, origins, logs or [])
    return Witness(signer, bound, WitnessState.open(state_dir))


def _serve(args: argparse.Namespace) -> int:
    from clearance.witness.server import serve

    witness = build_witness(args.key, args.state, args.log_key, args.origin, args.log)
    stderr(
        f"witness {witness.name} ({witness.verifier.to_string()}) for "
        f"{', '.join(witness.origins)} on http://{args.host}:{args.port}/add-checkpoint"
    )
    serve(witness, args.host, args.port)
    return EXIT_OK


def parse_witness_spec(spec: str) -> WitnessConfig:
    """``NAME=URL=KEYFILE`` (the shared ``--witness`` form) as the collector's config."""
    try:
        parsed = parse_common_spec(spec)
    except BadInput as exc:
        if str(exc).startswith("--witness"):
            raise WitnessConfigError(str(exc)) from None
        raise
    return WitnessConfig(parsed.name, parsed.url, load_verifier(parsed.keyfile))


def _collect(args: argparse.Namespace) -> int:
    witnesses = [parse_witness_spec(s) for s in args.witness]
    from clearance.log.store import TransparencyLog

    threshold = len(witnesses) if args.threshold is None else args.threshold
    with TransparencyLog.open(args.logdir) as log:
        note = log.checkpoint()
        result = collect_cosignatures(
            note, witnesses, log.consistency_proof, threshold, timeout=args.timeout
        )
        for failure in result.failures:
            stderr(f"witness {failure.name} ({failure.url}): {failure.kind}: {failure.reason}")
        if not result.threshold_met:
            if result.failures and all(f.kind == FAILURE_UNREACHABLE for f in result.failures):
                raise WitnessesUnreachableError(
                    f"{len(result.cosigners)} of {len(witnesses)} witnesses cosigned and the "
                    f"others could not be reached; threshold is {threshold}; checkpoint not "
                    "republished"
                )
            raise ThresholdNotMet(
                f"{len(result.cosigners)} of {len(witnesses)} witnesses cosigned, "
                f"threshold is {threshold}; checkpoint not republished"
            )
        log.add_cosignatures(list(result.signatures), for_text=note.text)
    emit(
        args,
        result.to_dict(),
        f"published checkpoint cosigned by {len(result.cosigners)} of {len(witnesses)} "
        f"witnesses ({', '.join(result.cosigners) or 'none'})",
    )
    return EXIT_OK


def _conflicts(args: argparse.Namespace) -> int:
    if not (args.state / "witness.sqlite3").is_file():
        raise WitnessConfigError(f"{args.state}: no witness state here")
    with WitnessState.open(args.state) as state:
        latest = [c.to_dict() for c in state.all_latest()]
        conflicts = [c.to_dict() for c in state.conflicts()]
    lines = [f"{c['origin']}: cosigned size {c['size']}" for c in latest]
    lines += [f"CONFLICT {c['origin']} ({c['kind']}): {c['detail']}" for c in conflicts]
    emit(
        args,
        {"latest": latest, "conflicts": conflicts},
        "\n".join(lines) or "no state",
        ok=not conflicts,
    )
    return EXIT_REFUSED if conflicts else EXIT_OK
