"""Detections that still detect: every release is scanned over the inspector's evidence corpus.

A vendor can keep every rule name and weaken every pattern; comparing rule
text cannot see that.  The inspector therefore holds an evidence corpus --
the malware samples vendors deposited with earlier releases (named in a
release's ``evidence`` by SHA-256), the engine test files Debian ships
(``clamav-testfiles``) and files the inspector generates -- and scans it with
the release and with its predecessor, each in its real engine.  A sample the
previous release detected and this one does not is a removed detection,
whatever the rule text says.

Samples are known by their SHA-256 only: findings, SARIF and the log name
digests, never paths or bytes; the files stay with the inspector.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clearance.inspection.corpus import list_corpus

#: Engine test files shipped by Debian's clamav-testfiles (part of the default evidence corpus).
DEBIAN_TESTFILES = Path("/usr/share/clamav-testfiles")

Detections = Mapping[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class EvidenceScan:
    """Which rules of each release match each evidence sample (by sample SHA-256)."""

    #: SHA-256 of every sample the inspector holds.
    samples: frozenset[str]
    #: sample -> {(content file, rule name)} of this release.
    current: Detections
    #: The same for the previous release (None without one).
    previous: Detections | None
    declared: tuple[tuple[str, tuple[str, ...]], ...] = ()
    previous_declared: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: Rule names of the previous release (to tell new rules from old ones).
    previous_rules: frozenset[str] = field(default_factory=frozenset)


def evidence_roots(given: Sequence[Path]) -> list[Path]:
    roots = list(given)
    if DEBIAN_TESTFILES.is_dir() and DEBIAN_TESTFILES not in roots:
        roots.append(DEBIAN_TESTFILES)
    return roots


def list_samples(roots: Sequence[Path]) -> tuple[list[Path], dict[Path, str]]:
    """Sample files (one per distinct content) and their SHA-256."""
    out: list[Path] = []
    digests: dict[Path, str] = {}
    seen: set[str] = set()
    for path in list_corpus(roots, None):
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue
        if digest in seen:
            continue
        seen.add(digest)
        out.append(path)
        digests[path] = digest
    return out, digests
