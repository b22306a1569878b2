"""The labelled set of disguised abusive rules (tests/inspection/disguise/).

Every disguise the issue lists -- legacy encodings written as hex, RTF escapes,
base64 cut by hand at each alignment, one character class per letter, markings
beyond English, a code-like string that is negated or optional, upload requests
under metadata keys outside the convention, an organisation's network named in
hex or UTF-16 -- must be caught at error level, while real public
malicious-document and phishing rules stay below it.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import yaml

from clearance.inspection import NullProgress
from clearance.inspection.base import InspectionInput
from clearance.inspection.content.inspector import ContentInspector
from clearance.inspection.findings import Finding, Severity
from inspection._helpers import artifact, honest_corpus

HERE = Path(__file__).parent / "disguise"
LABELS = yaml.safe_load((HERE / "labels.yaml").read_text())


@pytest.fixture(scope="module")
def findings(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Finding]:
    negatives = [shared_dir / "rulesets/signature-base/yara" / n for n in LABELS["negatives"]]
    work = tmp_path_factory.mktemp("disguise")
    inp = InspectionInput(
        "disguise",
        "1",
        tuple(artifact(p) for p in [HERE / "abusive.yar", *negatives]),
        corpus=(honest_corpus(work / "corpus"),),
        work_dir=work / "work",
    )
    return list(ContentInspector().inspect(inp, NullProgress()).findings)


def _errors(findings: list[Finding]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = collections.defaultdict(set)
    for f in findings:
        if f.severity >= Severity.HIGH and f.locations and f.locations[0].logical_name:
            out[f.locations[0].logical_name].add(f.rule_id)
    return out


def test_every_disguise_is_caught_at_error_level(findings: list[Finding]) -> None:
    errors = _errors(findings)
    missed = {
        name: want
        for name, want in LABELS["expected"].items()
        if want not in errors.get(name, set())
    }
    assert missed == {}, f"missed: {missed}"


def test_recall_per_category_meets_the_target(findings: list[Finding]) -> None:
    errors = _errors(findings)
    per: dict[str, list[bool]] = collections.defaultdict(list)
    for name, want in LABELS["expected"].items():
        per[want].append(want in errors.get(name, set()))
    for category, hits in per.items():
        assert sum(hits) / len(hits) >= 0.95, (category, hits)


def test_real_malicious_document_rules_stay_below_error_level(findings: list[Finding]) -> None:
    errors = _errors(findings)
    expected = set(LABELS["expected"])
    flagged = {name: ids for name, ids in errors.items() if name not in expected}
    assert flagged == {}, flagged
