"""Helpers shared by the code inspectors: pairing with the previous release, unpacking, report."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from clearance.inspection.archive import ArchiveError, single_top_directory, unpack_tree
from clearance.inspection.base import Artifact, InspectionInput
from clearance.inspection.code.errors import UnsafeArchiveError


def previous_for(artifact: Artifact, previous: tuple[Artifact, ...]) -> Artifact | None:
    """The previous release's counterpart: same name, else the only one of that kind."""
    same_kind = [p for p in previous if p.kind == artifact.kind]
    for candidate in same_kind:
        if candidate.name == artifact.name:
            return candidate
    return same_kind[0] if len(same_kind) == 1 else None


def scratch_dir(inp: InspectionInput, label: str) -> Path:
    base = inp.work_dir if str(inp.work_dir) not in ("", ".") else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"code-{label}-", dir=base))


def unpack(archive: Path, dest: Path, *, label: str | None = None) -> Path:
    """A source artifact unpacked by the one safe unpacker (:mod:`clearance.inspection.archive`);
    its refusals are :class:`UnsafeArchiveError` here."""
    try:
        return unpack_tree(archive, dest, label=label)
    except ArchiveError as exc:
        raise UnsafeArchiveError(str(exc)) from None


def unpack_source(artifact: Artifact, scratch: Path, role: str) -> Path:
    """Unpack a source artifact below ``scratch`` and return its real root directory."""
    dest = scratch / role / artifact.sha256[:16]
    if dest.is_dir():
        return single_top_directory(dest)
    unpack(artifact.path, dest, label=artifact.name)
    return single_top_directory(dest)


def section(
    title: str,
    paragraphs: list[str],
    tables: list[dict[str, Any]] | None = None,
    code: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One report section in the shape the HTML report renders."""
    return {"title": title, "paragraphs": paragraphs, "tables": tables or [], "code": code or []}


def table(caption: str, columns: list[str], rows: list[list[str]]) -> dict[str, Any]:
    return {"caption": caption, "columns": columns, "rows": rows}
