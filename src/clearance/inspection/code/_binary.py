"""What lief and a byte scan expose about a binary: imports, sections, strings.

Strings are taken three ways, each with the file offset where it was seen:
printable ASCII runs, UTF-16LE runs (Windows programs keep their text that
way), and simple stack strings -- text a compiler (or an author hiding it)
writes into a stack buffer with immediate moves (``movabs``/``mov dword``/
``mov byte`` into ``[rbp-x]`` on x86-64), which never appears as one run in
the file.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lief

MIN_STRING = 5
_ASCII = re.compile(rb"[\x20-\x7e]{%d,}" % MIN_STRING)
_UTF16 = re.compile(rb"(?:[\x20-\x7e]\x00){%d,}" % MIN_STRING)
# movabs r64, imm64 | mov word/dword/byte/qword [rbp+disp8] or [rsp+disp8], imm -- the shapes
# gcc/clang emit for ``char buf[] = "..."`` or byte-by-byte stores at -O0.
_IMM_MOVES = re.compile(
    rb"[\x48\x49][\xb8-\xbf](.{8})"
    rb"|\x66\xc7\x45.(.{2})"
    rb"|\x66\xc7\x44\x24.(.{2})"
    rb"|\x48\xc7\x45.(.{4})"
    rb"|\xc7\x45.(.{4})"
    rb"|\xc7\x44\x24.(.{4})"
    rb"|\xc6\x45.(.)"
    rb"|\xc6\x44\x24.(.)",
    re.DOTALL,
)
_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]{%d,}" % MIN_STRING)
#: Imports that let a program open network connections (ELF libc, Windows APIs, libcurl).
NETWORK_IMPORTS = frozenset(
    {
        "socket",
        "connect",
        "getaddrinfo",
        "gethostbyname",
        "sendto",
        "sendmsg",
        "WSAStartup",
        "WSAConnect",
        "WSASocketA",
        "WSASocketW",
        "InternetOpenA",
        "InternetOpenW",
        "InternetConnectA",
        "InternetConnectW",
        "HttpSendRequestA",
        "HttpSendRequestW",
        "WinHttpOpen",
        "WinHttpConnect",
        "URLDownloadToFileA",
        "URLDownloadToFileW",
        "curl_easy_perform",
    }
)
_GAP = 8  # bytes of other instructions allowed between two moves of one stack string


@dataclass(frozen=True)
class FoundString:
    text: str
    offset: int
    encoding: str  # "ascii", "utf-16le" or "stack"


@dataclass(frozen=True)
class BinaryFacts:
    """lief's view of a binary (format, libraries, imports, sections) and its strings."""

    format: str
    libraries: tuple[str, ...]
    imports: tuple[str, ...]
    sections: tuple[tuple[str, int, float], ...]  # name, size, entropy
    strings: tuple[FoundString, ...]

    @property
    def can_connect(self) -> bool:
        """Whether the binary imports functions that open network connections."""
        return any(name in NETWORK_IMPORTS for name in self.imports)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "libraries": list(self.libraries),
            "imports": list(self.imports),
            "sections": [list(s) for s in self.sections],
            "strings": len(self.strings),
        }


def stack_strings(code: bytes, base_offset: int = 0) -> list[FoundString]:
    """Reassemble text written to the stack by runs of immediate moves."""
    found: list[FoundString] = []
    buffer = bytearray()
    moves = 0
    start = last_end = 0

    def flush() -> None:
        if moves >= 2:
            for run in _PRINTABLE_RUN.finditer(bytes(buffer)):
                found.append(FoundString(run.group().decode("ascii"), base_offset + start, "stack"))

    for match in _IMM_MOVES.finditer(code):
        immediate = next(g for g in match.groups() if g is not None)
        if buffer and match.start() - last_end > _GAP:
            flush()
            buffer.clear()
            moves = 0
        if not buffer:
            start = match.start()
        buffer += immediate
        moves += 1
        last_end = match.end()
    flush()
    return found


def extract_strings(data: bytes, code_ranges: list[tuple[int, int]]) -> list[FoundString]:
    out = [
        FoundString(m.group().decode("ascii"), m.start(), "ascii") for m in _ASCII.finditer(data)
    ]
    out += [
        FoundString(m.group().decode("utf-16le"), m.start(), "utf-16le")
        for m in _UTF16.finditer(data)
    ]
    for start, size in code_ranges:
        out += stack_strings(data[start : start + size], start)
    return out


def _entropy(data: bytes) -> float:
    if not data:
        return 0.0
    counts = Counter(data)
    return -sum(c / len(data) * math.log2(c / len(data)) for c in counts.values())


def binary_facts(path: Path) -> BinaryFacts:
    """Imports, sections and strings of an ELF/PE/Mach-O file (only strings for anything else)."""
    data = path.read_bytes()
    parsed: Any = lief.parse(str(path)) if lief.is_elf(str(path)) or lief.is_pe(str(path)) else None
    if parsed is None:
        return BinaryFacts("other", (), (), (), tuple(extract_strings(data, [])))
    imports = sorted({str(f.name).split("@", 1)[0] for f in parsed.imported_functions if f.name})
    libraries = sorted({str(lib) for lib in parsed.libraries})
    sections: list[tuple[str, int, float]] = []
    code_ranges: list[tuple[int, int]] = []
    is_pe = lief.is_pe(str(path))
    for section in parsed.sections:
        name = str(section.name) or "(unnamed)"
        content = bytes(section.content)
        sections.append((name, int(section.size), round(_entropy(content), 3)))
        if name in (".text", "__text", "CODE") or (is_pe and name.startswith(".text")):
            code_ranges.append((int(section.offset), len(content)))
    fmt = "PE" if is_pe else "ELF"
    return BinaryFacts(
        fmt,
        tuple(libraries),
        tuple(imports),
        tuple(sections),
        tuple(extract_strings(data, code_ranges)),
    )


def section_ranges(path: Path) -> list[tuple[str, int, int]]:
    """(name, file offset, size) of every section of an ELF/PE file; empty for anything else."""
    if not (lief.is_elf(str(path)) or lief.is_pe(str(path))):
        return []
    parsed: Any = lief.parse(str(path))
    if parsed is None:
        return []
    return [(str(s.name), int(s.offset), int(s.size)) for s in parsed.sections if s.size and s.name]


def section_of(ranges: list[tuple[str, int, int]], offset: int) -> str | None:
    """Name of the section holding file ``offset`` (for locating evidence), if any."""
    for name, start, size in ranges:
        if start <= offset < start + size:
            return name
    return None
