"""``binary.not-reproducible``: does each binary rebuild bit-for-bit from the disclosed source?

For every binary the release declares a build recipe for, the source
artifact is unpacked and rebuilt in the hermetic sandbox (see
``_hermetic_build``); the digest of the output is compared with the released
binary.  A mismatch becomes a finding explaining where they differ
(diffoscope, else a section-level comparison); a failed build, a missing
source or a malformed recipe too.  A binary without any recipe cannot be
verified, which is reported at medium severity.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from clearance.inspection.base import Artifact, InspectionInput, InspectionResult, ProgressSink
from clearance.inspection.code._common import scratch_dir, section, table, unpack_source
from clearance.inspection.code._difference import explain
from clearance.inspection.code._hermetic_build import isolation_command, rebuild
from clearance.inspection.code.errors import RecipeError, UnsafeArchiveError
from clearance.inspection.code.recipe import BuildRecipe
from clearance.inspection.findings import Finding, Location, Severity

RULE_ID = "binary.not-reproducible"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ReproducibilityInspector:
    """Hermetic rebuilds of the release's binaries from its source artifacts."""

    name: str = "reproducibility"
    kinds: tuple[str, ...] = ("binary",)

    def __init__(self, *, use_diffoscope: bool = True) -> None:
        self.use_diffoscope = use_diffoscope

    def inspect(self, inp: InspectionInput, progress: ProgressSink) -> InspectionResult:
        binaries = inp.of_kind("binary")
        if not binaries:
            return InspectionResult(self.name, report={"sections": []})
        progress.start("rebuilding binaries", float(len(binaries)))
        isolation = " ".join(isolation_command()) if inp.build_recipes else "not needed"
        findings: list[Finding] = []
        rows: list[list[str]] = []
        code: list[dict[str, Any]] = []
        for binary in binaries:
            finding, row, block = self._check(binary, inp)
            if finding is not None:
                findings.append(finding)
            rows.append(row)
            if block is not None:
                code.append(block)
            progress.advance()
        sec = section(
            "Reproducibility",
            [
                "Each binary with a build recipe is rebuilt from its source artifact in a fresh "
                "directory with no network (new network namespace), a fixed build path, "
                "SOURCE_DATE_EPOCH, TZ=UTC, LC_ALL=C.UTF-8 and umask 022, and its SHA-256 "
                f"compared with the released file. Isolation: {isolation}."
            ],
            [table("rebuilds", ["binary", "source", "result", "detail"], rows)],
            code,
        )
        engines = {"diffoscope": "installed" if shutil.which("diffoscope") else "absent"}
        return InspectionResult(self.name, tuple(findings), engines, {"sections": [sec]})

    def _check(
        self, binary: Artifact, inp: InspectionInput
    ) -> tuple[Finding | None, list[str], dict[str, Any] | None]:
        raw = inp.build_recipes.get(binary.name)
        if raw is None:
            message = (
                f"{binary.name}: the release declares no build recipe, so it cannot be rebuilt"
            )
            finding = Finding(
                RULE_ID,
                Severity.MEDIUM,
                message,
                (Location(binary.name),),
                {"binary": binary.name, "reason": "no-recipe"},
            )
            return finding, [binary.name, "", "not verifiable", "no build recipe"], None
        try:
            recipe = BuildRecipe.from_dict(binary.name, raw)
        except RecipeError as exc:
            return (
                self._broken(binary, "bad-recipe", str(exc)),
                [binary.name, "", "bad recipe", str(exc)],
                None,
            )
        sources = {a.name: a for a in inp.artifacts}
        source = sources.get(recipe.source)
        if source is None:
            detail = f"recipe names source {recipe.source!r}, which the release does not carry"
            return (
                self._broken(binary, "missing-source", detail),
                [binary.name, recipe.source, "no source", detail],
                None,
            )
        scratch = scratch_dir(inp, "rebuild")
        try:
            try:
                tree = unpack_source(source, scratch, "source")
            except UnsafeArchiveError as exc:
                return (
                    self._broken(binary, "bad-source", str(exc)),
                    [binary.name, source.name, "bad source", str(exc)],
                    None,
                )
            try:
                outcome = rebuild(recipe, tree, scratch / "build")
            except RecipeError as exc:
                return (
                    self._broken(binary, "bad-recipe", str(exc)),
                    [binary.name, source.name, "bad recipe", str(exc)],
                    None,
                )
            base = {
                "binary": binary.name,
                "source": source.name,
                "recipe": recipe.to_dict(),
                "isolation": outcome.isolation,
            }
            if not outcome.ok or outcome.output is None:
                detail = f"rebuild {outcome.status} (exit code {outcome.returncode})"
                evidence = {
                    **base,
                    "reason": f"rebuild-{outcome.status}",
                    "log_tail": outcome.log_tail,
                }
                finding = Finding(
                    RULE_ID,
                    Severity.CRITICAL,
                    f"{binary.name}: {detail}; the disclosed source does not build with its recipe",
                    (Location(binary.name), Location(source.name)),
                    evidence,
                )
                block = {
                    "caption": f"build log of {binary.name} (tail)",
                    "text": outcome.log_tail,
                    "highlight_lines": [],
                }
                return finding, [binary.name, source.name, "build failed", detail], block
            rebuilt = _sha256(outcome.output)
            if rebuilt == binary.sha256:
                return (
                    None,
                    [binary.name, source.name, "reproducible", f"sha256 {rebuilt[:16]}…"],
                    None,
                )
            difference = explain(binary.path, outcome.output, use_diffoscope=self.use_diffoscope)
            evidence = {
                **base,
                "reason": "digest-mismatch",
                "expected_sha256": binary.sha256,
                "rebuilt_sha256": rebuilt,
                "difference": difference.to_dict(),
            }
            finding = Finding(
                RULE_ID,
                Severity.CRITICAL,
                f"{binary.name} does not rebuild bit-for-bit from {source.name}: "
                f"{difference.summary}",
                (Location(binary.name, snippet=difference.summary), Location(source.name)),
                evidence,
            )
            block = {
                "caption": f"{difference.tool}: {binary.name} (release) vs rebuilt",
                "text": difference.text,
                "highlight_lines": [],
            }
            return finding, [binary.name, source.name, "DIFFERENT", difference.summary], block
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _broken(self, binary: Artifact, reason: str, detail: str) -> Finding:
        return Finding(
            RULE_ID,
            Severity.CRITICAL,
            f"{binary.name} cannot be rebuilt: {detail}",
            (Location(binary.name),),
            {"binary": binary.name, "reason": reason, "detail": detail},
        )
