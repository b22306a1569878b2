"""Fuzz targets: one per parser of untrusted input (issue 12).

Each target takes arbitrary bytes and feeds them to one parser (and, where
the parser's output is then checked, to that check too).  The contract
under test: any input is either accepted or refused with a
:class:`~clearance.errors.ClearanceError` -- never another exception, never a
hang.  :func:`run_one` is what atheris and the pytest replay both call.

The world the targets check against (keys, a log, a trust root, a witness)
is built once per process from fixed seeds, so the committed seed corpora
(``tests/fuzz/corpus/<target>/``) stay valid inputs.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from clearance._untrusted import load_json
from clearance.attest import Envelope, Release, Role, Statement, TrustRoot, Verdict, statement_of
from clearance.attest.trust_root import accept_rotation
from clearance.audit.entries import examine_entry
from clearance.cli.verdict import summarize_sarif
from clearance.client import BundleVerifier
from clearance.client.state import STATE_FILE, ClientState
from clearance.errors import ClearanceError
from clearance.gateway._entries import parse_entry
from clearance.gateway.service import Gateway
from clearance.inspection import policy as verdict_policy
from clearance.inspection.archive import ArchiveLimits, unpack_archive
from clearance.keys import Note, Signer, verify_note
from clearance.log.checkpoint import open_checkpoint
from clearance.log.store import TransparencyLog
from clearance.log.tiles import (
    DirectoryTileSource,
    TiledLogClient,
    decode_bundle,
    parse_tile_path,
)
from clearance.policy import DistributionPolicy, Entitlement
from clearance.witness import AddCheckpointRequest, LogConfig, Witness, WitnessState
from clearance.witness.protocol import parse_cosignatures, parse_size

ORIGIN = "fuzz.example/log"
#: The content artifact of the seed release (its digest is what the bundle target asks for).
RULES = b'rule r { strings: $a = "marker" condition: $a }\n'
NOW = 1_800_000_000.0


def signer(name: str) -> Signer:
    """A key derived from its name: the same in every process, so seeds stay valid."""
    return Signer.from_seed(name, hashlib.sha256(b"clearance-fuzz/" + name.encode()).digest())


@dataclass(frozen=True)
class World:
    root: Path
    log_key: Signer
    trust_root: TrustRoot
    logdir: Path
    witness: Witness


@cache
def world() -> World:
    root = Path(tempfile.mkdtemp(prefix="clearance-fuzz-"))
    atexit.register(shutil.rmtree, root, True)
    log_key = signer(ORIGIN)
    logdir = root / "log"
    with TransparencyLog.create(logdir, ORIGIN, log_key) as log:
        log.append([b"entry %d" % i for i in range(300)])
    trust = TrustRoot(
        log_origin=ORIGIN,
        log_key=log_key.verifier,
        vendors=Role((signer("vendor").verifier,), 1),
        inspectors=Role((signer("inspector-a").verifier, signer("inspector-b").verifier), 2),
        witnesses=Role((signer("witness-a").verifier,), 1),
        policy=Role((signer("regulator").verifier,), 1),
        max_checkpoint_age=10 * 365 * 86400,
    )
    state = WitnessState.open(root / "witness")
    witness = Witness(
        signer("witness.example"), [LogConfig(ORIGIN, (log_key.verifier,))], state, lambda: NOW
    )
    return World(root, log_key, trust, logdir, witness)


def _each(*calls: Callable[[], object]) -> None:
    """Run every call; a ClearanceError from one is a refusal and does not skip the next."""
    for call in calls:
        with contextlib.suppress(ClearanceError):
            call()


def _json(data: bytes) -> None:
    load_json(data, "fuzz input")


def _note(data: bytes) -> None:
    verify_note(Note.from_bytes(data), [world().log_key.verifier])


def _checkpoint(data: bytes) -> None:
    open_checkpoint(data, world().log_key.verifier, ORIGIN)


def _witness_response(data: bytes) -> None:
    _each(lambda: parse_cosignatures(data), lambda: parse_size(data))


class _OneTileSource:
    """The real log's files, except the one path the input's first byte picks."""

    def __init__(self, public: Path, data: bytes) -> None:
        self._files = DirectoryTileSource(public)
        paths = sorted(p.relative_to(public).as_posix() for p in public.rglob("*") if p.is_file())
        self._victim = paths[data[0] % len(paths)] if data else ""
        self._data = data[1:]

    def read(self, path: str) -> bytes:
        return self._data if path == self._victim else self._files.read(path)


def _tiles(data: bytes) -> None:
    _each(
        lambda: decode_bundle(data),
        lambda: decode_bundle(data[1:], data[0] if data else 0),
        lambda: parse_tile_path(data.decode("utf-8", "replace")),
    )
    w = world()
    client = TiledLogClient(_OneTileSource(w.logdir / "public", data), w.log_key.verifier, ORIGIN)
    checkpoint, _ = client.checkpoint()
    size = checkpoint.size
    for entry in client.entries(max(0, size - 3), size, size):
        assert entry.startswith(b"entry "), entry
    client.inclusion_proof(size // 2, size)
    client.consistency_proof(max(1, size // 3), size)


def _dsse(data: bytes) -> None:
    envelope = Envelope.from_bytes(data)
    _each(
        lambda: statement_of(envelope),
        lambda: envelope.verify(world().trust_root.vendors.keys, 1),
    )


def _statement(data: bytes) -> None:
    statement = Statement.from_bytes(data)
    _each(lambda: Release.from_statement(statement), lambda: Verdict.from_statement(statement))


def _bundle(data: bytes) -> None:
    digest = hashlib.sha256(RULES).hexdigest()
    BundleVerifier(world().trust_root, lambda: NOW).verify(digest, data)


def _trust_root(data: bytes) -> None:
    _each(
        lambda: TrustRoot.from_bytes(data),
        lambda: accept_rotation(world().trust_root, Envelope.from_bytes(data)),
    )


def _policy(data: bytes) -> None:
    value = load_json(data, "policy")
    _each(lambda: DistributionPolicy.from_dict(value), lambda: Entitlement.from_dict(value))


def _verdict_policy(data: bytes) -> None:
    verdict_policy.VerdictPolicy.from_yaml(data.decode("utf-8", "replace"), "fuzz.yaml")


def _archive(data: bytes) -> None:
    work = Path(tempfile.mkdtemp(prefix="fuzz-archive-", dir=world().root))
    try:
        suffix = (".zip", ".tar", ".tar.gz", ".bin")[data[0] % 4] if data else ".zip"
        archive = work / f"input{suffix}"
        archive.write_bytes(data[1:])
        limits = ArchiveLimits(max_total_bytes=4 << 20, max_files=200, max_nesting=2)
        unpack_archive(archive, work / "out", limits)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _witness_request(data: bytes) -> None:
    _each(
        lambda: AddCheckpointRequest.from_bytes(data), lambda: world().witness.add_checkpoint(data)
    )


def _client_state(data: bytes) -> None:
    directory = world().root / "client-state"
    directory.mkdir(exist_ok=True)
    (directory / STATE_FILE).write_bytes(data)
    ClientState.load(directory)


def _http_body(data: bytes) -> None:
    """What the gateway does first with a submission body (and the auditor with an entry)."""
    _each(lambda: parse_entry(data), lambda: examine_entry(7, data, world().trust_root))


@cache
def gateway() -> Gateway:
    """A real gateway (its log, index and trust root on disk), built on first use."""
    from clearance.demo.world import build_world

    world_dir = build_world(world().root / "gateway", embedded_inspector=False)
    return Gateway.open(world_dir.data_dir)


_ROLES = (None, "vendor", "inspector", "policy", "client", "operator")


def _gateway_submit(data: bytes) -> None:
    """A submission body as ``POST /api/v1/submissions`` hands it to the gateway."""
    role = _ROLES[data[0] % len(_ROLES)] if data else None
    gateway().submit(data[1:], role)


def _sarif(data: bytes) -> None:
    summarize_sarif(data, "fuzz.sarif")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "json": _json,
    "note": _note,
    "checkpoint": _checkpoint,
    "witness-response": _witness_response,
    "tiles": _tiles,
    "dsse": _dsse,
    "statement": _statement,
    "bundle": _bundle,
    "trust-root": _trust_root,
    "policy": _policy,
    "verdict-policy": _verdict_policy,
    "archive": _archive,
    "witness-request": _witness_request,
    "client-state": _client_state,
    "http-body": _http_body,
    "gateway-submit": _gateway_submit,
    "sarif": _sarif,
}


def run_one(name: str, data: bytes) -> None:
    """Feed ``data`` to target ``name``: a ClearanceError is a refusal, anything else a bug."""
    with contextlib.suppress(ClearanceError):
        TARGETS[name](data)
