"""Quality of the content inspector: disguised abusive rules mixed into a real rule set.

The labelled set is ``tests/inspection/disguise/`` (abusive.yar and labels.yaml):
each disguised rule names the finding it must get at error level (high or
critical).  It is inspected together with all of signature-base (741 files,
about 5,900 honest public rules), over a small clean corpus of this machine's
Python standard library.  Reported: recall per category, and the share of the
real rules flagged at error level (false alarms), with every flagged real rule
named so a person can judge it.
"""

from __future__ import annotations

import collections
import hashlib
import sysconfig
import tempfile
import time
from pathlib import Path

import yaml

from clearance.inspection import NullProgress
from clearance.inspection.base import Artifact, InspectionInput
from clearance.inspection.content.inspector import ContentInspector
from clearance.inspection.findings import Severity

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LABELLED = REPO / "tests/inspection/disguise"
SIGBASE = REPO.parent / "shared/rulesets/signature-base/yara"
RECALL_TARGET = 0.95
FALSE_ALARM_TARGET = 0.02


def _artifact(path: Path) -> Artifact:
    data = path.read_bytes()
    return Artifact(path.name, "content", hashlib.sha256(data).hexdigest(), len(data), path)


def run(quick: bool) -> str:
    labels = yaml.safe_load((LABELLED / "labels.yaml").read_text())
    expected: dict[str, str] = labels["expected"]
    real = sorted(SIGBASE.glob("*.ya*"))
    if quick:
        real = real[:100]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    with tempfile.TemporaryDirectory() as tmp:
        inp = InspectionInput(
            "disguise-benchmark",
            "1",
            tuple(
                _artifact(p)
                for p in [LABELLED / "abusive.yar", LABELLED / "hard_negatives.yar", *real]
            ),
            corpus=(stdlib / "json", stdlib / "email"),
            work_dir=Path(tmp),
        )
        started = time.perf_counter()
        result = ContentInspector().inspect(inp, NullProgress())
        seconds = time.perf_counter() - started
    errors: dict[str, set[str]] = collections.defaultdict(set)
    for f in result.findings:
        if f.severity >= Severity.HIGH and f.locations and f.locations[0].logical_name:
            if f.locations[0].uri == "abusive.yar" or f.locations[0].logical_name in expected:
                errors[f.locations[0].logical_name].add(f.rule_id)
            else:
                errors[f"{f.locations[0].uri}:{f.locations[0].logical_name}"].add(f.rule_id)
    per: dict[str, list[str]] = collections.defaultdict(list)
    missed: dict[str, list[str]] = collections.defaultdict(list)
    for name, want in expected.items():
        per[want].append(name)
        if want not in errors.get(name, set()):
            missed[want].append(name)
    real_rules = _count_rules(real)
    negatives_flagged = sorted(k for k in errors if k.startswith("hard_negatives.yar:"))
    negatives_total = _count_rules([LABELLED / "hard_negatives.yar"])
    false_alarms = sorted(k for k in errors if ":" in k and k not in negatives_flagged)
    rate = len(false_alarms) / real_rules if real_rules else 0.0
    rows = ["| category | disguised rules | caught at error level | recall | target |"]
    rows.append("| --- | ---: | ---: | ---: | --- |")
    for category in sorted(per):
        total = len(per[category])
        caught = total - len(missed[category])
        recall = caught / total
        met = "met" if recall >= RECALL_TARGET else "NOT met"
        rows.append(f"| `{category}` | {total} | {caught} | {recall:.0%} | >= 95 %: {met} |")
    met = "met" if rate <= FALSE_ALARM_TARGET else "NOT met"
    lines = [
        f"Labelled set: {len(expected)} disguised abusive YARA rules "
        f"(tests/inspection/disguise/) mixed into {len(real)} signature-base files "
        f"({real_rules:,} real rules); corpus: the stdlib's json and email packages. "
        f"Whole inspection: {seconds:.0f} s.",
        "",
        *rows,
        "",
        f"False alarms: {len(false_alarms)} of {real_rules:,} real rules flagged at error level "
        f"({rate:.2%}; target at most 2 %: {met}).",
        f"Hard negatives (tests/inspection/disguise/hard_negatives.yar: honest rules reading PE "
        f"version information, imports and serial keywords): {len(negatives_flagged)} of "
        f"{negatives_total} flagged at error level"
        + (f" ({', '.join(negatives_flagged)})" if negatives_flagged else "")
        + ".",
    ]
    if false_alarms:
        lines += ["", "Real rules flagged at error level (for a person to judge):", ""]
        lines += [f"- `{name}`: {', '.join(sorted(errors[name]))}" for name in false_alarms]
    if any(missed.values()):
        lines += ["", "Missed:", ""]
        lines += [f"- `{n}` ({c})" for c, names in sorted(missed.items()) for n in names]
    lines += [
        "",
        "The set covers the disguises of the issue that the YARA analysis now undoes; it is "
        "written by the same team that wrote the checks, so it measures regressions, not "
        "unseen-attack recall.",
    ]
    return "\n".join(lines)


def _count_rules(files: list[Path]) -> int:
    import re

    head = re.compile(r"^\s*(?:(?:private|global)\s+)*rule\s+\w+", re.MULTILINE)
    return sum(len(head.findall(p.read_text(errors="replace"))) for p in files)
