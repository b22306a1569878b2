"""Build the worked example's release artifacts: source tarball, binary, recipe, endpoints.

    python examples/agent/build.py OUTDIR

writes ``OUTDIR/v1`` and ``OUTDIR/v2``, each holding ``agent`` (the binary,
built with ``make`` the way the recipe says), ``agent-src.tar.gz`` (the
disclosed source, a deterministic tarball), ``recipes.json`` (the build
recipe for the release predicate) and ``endpoints.txt`` (what the release
declares).  Version 2 quietly uploads the user's documents to
``docs-sync.example.net``, which is not declared: inspecting it against
version 1 must reject it.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DECLARED_ENDPOINTS = ("updates.example.com",)
SOURCE_NAME = "agent-src.tar.gz"
BINARY_NAME = "agent"
RECIPE = {"source": SOURCE_NAME, "command": ["make", "agent"], "env": {}, "output": "agent"}
EPOCH = 315532800


def deterministic_tarball(tree: Path, top: str, out: Path) -> None:
    """A .tar.gz whose bytes depend only on the files' names and contents."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(f"{top}/{path.relative_to(tree).as_posix()}")
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    with out.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(buffer.getvalue())


def build_version(version: str, out: Path) -> Path:
    """Build one version into ``out/<version>`` and return that directory."""
    src = HERE / version
    dest = out / version
    dest.mkdir(parents=True, exist_ok=True)
    deterministic_tarball(src, f"agent-{version}", dest / SOURCE_NAME)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "src"
        shutil.copytree(src, work)
        subprocess.run(RECIPE["command"], cwd=work, check=True, capture_output=True)
        shutil.copyfile(work / "agent", dest / BINARY_NAME)
    (dest / BINARY_NAME).chmod(0o755)
    (dest / "recipes.json").write_text(json.dumps({BINARY_NAME: RECIPE}, indent=2) + "\n")
    (dest / "endpoints.txt").write_text("\n".join(DECLARED_ENDPOINTS) + "\n")
    return dest


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: build.py OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    for version in ("v1", "v2"):
        print(build_version(version, out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
