"""Running the real content inspector on small rule sets written by the tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from clearance.inspection import NullProgress
from clearance.inspection.base import Artifact, InspectionInput
from clearance.inspection.content.inspector import ContentInspector
from clearance.inspection.findings import Finding


def artifact(path: Path, name: str | None = None) -> Artifact:
    data = path.read_bytes()
    return Artifact(name or path.name, "content", hashlib.sha256(data).hexdigest(), len(data), path)


def write(dir_: Path, files: dict[str, str | bytes]) -> list[Path]:
    dir_.mkdir(parents=True, exist_ok=True)
    out = []
    for name, content in files.items():
        path = dir_ / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        out.append(path)
    return out


def honest_corpus(dir_: Path) -> Path:
    """A few clean files: text, a small ELF-like header, Python source."""
    write(
        dir_,
        {
            "readme.txt": "This is an ordinary text file about gardening.\n" * 20,
            "tool.py": "import os\nimport sys\n\ndef main():\n    print(os.getcwd())\n",
            "data.bin": bytes(range(256)) * 64,
            "elf": b"\x7fELF\x02\x01\x01" + b"\x00" * 2000,
        },
    )
    return dir_


def inspect_rules(
    tmp: Path,
    rules: dict[str, str],
    previous: dict[str, str] | None = None,
    corpus: Path | None = None,
    inspector: ContentInspector | None = None,
) -> list[Finding]:
    paths = write(tmp / "current", dict(rules))
    prev_paths = write(tmp / "previous", dict(previous)) if previous is not None else []
    inp = InspectionInput(
        product="p",
        version="1",
        artifacts=tuple(artifact(p) for p in paths),
        previous_artifacts=tuple(artifact(p) for p in prev_paths),
        corpus=(corpus or honest_corpus(tmp / "corpus"),),
        work_dir=tmp / "work",
    )
    return list((inspector or ContentInspector()).inspect(inp, NullProgress()).findings)


def by_rule(findings: list[Finding], rule_id: str) -> dict[str, Finding]:
    return {
        (f.locations[0].logical_name or f.locations[0].uri): f
        for f in findings
        if f.rule_id == rule_id
    }
