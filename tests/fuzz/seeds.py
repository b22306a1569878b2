"""Write the seed corpora under ``tests/fuzz/corpus/<target>/`` (run once; the files are
committed): valid inputs built with the targets' fixed keys, so fuzzing starts from
the accepted shapes and mutates from there.

    PYTHONPATH=src:tests python -m fuzz.seeds
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

from clearance.attest import Artifact, create_policy, create_release, create_verdict
from clearance.attest.trust_root import rotation_envelope
from clearance.gateway.bundles import build_bundle
from clearance.keys import cosign
from clearance.log.store import TransparencyLog
from clearance.witness import AddCheckpointRequest
from fuzz.targets import NOW, ORIGIN, RULES, signer, world

CORPUS = Path(__file__).resolve().parent / "corpus"


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data)  # fixed time
    return out.getvalue()


def _tar(members: dict[str, bytes], compress: bool = False) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return gzip.compress(out.getvalue(), mtime=0) if compress else out.getvalue()


def seeds() -> dict[str, list[bytes]]:
    w = world()
    rules = RULES
    art_path = w.root / "rules.yar"
    art_path.write_bytes(rules)
    release = create_release(
        product="av",
        version="1.0.0",
        channel="stable",
        artifacts=[Artifact.from_file(art_path, "content")],
        signers=signer("vendor"),
    )
    verdicts = [
        create_verdict(release, "approved", signers=signer(f"inspector-{x}"),
                       inspected_at="2026-11-22T03:00:00Z")
        for x in "ab"
    ]  # fmt: skip
    policy_body = {"name": "default", "rules": []}
    policy = create_policy(policy_body, signer("regulator"))
    bundle_dir = w.root / "bundle-log"
    with TransparencyLog.create(bundle_dir, ORIGIN, w.log_key) as log:
        indices = [
            r.index for r in log.append([release.to_bytes(), *(v.to_bytes() for v in verdicts)])
        ]
        note = log.checkpoint()
        cosigned = note.with_signatures([cosign(note.text, signer("witness-a"), int(NOW))])
        bundle = build_bundle(log, cosigned, indices[0], indices[1:])
        checkpoint = note.to_bytes()
    with TransparencyLog.open(w.logdir) as log:
        own = log.checkpoint().to_bytes()
        size = log.size
        request = AddCheckpointRequest(0, (), own).to_bytes()
        proof = tuple(log.consistency_proof(size // 2, size))
    statement = base64.b64decode(json.loads(release.to_bytes())["payload"])
    sarif = {
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "t", "version": "1"}},
                  "results": [{"ruleId": "x.y", "level": "error"}]}],
    }  # fmt: skip
    tile_files = sorted(p for p in (w.logdir / "public").rglob("*") if p.is_file())
    return {
        "json": [b'{"a":[1,2.5,"x",null,true,{"b":false}]}', b"[]", b'"\\u00e9"'],
        "note": [checkpoint, cosigned.to_bytes()],
        "checkpoint": [checkpoint, own],
        "witness-response": [b"4\n", cosign(note.text, signer("w"), 1).to_line().encode()],
        "tiles": [bytes([i]) + p.read_bytes() for i, p in enumerate(tile_files[:6])],
        "dsse": [release.to_bytes(), verdicts[0].to_bytes(), policy.to_bytes()],
        "statement": [statement, base64.b64decode(json.loads(verdicts[0].to_bytes())["payload"])],
        "bundle": [bundle.to_bytes()],
        "trust-root": [w.trust_root.to_bytes(), rotation_envelope(w.trust_root).to_bytes()],
        "policy": [json.dumps(policy_body).encode()],
        "verdict-policy": [
            b"default: approved\nrules:\n  - name: crit\n    when: {rule_id: 'content.*', "
            b"severity_at_least: high, min_count: 2}\n    decision: rejected\n"
        ],
        "archive": [
            b"\0" + _zip({"a/rules.yar": rules, "b.txt": b"x"}),
            b"\1" + _tar({"rules.yar": rules}),
            b"\2" + _tar({"d/rules.yar": rules, "inner.zip": _zip({"i.yar": rules})}, True),
        ],
        "witness-request": [
            request,
            AddCheckpointRequest(size // 2, proof, own).to_bytes(),
        ],
        "client-state": [json.dumps({"installed": {}, "checkpoints": {}}).encode()],
        "http-body": [release.to_bytes(), policy.to_bytes()],
        "gateway-submit": [b"\1" + release.to_bytes(), b"\2" + verdicts[0].to_bytes()],
        "sarif": [json.dumps(sarif).encode()],
    }


def main() -> None:
    for name, inputs in seeds().items():
        directory = CORPUS / name
        directory.mkdir(parents=True, exist_ok=True)
        for data in inputs:
            (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)
        print(f"{name}: {len(inputs)} seeds")


if __name__ == "__main__":
    main()
