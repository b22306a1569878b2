"""Hash lists: the simplest detection content, and the proof that engines plug in.

Format (``*.sha256``, ``*.hashes``, ``*.hashlist``): one digest per line
(MD5, SHA-1, SHA-256 or SHA-512 in hex, either case), optionally followed
by whitespace and a detection name; blank lines and ``#`` comments are
ignored.  Each line is one rule (named after its detection name, else its
digest) whose only pattern is the digest.  "Compiling" validates every line
and names each bad one; the good lines of a file are inspected whatever its
bad lines (one malformed line must not hide an overbroad digest).
"Scanning" hashes every corpus file with every digest kind and looks each
up, case-insensitively.  Nothing in a hash list is interpreted by an engine, so it is
handled in-process (hashing runs in 2 threads; hashlib releases the GIL).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from clearance.inspection.base import ProgressSink
from clearance.inspection.content._orchestration import (
    CompileRequest,
    EngineBase,
    ScanRequest,
    ScanTally,
)
from clearance.inspection.content.engine import (
    CompileReport,
    Crash,
    Diagnostic,
    FileCost,
)
from clearance.inspection.content.model import TEXT, ContentRule, RuleFile, RulePattern

HASHLIST_SUFFIXES = (".sha256", ".hashes", ".hashlist")
_LINE = re.compile(
    r"^([0-9A-Fa-f]{128}|[0-9A-Fa-f]{64}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{32})(?:\s+(\S.*))?$"
)
#: Digest kind by hex length.
_KINDS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_KEEP = 20


def _entries(text: str) -> tuple[list[tuple[int, str, str]], list[tuple[int, str]]]:
    """(line, digest, name) for good lines, (line, text) for bad ones."""
    good: list[tuple[int, str, str]] = []
    bad: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m:
            digest = m.group(1).lower()
            good.append((number, digest, (m.group(2) or digest).strip()))
        else:
            bad.append((number, line[:80]))
    return good, bad


class HashListEngine(EngineBase):
    """SHA-256 hash lists."""

    name = "hashlist"

    def version(self) -> str:
        return f"clearance hashlist 1 (hashlib {hashlib.sha256().name})"

    def claims(self, path: Path) -> bool:
        return path.name.lower().endswith(HASHLIST_SUFFIXES)

    def parse(self, files: Sequence[tuple[str, Path]], progress: ProgressSink) -> list[RuleFile]:
        out = []
        for uri, path in files:
            text = path.read_bytes().decode("utf-8", "replace")
            good, _ = _entries(text)
            rules = tuple(
                ContentRule(
                    name=name,
                    uri=uri,
                    start_line=line,
                    end_line=line,
                    patterns=(RulePattern(f"${_KINDS[len(digest)]}", TEXT, digest, (), line),),
                    condition=f'hash.{_KINDS[len(digest)]}(0, filesize) == "{digest}"',
                    condition_terms=(
                        f"hash.{_KINDS[len(digest)]}",
                        "(",
                        "0",
                        ",",
                        "filesize",
                        ")",
                        "==",
                        f'"{digest}"',
                    ),
                    engine=self.name,
                )
                for line, digest, name in good
            )
            out.append(RuleFile(uri, path, self.name, text, rules, "", tuple(text.splitlines())))
        return out

    def _compile(self, request: CompileRequest) -> CompileReport:
        files = request.files
        diagnostics = []
        clean = []
        for uri, path in files:
            _, bad = _entries(path.read_bytes().decode("utf-8", "replace"))
            for line, text in bad:
                diagnostics.append(
                    Diagnostic(
                        uri,
                        "error",
                        "bad_hash_line",
                        f"not a digest line (MD5, SHA-1, SHA-256 or SHA-512 hex): {text!r}",
                        line,
                        text,
                    )
                )
            if not bad:
                clean.append(uri)
        return CompileReport(
            diagnostics=tuple(diagnostics),
            crashes=(),
            costs=tuple(FileCost(uri, 0.0, 0.0) for uri, _ in files),
            compiled_uris=tuple(clean),
            compiled_set=None,
            compile_seconds=0.0,
            sample_bytes=0,
        )

    def _scan(self, request: ScanRequest, tally: ScanTally) -> list[Crash]:
        files = request.files
        corpus = request.corpus
        corpus_label = request.label
        progress = request.progress
        # Every file's good lines, including files with bad lines (reported at compile).
        wanted: dict[str, list[tuple[str, str]]] = {}
        for uri, path in files:
            for _, digest, name in _entries(path.read_bytes().decode("utf-8", "replace"))[0]:
                wanted.setdefault(digest, []).append((uri, name))
        if not wanted:
            return []
        kinds = sorted({_KINDS[len(d)] for d in wanted})

        def digest_of(path: Path) -> tuple[Path, list[str], int]:
            try:
                data = path.read_bytes()
            except OSError:
                return path, [], 0
            return path, [hashlib.new(kind, data).hexdigest() for kind in kinds], len(data)

        progress.start("hashing the clean corpus", float(len(corpus)))
        with ThreadPoolExecutor(max_workers=2) as pool:
            for path, digests, size in pool.map(digest_of, corpus):
                label = corpus_label(path)
                tally.file(label, size)
                progress.advance(1)
                for found in digests:
                    for uri, name in wanted.get(found, []):
                        tally.match(uri, name, label, ((f"${_KINDS[len(found)]}", 0, found),))
        return []
