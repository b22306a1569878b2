"""``clearance code``: the code inspections on their own, for vendors and auditors.

``clearance code rebuild`` rebuilds one binary hermetically from its source
with its recipe (exit 0 when bit-for-bit identical, 1 when not), so a vendor
can check before submitting and an auditor can re-run the check.
``clearance code endpoints`` lists the endpoints in binaries and source and
exits 1 when one is not declared.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path
from typing import Any

from clearance.cli._common import (
    EXIT_OK,
    EXIT_REFUSED,
    SubParsers,
    add_actions,
    add_json_flag,
    emit,
    read_bytes,
    read_json,
    set_handler,
    stderr,
)
from clearance.errors import BadInput
from clearance.inspection.base import Artifact, InspectionInput
from clearance.inspection.code import EndpointInspector, ReproducibilityInspector
from clearance.inspection.findings import Finding


class _Quiet:
    def start(self, description: str, total: float | None) -> None:
        stderr(f"{description}...")

    def advance(self, amount: float = 1.0) -> None:
        pass


def register(sub: SubParsers) -> None:
    code_sub = add_actions(
        sub, "code", help="rebuild binaries and list endpoints (code inspection)"
    )

    rb = code_sub.add_parser(
        "rebuild", help="rebuild BINARY from --source with its recipe; exit 1 if it differs"
    )
    rb.add_argument("binary", metavar="BINARY", type=Path, help="the binary to check")
    rb.add_argument("--source", required=True, type=Path, help="the source artifact (tar/zip)")
    rb.add_argument(
        "--recipe",
        required=True,
        type=Path,
        help='recipes JSON: {binary name: {"source", "command", "env", "output"}} or one recipe',
    )
    rb.add_argument("--name", help="the binary's artifact name (default: the file name)")
    rb.add_argument("--no-diffoscope", action="store_true", help="section comparison only")
    add_json_flag(rb)
    set_handler(rb, _rebuild)

    ep = code_sub.add_parser(
        "endpoints", help="list endpoints in binaries/sources; exit 1 if one is undeclared"
    )
    ep.add_argument(
        "--binary",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a binary to scan (repeatable)",
    )
    ep.add_argument(
        "--source",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a source archive (tar/zip) to scan (repeatable)",
    )
    ep.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="HOST",
        help="a declared endpoint (repeatable)",
    )
    add_json_flag(ep)
    set_handler(ep, _endpoints)


def _artifact(path: Path, kind: str, name: str | None = None) -> Artifact:
    data = read_bytes(path, f"{kind} artifact")
    return Artifact(name or path.name, kind, hashlib.sha256(data).hexdigest(), len(data), path)


def _finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "rule_id": finding.rule_id,
        "severity": finding.severity.label,
        "message": finding.message,
        "evidence": dict(finding.evidence),
    }


def _rebuild(args: argparse.Namespace) -> int:
    name = args.name or args.binary.name
    raw = read_json(args.recipe, "build recipe")
    if not isinstance(raw, dict):
        raise BadInput(f"{args.recipe}: build recipe must be a JSON object")
    recipe = raw if "source" in raw else raw.get(name)
    if not isinstance(recipe, dict):
        raise BadInput(f"{args.recipe}: no build recipe for {name!r}")
    source_name = recipe.get("source")
    if not isinstance(source_name, str):
        raise BadInput(f"{args.recipe}: the recipe for {name!r} names no source")
    binary = _artifact(args.binary, "binary", name)
    source = _artifact(args.source, "source", source_name)
    with tempfile.TemporaryDirectory(prefix="clearance-rebuild-") as tmp:
        inp = InspectionInput(
            product="",
            version="",
            artifacts=(binary, source),
            build_recipes={name: recipe},
            work_dir=Path(tmp),
        )
        result = ReproducibilityInspector(use_diffoscope=not args.no_diffoscope).inspect(
            inp, _Quiet()
        )
    if not result.findings:
        emit(
            args,
            {"binary": name, "reproducible": True, "sha256": binary.sha256},
            f"{name}: reproducible (sha256 {binary.sha256})",
        )
        return EXIT_OK
    [finding] = result.findings
    emit(
        args,
        {"binary": name, "reproducible": False, "finding": _finding_dict(finding)},
        "",
        ok=False,
    )
    stderr(finding.message)
    blocks = result.report["sections"][0]["code"]
    if blocks and not args.json:
        stderr(blocks[0]["text"])
    return EXIT_REFUSED


def _endpoints(args: argparse.Namespace) -> int:
    if not args.binary and not args.source:
        raise BadInput("give at least one --binary or --source")
    artifacts = tuple(_artifact(p, "binary") for p in args.binary) + tuple(
        _artifact(p, "source") for p in args.source
    )
    with tempfile.TemporaryDirectory(prefix="clearance-endpoints-") as tmp:
        inp = InspectionInput(
            product="",
            version="",
            artifacts=artifacts,
            declared_endpoints=tuple(args.endpoint),
            work_dir=Path(tmp),
        )
        result = EndpointInspector().inspect(inp, _Quiet())
    rows = result.report["sections"][0]["tables"][0]["rows"]
    text = "\n".join("\t".join(row) for row in rows) or "no endpoints found"
    emit(
        args,
        {
            "endpoints": [
                dict(zip(["host", "kind", "status", "where"], r, strict=True)) for r in rows
            ],
            "findings": [_finding_dict(f) for f in result.findings],
        },
        text,
        ok=not result.findings,
    )
    for finding in result.findings:
        stderr(finding.message)
    return EXIT_REFUSED if result.findings else EXIT_OK
