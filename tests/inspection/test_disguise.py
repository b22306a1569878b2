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
        tuple(artifact(p) for p in [HERE / "abusive.yar", HERE / "hard_negatives.yar", *negatives]),
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


def _two_releases(tmp_path: Path, old: str, new: str) -> list[Finding]:
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    (tmp_path / "old" / "r.yar").write_text(old)
    (tmp_path / "new" / "r.yar").write_text(new)
    inp = InspectionInput(
        "p",
        "2",
        (artifact(tmp_path / "new" / "r.yar"),),
        previous_artifacts=(artifact(tmp_path / "old" / "r.yar"),),
        corpus=(honest_corpus(tmp_path / "corpus"),),
        work_dir=tmp_path / "work",
    )
    return list(ContentInspector().inspect(inp, NullProgress()).findings)


RULE = '{scope}rule Evil_Dropper {{ strings: $a = "VirtualAllocEx" $b = "dropper" condition: all of them }}\n'


def test_detection_made_private_under_the_same_name_is_reported(tmp_path: Path) -> None:
    found = _two_releases(tmp_path, RULE.format(scope=""), RULE.format(scope="private "))
    removed = [f for f in found if f.rule_id == "content.detection-removed"]
    assert any("private" in f.message for f in removed), [f.message for f in removed]


def test_new_global_rule_silencing_its_file_is_reported(tmp_path: Path) -> None:
    gate = "global rule Gate { condition: filesize < 10 }\n"
    found = _two_releases(tmp_path, RULE.format(scope=""), gate + RULE.format(scope=""))
    removed = [f for f in found if f.rule_id == "content.detection-removed"]
    assert any("global rule Gate" in f.message and f.severity >= Severity.MEDIUM for f in removed)


def test_hash_list_upper_case_md5_and_sha1_of_clean_files_are_overbroad(tmp_path: Path) -> None:
    import hashlib

    from inspection._helpers import inspect_rules

    corpus = tmp_path / "c"
    corpus.mkdir()
    data = b"an ordinary clean file\n"
    (corpus / "clean.bin").write_bytes(data)
    current = {
        "list.hashes": (
            f"{hashlib.md5(data).hexdigest().upper()} Md5.Clean\n"
            f"{hashlib.sha1(data).hexdigest().upper()} Sha1.Clean\n"
            f"{hashlib.sha256(data).hexdigest().upper()} Sha256.Clean\n"
        )
    }
    findings = inspect_rules(tmp_path, current, corpus=corpus)
    over = {f.locations[0].logical_name for f in findings if f.rule_id == "content.overbroad"}
    assert over == {"Md5.Clean", "Sha1.Clean", "Sha256.Clean"}


def test_one_malformed_line_does_not_hide_an_overbroad_digest(tmp_path: Path) -> None:
    import hashlib

    from inspection._helpers import inspect_rules

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "clean.bin").write_bytes(b"an ordinary clean file\n")
    clean = hashlib.sha256(b"an ordinary clean file\n").hexdigest()
    findings = inspect_rules(
        tmp_path, {"list.sha256": f"garbage line\n{clean} Hidden.Clean\n"}, corpus=corpus
    )
    over = {f.locations[0].logical_name for f in findings if f.rule_id == "content.overbroad"}
    assert over == {"Hidden.Clean"}
    errors = [f for f in findings if f.rule_id == "content.compile-error"]
    assert [f.locations[0].start_line for f in errors] == [1]


def test_rule_file_with_cr_only_line_ends_is_still_analysed(tmp_path: Path) -> None:
    from inspection._helpers import inspect_rules

    text = 'rule A {\r  strings:\r    $a = "TOP SECRET//NOFORN"\r  condition:\r    $a\r}\r'
    findings = inspect_rules(tmp_path, {"cr.yar": text})
    hunting = [f for f in findings if f.rule_id == "content.document-hunting"]
    assert hunting and hunting[0].locations[0].logical_name == "A"
    assert hunting[0].locations[0].start_line == 1


def test_cost_hidden_behind_a_file_size_gate_is_measured(tmp_path: Path) -> None:
    from inspection._helpers import inspect_rules

    # Runs only on files over 1 MB: the small-file cost sample never pays for it.
    slow = (
        "rule Size_Gated_Loop { condition: filesize > 1MB and for all i in (0..filesize - 1) : "
        "( for all j in (0..40) : ( uint8(i) != 0x100 ) ) }\n"
    )
    findings = inspect_rules(tmp_path, {"slow.yar": slow})
    slow_findings = [
        f for f in findings if f.rule_id == "content.slow" and f.severity >= Severity.MEDIUM
    ]
    assert slow_findings, [f.message for f in findings]
