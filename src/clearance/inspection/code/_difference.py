"""Explain where two builds of the same binary differ.

Debian's ``diffoscope`` when it is installed (it understands ELF, PE,
wheels, tarballs and much more); otherwise a section-level comparison with
lief for ELF/PE, a member-level one for zip files (wheels), and always the
first differing byte offset and the section it falls in.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lief

_DIFFOSCOPE_TIMEOUT = 300
_MAX_TEXT = 20_000
_DERIVED_SECTIONS = frozenset({".note.gnu.build-id", ".gnu_debuglink", ".symtab", ".strtab"})


@dataclass(frozen=True)
class Difference:
    """A readable account of how ``expected`` (the release's) and ``rebuilt`` differ."""

    tool: str
    summary: str
    details: tuple[str, ...]
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "summary": self.summary, "details": list(self.details)}


def _first_difference(a: bytes, b: bytes) -> int | None:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return None if len(a) == len(b) else min(len(a), len(b))


def _sections(path: Path) -> dict[str, tuple[int, int, str]] | None:
    """Section name -> (file offset, size, sha256 of content), or None when not ELF/PE."""
    if not (lief.is_elf(str(path)) or lief.is_pe(str(path))):
        return None
    binary: Any = lief.parse(str(path))
    if binary is None:
        return None
    out: dict[str, tuple[int, int, str]] = {}
    for section in binary.sections:
        name = str(section.name) or "(unnamed)"
        content = bytes(section.content)
        out[name] = (int(section.offset), int(section.size), hashlib.sha256(content).hexdigest())
    return out


def _section_at(sections: dict[str, tuple[int, int, str]], offset: int) -> str | None:
    for name, (start, size, _digest) in sections.items():
        if size and start <= offset < start + size:
            return name
    return None


def _zip_members(path: Path) -> dict[str, tuple[str, tuple[int, ...], int]] | None:
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as zf:
        return {
            info.filename: (_member_sha256(zf, info), tuple(info.date_time), info.external_attr)
            for info in zf.infolist()
        }


def _member_sha256(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """Hashed as it streams: a member that inflates hugely never sits in memory whole."""
    digest = hashlib.sha256()
    with zf.open(info) as member:
        while chunk := member.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def structural_difference(expected: Path, rebuilt: Path) -> Difference:
    """The comparison used when diffoscope is missing (and always for the summary)."""
    a, b = expected.read_bytes(), rebuilt.read_bytes()
    details: list[str] = [f"sizes: release {len(a)} bytes, rebuilt {len(b)} bytes"]
    first = _first_difference(a, b)
    sections_a = _sections(expected)
    sections_b = _sections(rebuilt)
    summary = "the files are identical"
    if first is not None:
        where = ""
        if sections_a is not None:
            section = _section_at(sections_a, first)
            where = f" (in section {section})" if section else " (outside any section)"
        summary = f"first difference at byte offset {first:#x}{where}"
        details.append(summary)
    differing: list[str] = []
    if sections_a is not None and sections_b is not None:
        for name in sorted(set(sections_a) | set(sections_b)):
            if sections_a.get(name, ("", "", ""))[2] != sections_b.get(name, ("", "", ""))[2]:
                differing.append(name)
            if name not in sections_b:
                details.append(f"section {name}: only in the release's binary")
            elif name not in sections_a:
                details.append(f"section {name}: only in the rebuilt binary")
            elif sections_a[name][2] != sections_b[name][2]:
                size_a, size_b = sections_a[name][1], sections_b[name][1]
                details.append(
                    f"section {name}: content differs (release {size_a} bytes, rebuilt {size_b})"
                )
    # The build id is a hash of the rest: name the sections that caused it to change.
    primary = [n for n in differing if n not in _DERIVED_SECTIONS] or differing
    if primary:
        summary = f"content differs in section {', '.join(primary[:6])}; {summary}"
    members_a, members_b = _zip_members(expected), _zip_members(rebuilt)
    if members_a is not None and members_b is not None:
        changed = sorted(
            n for n in set(members_a) | set(members_b) if members_a.get(n) != members_b.get(n)
        )
        if changed:
            summary = f"archive members differ: {', '.join(changed[:6])}; {summary}"
        for name in sorted(set(members_a) | set(members_b)):
            if name not in members_b:
                details.append(f"member {name}: only in the release's archive")
            elif name not in members_a:
                details.append(f"member {name}: only in the rebuilt archive")
            else:
                (digest_a, date_a, attr_a), (digest_b, date_b, attr_b) = (
                    members_a[name],
                    members_b[name],
                )
                if digest_a != digest_b:
                    details.append(f"member {name}: content differs")
                if date_a != date_b:
                    details.append(f"member {name}: timestamp {date_a} vs {date_b}")
                if attr_a != attr_b:
                    details.append(f"member {name}: attributes {attr_a:#x} vs {attr_b:#x}")
    return Difference(
        tool="section comparison (lief)",
        summary=summary,
        details=tuple(details),
        text="\n".join(details),
    )


def explain(expected: Path, rebuilt: Path, *, use_diffoscope: bool = True) -> Difference:
    """Compare the release's binary with the rebuilt one, as readably as this machine can."""
    structural = structural_difference(expected, rebuilt)
    diffoscope = shutil.which("diffoscope") if use_diffoscope else None
    if diffoscope is None:
        return structural
    try:
        run = subprocess.run(
            [
                diffoscope,
                "--no-progress",
                "--text",
                "-",
                "--max-report-size",
                str(_MAX_TEXT),
                "--exclude-directory-metadata",
                "yes",
                str(expected),
                str(rebuilt),
            ],
            capture_output=True,
            timeout=_DIFFOSCOPE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return structural
    if run.returncode not in (0, 1):
        return structural
    text = run.stdout.decode(errors="replace")[:_MAX_TEXT]
    # diffoscope prints temporary paths; name the files by role so the text is deterministic.
    text = text.replace(str(expected), "release").replace(str(rebuilt), "rebuilt")
    return Difference(
        tool="diffoscope", summary=structural.summary, details=structural.details, text=text
    )
