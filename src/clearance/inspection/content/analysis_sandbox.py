"""Rule analysis under the engine's limits: the checks that read rules run in a sandboxed child.

The document-hunting, targeting and exfiltration checks read every pattern of
every rule (decodings, word lists, condition paths).  The rules are the
vendor's: a rule set built to make that reading slow or large must cost the
inspector no more than it may cost the engine.  So those checks (the ones that
declare ``sandboxed = True``: they read nothing but the parsed rules) run in a
child process with the engine's CPU, memory and wall-time limits
(:mod:`clearance.inspection.sandbox`), one file after another, and the child
streams each file's findings as it finishes it.

When the child dies (CPU or memory limit, wall time, crash), the file it was
reading is analysed again alone in a fresh child: if that one fails too, the
file is reported as a ``content.engine-crash`` finding (stage ``analysis``,
critical: the same id as a parser or engine that gives up on a file) and the
remaining files are analysed in a new child; if it succeeds, the whole set
simply needed more than one child, and nothing is reported.  Analysis never
hangs or crashes the inspector, and one hostile file hides nothing else.

Rules, findings and settings cross the process boundary as JSON (never
pickle), like every sandboxed result.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from clearance.inspection.content.checks._base import Check, CheckContext, CheckSettings
from clearance.inspection.content.engine import CompileReport
from clearance.inspection.content.model import ContentRule, RuleFile, RulePattern
from clearance.inspection.findings import Finding, Location, Severity
from clearance.inspection.sandbox import Limits, SandboxOutcome, run_sandboxed

#: Default limits: the YARA engine's parse limits (the same reading of the same rules).
ANALYSIS_LIMITS = Limits(cpu_seconds=300, address_space_bytes=3 * 2**30, wall_seconds=600)
_EMPTY_COMPILE = CompileReport((), (), (), (), None, 0.0, 0)
PiiHits = Mapping[tuple[str, str, str], tuple[str, ...]]


def is_sandboxed(check: Check) -> bool:
    """Whether a check reads only the parsed rules (and can be built again in the child)."""
    return bool(getattr(check, "sandboxed", False))


# --- JSON forms ---------------------------------------------------------------------------------


def _rule_to_json(rule: ContentRule) -> dict[str, Any]:
    out = asdict(rule)
    out["patterns"] = [asdict(p) for p in rule.patterns]
    return out


def _rule_from_json(raw: dict[str, Any]) -> ContentRule:
    fields = dict(raw)
    fields["patterns"] = tuple(
        RulePattern(**{**p, "modifiers": tuple(p["modifiers"])}) for p in raw["patterns"]
    )
    fields["metadata"] = tuple((k, v) for k, v in raw["metadata"])
    for name in ("condition_terms", "tags", "scopes", "imports"):
        fields[name] = tuple(raw[name])
    return ContentRule(**fields)


def file_to_json(f: RuleFile) -> dict[str, Any]:
    return {
        "uri": f.uri,
        "path": str(f.path),
        "engine": f.engine,
        "text": f.text,
        "rules": [_rule_to_json(r) for r in f.rules],
        "parse_error": f.parse_error,
        "lines": list(f.lines),
    }


def file_from_json(raw: dict[str, Any]) -> RuleFile:
    return RuleFile(
        uri=raw["uri"],
        path=Path(raw["path"]),
        engine=raw["engine"],
        text=raw["text"],
        rules=tuple(_rule_from_json(r) for r in raw["rules"]),
        parse_error=raw["parse_error"],
        lines=tuple(raw["lines"]),
    )


def finding_to_json(f: Finding) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "severity": int(f.severity),
        "message": f.message,
        "locations": [asdict(loc) for loc in f.locations],
        "evidence": dict(f.evidence),
    }


def finding_from_json(raw: dict[str, Any]) -> Finding:
    return Finding(
        raw["rule_id"],
        Severity(raw["severity"]),
        raw["message"],
        tuple(Location(**loc) for loc in raw["locations"]),
        raw["evidence"],
    )


def _check_ref(check: Check) -> str:
    kind = type(check)
    return f"{kind.__module__}:{kind.__qualname__}"


def _load_check(ref: str) -> Check:
    module, _, qualname = ref.partition(":")
    kind: Any = importlib.import_module(module)
    for part in qualname.split("."):
        kind = getattr(kind, part)
    check: Check = kind()
    return check


# --- the child ----------------------------------------------------------------------------------


def analyse_files(args: dict[str, Any], progress: Any) -> None:
    """Child side: run the checks over each file alone, streaming ``{"start"}`` / ``{"done"}``."""
    checks = [_load_check(ref) for ref in args["checks"]]
    pii = {(k[0], k[1], k[2]): tuple(v) for k, v in args["pii"]}
    settings = CheckSettings(**args["settings"])
    names = frozenset(args["rule_names"])
    for raw in args["files"]:
        progress({"start": raw["uri"]})
        f = file_from_json(raw)
        ctx = CheckContext(
            (f,), _EMPTY_COMPILE, None, pii_hits=pii, settings=settings, known_rule_names=names
        )
        found = [
            [index, finding_to_json(finding)]
            for index, check in enumerate(checks)
            for finding in check.run(ctx)
        ]
        progress({"done": raw["uri"], "findings": found})


# --- the parent ---------------------------------------------------------------------------------


def _failure_finding(uri: str, outcome: SandboxOutcome, limits: Limits) -> Finding:
    what = outcome.describe().replace("the engine", "the rule analysis", 1)
    return Finding(
        "content.engine-crash",
        Severity.CRITICAL,
        f"{uri}: {what} in the sandbox (limits: {limits.cpu_seconds} s CPU, "
        f"{limits.address_space_bytes // 2**20} MiB, {limits.wall_seconds:g} s); "
        "its rules could not be read by the content checks",
        (Location(uri=uri),),
        {"stage": "analysis", **outcome.evidence()},
    )


def run_sandboxed_checks(
    checks: Sequence[Check],
    files: Sequence[RuleFile],
    pii: PiiHits,
    settings: CheckSettings,
    limits: Limits = ANALYSIS_LIMITS,
) -> tuple[list[list[Finding]], list[Finding]]:
    """Findings of each check (in ``checks`` order, files in order), and analysis failures."""
    per_check: list[list[Finding]] = [[] for _ in checks]
    if not checks or not files:
        return per_check, []
    common = {
        "checks": [_check_ref(c) for c in checks],
        "pii": [[list(k), list(v)] for k, v in pii.items()],
        "settings": asdict(settings),
        "rule_names": sorted({r.name for f in files for r in f.rules}),
    }
    encoded = {f.uri: file_to_json(f) for f in files}
    results: dict[str, list[list[Any]]] = {}
    failures: list[Finding] = []
    pending = [f.uri for f in files]
    while pending:
        started: list[str] = []

        def on_progress(event: Any, started: list[str] = started) -> None:
            if isinstance(event, dict) and "start" in event:
                started.append(str(event["start"]))
            elif isinstance(event, dict) and "done" in event:
                results[str(event["done"])] = list(event.get("findings", []))

        outcome = run_sandboxed(
            analyse_files,
            {**common, "files": [encoded[u] for u in pending]},
            limits,
            on_progress=on_progress,
        )
        if outcome.ok:
            pending = [u for u in pending if u not in results]
            if pending:  # a child that stopped streaming without failing: read the rest alone
                failures += _alone(pending.pop(0), common, encoded, limits, results)
            continue
        culprit = next((u for u in reversed(started) if u not in results), None)
        if culprit is None:  # died before reading any file (the rule set as a whole, or startup)
            culprit = next(u for u in pending if u not in results)
        pending = [u for u in pending if u not in results and u != culprit]
        failures += _alone(culprit, common, encoded, limits, results)
    for f in files:
        try:
            decoded = [(int(i), finding_from_json(raw)) for i, raw in results.get(f.uri, [])]
        except (KeyError, TypeError, ValueError) as exc:
            bad = SandboxOutcome("error", detail=f"unreadable result: {exc}")
            failures.append(_failure_finding(f.uri, bad, limits))
            continue
        for index, finding in decoded:
            per_check[index].append(finding)
    return per_check, failures


def _alone(
    uri: str,
    common: dict[str, Any],
    encoded: dict[str, dict[str, Any]],
    limits: Limits,
    results: dict[str, list[list[Any]]],
) -> list[Finding]:
    """Analyse one file in a child of its own; a failure there is the file's finding."""

    def on_progress(event: Any) -> None:
        if isinstance(event, dict) and "done" in event:
            results[str(event["done"])] = list(event.get("findings", []))

    outcome = run_sandboxed(
        analyse_files, {**common, "files": [encoded[uri]]}, limits, on_progress=on_progress
    )
    if outcome.ok and uri in results:
        return []
    return [_failure_finding(uri, outcome, limits)]
