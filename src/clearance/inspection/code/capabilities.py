"""``binary.capability-added``: what a build can do that its predecessor could not.

Every ELF/PE binary of the release goes through flare-capa (rules loaded once
per process, results cached by digest) and lief (imports); so does its
counterpart in the previous release.  Each capability category of interest
(network, capture, keylogging, file collection/upload, privilege,
persistence, injection, run-time code loading, process start) that gains a
capa rule becomes one finding with the rules, namespaces, addresses and
ATT&CK ids, and -- when the release carries source -- the added source
lines that do the same thing.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from clearance.inspection.base import Artifact, InspectionInput, InspectionResult, ProgressSink
from clearance.inspection.code._binary import binary_facts
from clearance.inspection.code._capa_runner import CapabilityMatch, CapaReport, capa_engine
from clearance.inspection.code._capa_runner import default_rules_dir as _default_rules_dir
from clearance.inspection.code._categories import BY_ID, category_of
from clearance.inspection.code._common import (
    previous_for,
    scratch_dir,
    section,
    table,
    unpack_source,
)
from clearance.inspection.code._host_scan import find_endpoints, is_declared, normalise_declared
from clearance.inspection.code._source_diff import Callout, callouts_for, capability_of, diff_trees
from clearance.inspection.findings import FINDING_KINDS, Finding, Location, Severity

RULE_ID = "binary.capability-added"
_MAX_SOURCE_LINES = 12
_PACKED_ENTROPY = 7.2


def default_cache_dir() -> Path:
    """Where capa results are cached when the inspection input names no cache directory."""
    configured = os.environ.get("CLEARANCE_CACHE")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "clearance"


def default_rules_dir() -> Path:
    """Where capa rules are read from unless the inspector is given a directory."""
    return _default_rules_dir()


def source_callouts(inp: InspectionInput) -> list[tuple[str, Callout]]:
    """(source artifact name, call-out) for every added line of every source artifact."""
    sources = inp.of_kind("source")
    if not sources:
        return []
    scratch = scratch_dir(inp, "callouts")
    try:
        out: list[tuple[str, Callout]] = []
        for artifact in sources:
            new_root = unpack_source(artifact, scratch, "new")
            old = previous_for(artifact, inp.previous_of_kind("source"))
            old_root = unpack_source(old, scratch, "old") if old is not None else None
            changes, _total = diff_trees(old_root, new_root)
            out.extend((artifact.name, c) for c in callouts_for(changes))
        return out
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class CapabilityInspector:
    """capa + lief over the release's binaries, compared with the previous release's."""

    name: str = "capabilities"
    kinds: tuple[str, ...] = ("binary",)

    def __init__(
        self,
        rules_dir: Path | None = None,
        *,
        isolate_over_bytes: int = 1 << 20,
        wall_seconds: float = 1800.0,
    ) -> None:
        self.rules_dir = rules_dir
        #: Binaries larger than this are analysed in a limited child process.
        self.isolate_over_bytes = isolate_over_bytes
        self.wall_seconds = wall_seconds

    def inspect(self, inp: InspectionInput, progress: ProgressSink) -> InspectionResult:
        binaries = inp.of_kind("binary")
        if not binaries:
            return InspectionResult(self.name, report={"sections": []})
        engine = capa_engine((self.rules_dir or default_rules_dir()).resolve())
        cache_dir = inp.cache_dir or default_cache_dir()
        pairs = [(b, previous_for(b, inp.previous_of_kind("binary"))) for b in binaries]
        progress.start(
            "capa: analysing binaries", float(sum(1 + (p is not None) for _, p in pairs))
        )
        reports: dict[str, CapaReport] = {}

        def analyse(artifact: Artifact) -> CapaReport:
            if artifact.sha256 not in reports:
                reports[artifact.sha256] = engine.analyse(
                    artifact.path,
                    artifact.sha256,
                    cache_dir,
                    isolate_over_bytes=self.isolate_over_bytes,
                    wall_seconds=self.wall_seconds,
                )
            progress.advance()
            return reports[artifact.sha256]

        callouts = source_callouts(inp)
        declared = normalise_declared(inp.declared_endpoints)
        findings: list[Finding] = []
        sections: list[dict[str, Any]] = []
        for binary, previous in pairs:
            current = analyse(binary)
            before = analyse(previous) if previous is not None else None
            undeclared = sorted(
                {
                    e.host
                    for found in binary_facts(binary.path).strings
                    for e, _ in find_endpoints(found.text)
                    if not is_declared(e.host, declared)
                }
            )
            new_findings, sec = self._compare(
                binary, current, previous, before, callouts, undeclared
            )
            findings.extend(new_findings)
            sections.append(sec)
        import capa.version
        import lief

        engines = {
            "flare-capa": str(capa.version.__version__),
            "capa-rules": engine.fingerprint,
            "lief": str(getattr(lief, "__version__", "unknown")),
        }
        return InspectionResult(self.name, tuple(findings), engines, {"sections": sections})

    def _compare(
        self,
        binary: Artifact,
        current: CapaReport,
        previous: Artifact | None,
        before: CapaReport | None,
        callouts: list[tuple[str, Callout]],
        undeclared: list[str],
    ) -> tuple[list[Finding], dict[str, Any]]:
        old_rules = before.rule_names() if before is not None else frozenset()
        old_categories = {
            c.id
            for m in (before.capabilities if before is not None else ())
            if (c := category_of(m.namespace, m.rule)) is not None
        }
        added: dict[str, list[CapabilityMatch]] = defaultdict(list)
        rows: list[list[str]] = []
        for match in current.capabilities:
            category = category_of(match.namespace, match.rule)
            is_new = match.rule not in old_rules
            rows.append(
                [
                    match.rule,
                    match.namespace,
                    category.label if category else "",
                    ", ".join(match.attack),
                    "new" if is_new and before is not None else ("" if is_new else "unchanged"),
                ]
            )
            if is_new and category is not None:
                added[category.id].append(match)
        new_imports: list[str] = []
        new_libraries: list[str] = []
        facts = binary_facts(binary.path)
        if previous is not None:
            old_facts = binary_facts(previous.path)
            new_imports = sorted(set(facts.imports) - set(old_facts.imports))
            new_libraries = sorted(set(facts.libraries) - set(old_facts.libraries))
        dense = [
            f"{name} ({entropy:.2f} bits/byte)"
            for name, size, entropy in facts.sections
            if size >= 1024 and entropy >= _PACKED_ENTROPY
        ]
        file_access = [
            m.rule
            for m in current.capabilities
            if m.namespace.startswith(
                (
                    "host-interaction/file-system/files/list",
                    "host-interaction/file-system/read",
                    "collection",
                )
            )
        ]
        findings: list[Finding] = []
        if current.error and current.error.startswith("capa failed"):
            # An analysis that crashed or timed out proves nothing: a person must look.
            findings.append(
                Finding(
                    RULE_ID,
                    Severity.MEDIUM,
                    f"{binary.name}: capabilities could not be determined ({current.error})",
                    (Location(binary.name),),
                    {"binary": binary.name, "category": "unknown", "error": current.error},
                )
            )
        findings += [
            self._finding(
                binary,
                previous,
                category_id,
                matches,
                category_id in old_categories,
                new_imports,
                callouts,
                file_access,
                undeclared if category_id == "network" else [],
            )
            for category_id, matches in sorted(added.items())
        ]
        removed = sorted(old_rules - current.rule_names())
        paragraphs = [
            f"{binary.name} ({facts.format}, {binary.size} bytes): capa found "
            f"{len(current.capabilities)} capabilities"
            + (
                f"; compared with {previous.name} of the previous release"
                if previous
                else "; no previous release to compare with, so every capability counts as new"
            )
            + "."
        ]
        if current.error:
            paragraphs.append(f"capa could not analyse this file: {current.error}.")
        if new_libraries:
            paragraphs.append("New linked libraries: " + ", ".join(new_libraries) + ".")
        if new_imports:
            paragraphs.append("New imported functions: " + ", ".join(new_imports) + ".")
        if dense:
            # Compressed or encrypted sections hide code from capa and from strings.
            paragraphs.append(
                "Sections that look packed or encrypted (entropy at or above "
                f"{_PACKED_ENTROPY}): " + ", ".join(dense) + "."
            )
        if removed:
            paragraphs.append("Capabilities no longer present: " + ", ".join(removed) + ".")
        sec = section(
            f"Capabilities of {binary.name}",
            paragraphs,
            [
                table(
                    "capa capabilities", ["rule", "namespace", "category", "ATT&CK", "status"], rows
                )
            ],
        )
        return findings, sec

    def _finding(
        self,
        binary: Artifact,
        previous: Artifact | None,
        category_id: str,
        matches: list[CapabilityMatch],
        category_existed: bool,
        new_imports: list[str],
        callouts: list[tuple[str, Callout]],
        file_access: list[str],
        undeclared: list[str],
    ) -> Finding:
        category = BY_ID[category_id]
        lines = [(name, c) for name, c in callouts if capability_of(c.category) == category_id][
            :_MAX_SOURCE_LINES
        ]
        attack = sorted({a for m in matches for a in m.attack})
        rules = ", ".join(m.rule for m in matches)
        if previous is None:
            severity = Severity.MEDIUM
            message = (
                f"{binary.name} has {category.label} ({rules}); first inspected release, "
                "nothing to compare with"
            )
        elif category_existed:
            severity = Severity.MEDIUM
            message = f"{binary.name} extends its {category.label}: {rules}"
        else:
            severity = FINDING_KINDS[RULE_ID].default_severity
            message = f"{binary.name} gains {category.label}: {rules}"
        if attack:
            message += f" [{', '.join(attack)}]"
        if undeclared and previous is not None and not category_existed:
            # New network code plus a host nobody declared: an undisclosed channel.
            severity = Severity.CRITICAL
            message += f"; it names undeclared endpoint(s) {', '.join(undeclared[:5])}"
        if category_id == "network" and file_access:
            # New network code in a program that reads or lists files is how an upload looks.
            message += f"; it also matches {', '.join(file_access)}: files may leave the machine"
        if lines:
            message += "; source: " + ", ".join(f"{c.path}:{c.line}" for _, c in lines[:4])
        locations = [
            Location(
                uri=binary.name,
                logical_name=m.rule,
                snippet=f"{m.namespace} at {', '.join(m.addresses[:5])}",
            )
            for m in matches
        ]
        locations += [
            Location(uri=c.path, start_line=c.line, end_line=c.line, snippet=c.text)
            for _, c in lines
        ]
        evidence: dict[str, Any] = {
            "binary": binary.name,
            "binary_sha256": binary.sha256,
            "previous_binary": previous.name if previous else None,
            "category": category_id,
            "capability": category.label,
            "rules": [m.to_dict() for m in matches],
            "attack": attack,
            "new_imports": new_imports,
            "file_access": file_access if category_id == "network" else [],
            "undeclared_endpoints": undeclared,
            "source_lines": [{"artifact": name, **c.to_dict()} for name, c in lines],
        }
        return Finding(RULE_ID, severity, message, tuple(locations), evidence)
