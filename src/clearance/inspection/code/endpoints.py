"""``binary.undeclared-endpoint``: network endpoints a release contains but does not declare.

Binaries are read as ASCII, UTF-16LE and stack strings; source trees by their
string literals (and configuration files line by line).  Every host not in
the release's declared endpoints (exact host, or a declared ``*.domain``)
is one finding listing where it was seen: binary section and offset, source
file and line.  A host the previous release already carried is still
reported, at lower severity.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance.inspection.base import Artifact, InspectionInput, InspectionResult, ProgressSink
from clearance.inspection.code._binary import binary_facts, section_of, section_ranges
from clearance.inspection.code._common import scratch_dir, section, table, unpack_source
from clearance.inspection.code._host_scan import (
    Endpoint,
    find_endpoints,
    is_declared,
    normalise_declared,
)
from clearance.inspection.code._source_diff import source_endpoints
from clearance.inspection.findings import FINDING_KINDS, Finding, Location, Severity

RULE_ID = "binary.undeclared-endpoint"
_MAX_LOCATIONS = 10


@dataclass(frozen=True, order=True)
class Sighting:
    """Where an endpoint was seen: a binary (section, offset) or a source file (line)."""

    artifact: str
    path: str
    line: int | None
    where: str
    value: str
    text: str

    def location(self) -> Location:
        if self.line is not None:
            return Location(self.path, None, self.line, self.line, self.text)
        return Location(self.artifact, self.where, snippet=self.value)

    def describe(self) -> str:
        return (
            f"{self.path}:{self.line}"
            if self.line is not None
            else f"{self.artifact} ({self.where})"
        )


def binary_endpoints(artifact: Artifact) -> list[tuple[Endpoint, Sighting]]:
    facts = binary_facts(artifact.path)
    network = " (binary imports network functions)" if facts.can_connect else ""
    ranges = section_ranges(artifact.path)
    out: list[tuple[Endpoint, Sighting]] = []
    seen: set[tuple[str, str]] = set()
    for found in facts.strings:
        for endpoint, _index in find_endpoints(found.text):
            if (endpoint.value, found.encoding) in seen:
                continue
            seen.add((endpoint.value, found.encoding))
            where = section_of(ranges, found.offset) or "file"
            label = f"{where}+{found.offset:#x}, {found.encoding}{network}"
            out.append(
                (
                    endpoint,
                    Sighting(
                        artifact.name, artifact.name, None, label, endpoint.value, found.text[:200]
                    ),
                )
            )
    return out


def artifact_endpoints(
    artifact: Artifact, scratch: Path, role: str
) -> list[tuple[Endpoint, Sighting]]:
    if artifact.kind == "binary":
        return binary_endpoints(artifact)
    root = unpack_source(artifact, scratch, role)
    return [
        (endpoint, Sighting(artifact.name, rel, line, "source", endpoint.value, text))
        for endpoint, rel, line, text in source_endpoints(root)
    ]


class EndpointInspector:
    """Endpoints in binaries and source compared with the release's declared endpoints."""

    name: str = "endpoints"
    kinds: tuple[str, ...] = ("binary", "source")

    def inspect(self, inp: InspectionInput, progress: ProgressSink) -> InspectionResult:
        current = [a for a in inp.artifacts if a.kind in self.kinds]
        if not current:
            return InspectionResult(self.name, report={"sections": []})
        previous = [a for a in inp.previous_artifacts if a.kind in self.kinds]
        declared = normalise_declared(inp.declared_endpoints)
        progress.start("endpoints: reading strings", float(len(current) + len(previous)))
        scratch = scratch_dir(inp, "endpoints")
        try:
            by_host: dict[str, list[tuple[Endpoint, Sighting]]] = defaultdict(list)
            for artifact in current:
                for endpoint, sighting in artifact_endpoints(artifact, scratch, "new"):
                    by_host[endpoint.host].append((endpoint, sighting))
                progress.advance()
            previous_hosts: set[str] = set()
            for artifact in previous:
                previous_hosts.update(
                    e.host for e, _ in artifact_endpoints(artifact, scratch, "old")
                )
                progress.advance()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        findings: list[Finding] = []
        rows: list[list[str]] = []
        for host in sorted(by_host):
            hits = sorted(by_host[host], key=lambda h: h[1])
            ok = is_declared(host, declared)
            rows.append(
                [
                    host,
                    ", ".join(sorted({e.kind for e, _ in hits})),
                    "declared" if ok else "UNDECLARED",
                    "; ".join(sorted({s.describe() for _, s in hits})[:6]),
                ]
            )
            if not ok:
                findings.append(self._finding(host, hits, host in previous_hosts, inp))
        paragraphs = [
            f"{len(by_host)} distinct endpoint(s) found in {len(current)} artifact(s); "
            f"{len(findings)} not declared by the release. Declared: "
            + (", ".join(inp.declared_endpoints) or "none")
            + "."
        ]
        sec = section(
            "Network endpoints",
            paragraphs,
            [table("endpoints seen", ["host", "kind", "status", "where"], rows)],
        )
        return InspectionResult(self.name, tuple(findings), {}, {"sections": [sec]})

    def _finding(
        self,
        host: str,
        hits: list[tuple[Endpoint, Sighting]],
        in_previous: bool,
        inp: InspectionInput,
    ) -> Finding:
        # Source lines first: they are what a reviewer opens.
        ordered = sorted(hits, key=lambda h: (h[1].line is None, h[1]))
        places = sorted({s.describe() for _, s in ordered})
        values = sorted({e.value for e, _ in ordered})
        message = f"undeclared endpoint {host} ({', '.join(values[:3])}) seen in " + ", ".join(
            places[:6]
        )
        severity = FINDING_KINDS[RULE_ID].default_severity
        connectable = [s for _, s in ordered if s.line is None and "network functions" in s.where]
        if connectable and not in_previous:
            # A new, undeclared host inside a program that can open connections is how an
            # exfiltration channel looks: refuse rather than ask.
            severity = Severity.CRITICAL
            message += "; the binary imports network functions"
        elif in_previous:
            severity = Severity.MEDIUM
            message += "; already present in the previous release"
        evidence: dict[str, Any] = {
            "host": host,
            "kinds": sorted({e.kind for e, _ in ordered}),
            "values": values,
            "seen_in": [
                {
                    "artifact": s.artifact,
                    "path": s.path,
                    "line": s.line,
                    "where": s.where,
                    "text": s.text,
                }
                for _, s in ordered[:50]
            ],
            "in_previous_release": in_previous,
            "declared_endpoints": list(inp.declared_endpoints),
        }
        locations = tuple(s.location() for _, s in ordered[:_MAX_LOCATIONS])
        return Finding(RULE_ID, severity, message, locations, evidence)
