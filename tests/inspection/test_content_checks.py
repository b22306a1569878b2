"""Every content check, on abusive and honest rules written here, with the real engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearance.inspection.findings import Finding, Severity
from inspection._helpers import by_rule, inspect_rules

HONEST = r"""
import "pe"

rule Honest_Mimikatz {
  meta:
    author = "test"
    action = "quarantine"
  strings:
    $a = "sekurlsa::logonpasswords" ascii wide
    $b = "gentilkiwi" ascii
  condition:
    uint16(0) == 0x5a4d and any of them
}

rule Honest_Maldoc_Macro {
  meta:
    action = "upload"
  strings:
    $v = "AutoOpen" ascii
    $s = "CreateObject(\"WScript.Shell\")" ascii nocase
  condition:
    uint32(0) == 0xe011cfd0 and all of them
}

rule Honest_Thunderbird_Path {
  strings:
    $x = { 8B 45 08 89 04 24 E8 ?? ?? ?? ?? C9 C3 }
  condition:
    filepath contains "Thunderbird" and $x
}

rule Honest_Webshell_Owner {
  strings:
    $e = "eval($_POST[" ascii
  condition:
    $e and owner == "www-data"
}

rule Honest_Signed {
  condition:
    pe.number_of_signatures > 0 and
    for any i in (0 .. pe.number_of_signatures): (pe.signatures[i].issuer contains "Evil CA")
}
"""

ABUSIVE = r"""
rule Hunt_Markings {
  strings:
    $m1 = "TOP SECRET" ascii wide nocase
  condition:
    $m1
}

rule Hunt_Noforn_Hex_Wide {
  strings:
    $h = { 4E 00 4F 00 46 00 4F 00 52 00 4E 00 }
  condition:
    $h
}

rule Hunt_Russian_Marking {
  strings:
    $r = "СОВЕРШЕННО СЕКРЕТНО" wide ascii
  condition:
    $r
}

rule Hunt_Regex_Marking {
  strings:
    $r = /SECRET\/\/(NOFORN|REL TO)/
  condition:
    $r
}

rule Hunt_SSN {
  strings:
    $ssn = /[0-9]{3}-[0-9]{2}-[0-9]{4}/
  condition:
    #ssn > 5
}

rule Hunt_All_PDFs {
  condition:
    uint32(0) == 0x46445025 and filesize < 20MB
}

rule Hunt_Budget_Docx {
  strings:
    $c = "[Content_Types].xml"
  condition:
    extension == ".docx" and $c
}

rule Hunt_Weak_Exact {
  strings:
    $s = "SECRET" wide
  condition:
    $s
}
"""


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory) -> list[Finding]:
    return inspect_rules(tmp_path_factory.mktemp("honest"), {"honest.yar": HONEST})


@pytest.fixture(scope="module")
def abusive(tmp_path_factory: pytest.TempPathFactory) -> list[Finding]:
    return inspect_rules(tmp_path_factory.mktemp("abusive"), {"abusive.yar": ABUSIVE})


def test_honest_rules_raise_no_alarm(honest: list[Finding]) -> None:
    alarms = [f for f in honest if f.severity >= Severity.MEDIUM]
    assert alarms == [], [f.message for f in alarms]


def test_document_hunting_catches_every_abusive_rule(abusive: list[Finding]) -> None:
    found = by_rule(abusive, "content.document-hunting")
    expected = {
        "Hunt_Markings",
        "Hunt_Noforn_Hex_Wide",
        "Hunt_Russian_Marking",
        "Hunt_Regex_Marking",
        "Hunt_SSN",
        "Hunt_All_PDFs",
        "Hunt_Budget_Docx",
        "Hunt_Weak_Exact",
    }
    assert set(found) == expected
    assert found["Hunt_Markings"].severity == Severity.CRITICAL
    assert found["Hunt_SSN"].severity >= Severity.HIGH
    assert "social security" in str(found["Hunt_SSN"].evidence)
    # The contract: the rule name and its file, and the lines that hunt highlighted.
    loc = found["Hunt_Markings"].locations[0]
    assert loc.uri == "abusive.yar" and loc.logical_name == "Hunt_Markings"
    assert loc.snippet and "TOP SECRET" in loc.snippet
    assert found["Hunt_Markings"].evidence["highlight_lines"] == [loc.start_line + 2]


def test_marking_next_to_code_is_still_reported(tmp_path: Path) -> None:
    rules = r"""
rule Disguised {
  strings:
    $code = "VirtualAlloc" ascii
    $m = "TOP SECRET" wide
  condition:
    uint16(0) == 0x5a4d and any of them
}
"""
    found = by_rule(inspect_rules(tmp_path, {"d.yar": rules}), "content.document-hunting")
    assert found["Disguised"].severity == Severity.HIGH


TARGETING = r"""
rule Target_Profile {
  condition:
    filepath contains "C:\\Users\\jdoe\\Documents"
}
rule Target_Owner {
  condition:
    owner == "jdoe"
}
rule Target_Host_Share {
  condition:
    filepath startswith "\\\\FINANCE-SRV01\\share"
}
rule Target_Subnet_Path {
  condition:
    filepath contains "10.20.30."
}
rule Target_After_Date {
  condition:
    filesize > 0
}
"""


def test_targeting(tmp_path: Path) -> None:
    findings = inspect_rules(tmp_path, {"t.yar": TARGETING})
    found = by_rule(findings, "content.targeting")
    assert set(found) == {
        "Target_Profile",
        "Target_Owner",
        "Target_Host_Share",
        "Target_Subnet_Path",
    }
    assert all(f.severity == Severity.HIGH for f in found.values())
    assert "jdoe" in found["Target_Profile"].message


def test_targeting_with_identity_externals_and_the_clock(tmp_path: Path) -> None:
    rules = r"""
import "time"
rule Only_On_Host {
  condition:
    hostname == "CEO-LAPTOP" and time.now() > 1700000000
}
"""
    findings = inspect_rules(tmp_path, {"h.yar": rules})
    # The engine does not know `hostname`: a compile error, and still judged as targeting.
    assert by_rule(findings, "content.compile-error")
    found = by_rule(findings, "content.targeting")
    assert found["Only_On_Host"].severity == Severity.HIGH
    reasons = found["Only_On_Host"].evidence["reasons"]
    assert any("hostname" in r for r in reasons) and any("time.now" in r for r in reasons)


def test_compile_errors_and_warnings(tmp_path: Path) -> None:
    rules = {
        "broken.yar": 'rule Broken { strings: $a = "x" condition: $b }\n',
        "include.yar": 'include "/etc/passwd"\nrule Inc { condition: true }\n',
        "warn.yar": "rule Warn { strings: $a = { 41 42 43 44 } condition: $a }\n",
    }
    findings = inspect_rules(tmp_path, rules)
    errors = [f for f in findings if f.rule_id == "content.compile-error"]
    by_file: dict[str, Finding] = {}
    for f in sorted(errors, key=lambda f: f.severity):
        by_file[f.locations[0].uri] = f  # the worst per file
    assert by_file["broken.yar"].severity == Severity.CRITICAL
    assert by_file["include.yar"].severity == Severity.CRITICAL
    assert "include" in by_file["include.yar"].message
    assert by_file["warn.yar"].severity == Severity.LOW  # text_as_hex warning carried


def test_overbroad_reports_the_matched_files_and_strings(tmp_path: Path) -> None:
    rules = r"""
rule Matches_Python { strings: $i = "import os" condition: $i }
rule Matches_Gardening { strings: $g = "gardening" condition: #g > 3 }
rule Matches_Nothing { strings: $n = "qwertyuiopasdfghjkl" condition: $n }
"""
    found = by_rule(inspect_rules(tmp_path, {"o.yar": rules}), "content.overbroad")
    assert set(found) == {"Matches_Python", "Matches_Gardening"}
    ev = found["Matches_Python"].evidence
    assert ev["matched_files"] == 1
    assert ev["examples"][0]["file"].endswith("tool.py")
    assert ev["examples"][0]["strings"][0][0] == "$i"
    assert ev["examples"][0]["strings"][0][2] == "import os"


def test_overbroad_many_files_is_critical(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    for i in range(6):
        (corpus / f"f{i}.txt").write_text(f"common words here {i}\n")
    rules = 'rule Everything { strings: $w = "common words" condition: $w }\n'
    found = by_rule(inspect_rules(tmp_path, {"e.yar": rules}, corpus=corpus), "content.overbroad")
    assert found["Everything"].severity == Severity.CRITICAL
    assert found["Everything"].evidence["matched_files"] == 6


def test_slow_rules(tmp_path: Path) -> None:
    from clearance.inspection.content.inspector import ContentInspector
    from clearance.inspection.content.yara_engine import YaraEngine, YaraSettings

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.bin").write_bytes(b"a" * 300_000 + b"\n" + bytes(range(256)) * 400)
    rules = {
        "slow.yar": r"rule Slow_Regex { strings: $r = /a.{0,30}b/ condition: $r }" + "\n",
        "hang.yar": r"rule Hangs { strings: $r = /a[^\n]{0,200}[a-z]{2,}b/ condition: $r }" + "\n",
        "warn.yar": r"rule Slow_Warned { strings: $d = /\d+/ condition: $d }" + "\n",
        "fast.yar": 'rule Fast { strings: $f = "zzqqzzqq" condition: $f }\n',
    }
    inspector = ContentInspector(YaraEngine(YaraSettings(budget_ms_per_mib=50.0, scan_timeout=2)))
    findings = inspect_rules(tmp_path, rules, corpus=corpus, inspector=inspector)
    slow = [f for f in findings if f.rule_id == "content.slow"]
    uris = {f.locations[0].uri for f in slow}
    assert "slow.yar" in uris, [f.message for f in slow]
    assert "warn.yar" in uris  # the engine's slow_pattern warning
    assert "fast.yar" not in uris
    measured = next(f for f in slow if f.locations[0].uri == "slow.yar")
    assert measured.evidence["cost"].startswith(("over", "hit"))
    assert measured.evidence["rules_over_budget"] == ["Slow_Regex"]
    hangs = next(f for f in slow if f.locations[0].uri == "hang.yar")
    assert hangs.evidence["cost"] == "hit the scan timeout" and hangs.severity == Severity.HIGH
    timeouts = next(f for f in slow if f.locations[0].uri == "ruleset")
    assert timeouts.evidence["files"][0].endswith("a.bin")


def test_exfiltration_action(tmp_path: Path) -> None:
    rules = r"""
rule Collect_Docs {
  meta:
    action = "alert, upload"
  strings:
    $s = "Quarterly budget"
  condition:
    $s
}
rule Unknown_Action {
  meta:
    action = "mirror"
  strings:
    $s = "Meeting minutes"
  condition:
    $s
}
rule Sneaky_Key {
  meta:
    auto_submit_match = true
  strings:
    $s = "Board of directors"
  condition:
    $s
}
rule Local_Only {
  meta:
    action = "quarantine"
  strings:
    $s = "Annual report"
  condition:
    $s
}
rule Malware_Upload {
  meta:
    action = "upload"
  strings:
    $s = "VirtualAlloc"
  condition:
    uint16(0) == 0x5a4d and $s
}
"""
    found = by_rule(inspect_rules(tmp_path, {"x.yar": rules}), "content.exfiltration-action")
    assert set(found) == {"Collect_Docs", "Unknown_Action", "Sneaky_Key"}
    assert all(f.severity == Severity.CRITICAL for f in found.values())


def test_detection_removed_or_narrowed(tmp_path: Path) -> None:
    previous = r"""
rule Kept { strings: $a = "alpha1234" condition: $a }
rule Dropped { strings: $a = "beta1234" condition: $a }
rule Fewer { strings: $a = "gamma1234" $b = "delta1234" condition: any of them }
rule Stricter { strings: $a = "eps1234" $b = "zeta1234" condition: any of them }
rule Smaller { strings: $a = "eta1234" condition: $a and filesize < 2MB }
rule Reworded { strings: $a = "theta1234" condition: $a }
"""
    current = r"""
rule Kept { strings: $a = "alpha1234" condition: $a }
rule Fewer { strings: $a = "gamma1234" condition: any of them }
rule Stricter { strings: $a = "eps1234" $b = "zeta1234" condition: all of them }
rule Smaller { strings: $a = "eta1234" condition: $a and filesize < 100KB }
rule Reworded { strings: $a = "theta1234" condition: $a or true }
rule Added { strings: $a = "iota1234" condition: $a }
"""
    findings = inspect_rules(tmp_path, {"r.yar": current}, previous={"r.yar": previous})
    found = by_rule(findings, "content.detection-removed")
    assert set(found) == {"Dropped", "Fewer", "Stricter", "Smaller", "Reworded"}
    assert found["Dropped"].evidence["change"] == "removed"
    for name in ("Fewer", "Stricter", "Smaller"):
        assert (
            found[name].severity == Severity.MEDIUM and found[name].evidence["change"] == "narrowed"
        )
    assert found["Reworded"].severity == Severity.LOW


def test_archives_of_rules_are_inspected(tmp_path: Path) -> None:
    import zipfile

    from clearance.inspection import NullProgress
    from clearance.inspection.base import InspectionInput
    from clearance.inspection.content.inspector import ContentInspector
    from inspection._helpers import artifact, honest_corpus

    bundle = tmp_path / "rules.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("apt/one.yar", 'rule One { strings: $m = "TOP SECRET" condition: $m }\n')
        zf.writestr("README.md", "not a rule")
    inp = InspectionInput(
        "p",
        "1",
        (artifact(bundle),),
        corpus=(honest_corpus(tmp_path / "c"),),
        work_dir=tmp_path / "w",
    )
    result = ContentInspector().inspect(inp, NullProgress())
    hunting = [f for f in result.findings if f.rule_id == "content.document-hunting"]
    assert hunting[0].locations[0].uri == "rules.zip/apt/one.yar"


def test_engine_dying_on_content_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    from clearance.inspection.content.inspector import ContentInspector
    from clearance.inspection.content.yara_engine import YaraEngine, YaraSettings
    from clearance.inspection.sandbox import Limits

    # yara-x reserves ~80 MiB of address space to emit code: under a 120 MiB limit
    # the real engine fails to allocate while compiling, in the sandbox.
    settings = YaraSettings(compile_limits=Limits(address_space_bytes=120 * 2**20, wall_seconds=4))
    rules = {"a.yar": 'rule A { strings: $a = "abcdefgh" condition: $a }\n'}
    findings = inspect_rules(tmp_path, rules, inspector=ContentInspector(YaraEngine(settings)))
    crash = [f for f in findings if f.rule_id == "content.engine-crash"]
    assert len(crash) == 1 and crash[0].severity == Severity.CRITICAL
    assert crash[0].locations[0].uri == "a.yar"
    assert crash[0].evidence["phase"] == "compile"
    assert crash[0].evidence["status"] == "out-of-memory"


def test_rule_heads_cross_check_ignores_comments_and_strings() -> None:
    from clearance.inspection.content.yara_terms import rule_heads

    text = '/* rule A { } */\nrule B { strings: $a = "rule C" condition: $a } // rule D\nprivate global rule E { condition: true }'
    assert rule_heads(text) == [("B", 2), ("E", 3)]


def test_unchanged_release_reports_nothing_removed(tmp_path: Path) -> None:
    rules = 'rule Same { strings: $a = "unchanged1234" condition: $a }\n'
    findings = inspect_rules(tmp_path, {"same.yar": rules}, previous={"old-name.yar": rules})
    assert [f for f in findings if f.rule_id == "content.detection-removed"] == []


def test_scan_dying_names_the_corpus_file_and_resumes(tmp_path: Path) -> None:
    from clearance.inspection.content.inspector import ContentInspector
    from clearance.inspection.content.yara_engine import YaraEngine, YaraSettings
    from clearance.inspection.sandbox import Limits

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "one.txt").write_text("hello\n")
    settings = YaraSettings(
        scan_limits=Limits(address_space_bytes=120 * 2**20, wall_seconds=4), workers=1
    )
    rules = {"a.yar": 'rule A { strings: $a = "abcdefgh" condition: $a }\n'}
    findings = inspect_rules(
        tmp_path, rules, corpus=corpus, inspector=ContentInspector(YaraEngine(settings))
    )
    crash = [f for f in findings if f.rule_id == "content.engine-crash"]
    assert len(crash) == 1, [f.message for f in findings]
    assert crash[0].evidence["phase"] == "scan"
    assert crash[0].evidence["corpus_file"].endswith("one.txt")
    # Re-run with each content file alone: the culprit is named.
    assert crash[0].locations[0].uri == "a.yar"


def test_hash_lists_plug_in_beside_yara(tmp_path: Path) -> None:
    import hashlib

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "clean.bin").write_bytes(b"an ordinary clean file\n")
    clean_digest = hashlib.sha256(b"an ordinary clean file\n").hexdigest()
    malware_digest = "ab" * 32
    previous = {"bad.sha256": f"{malware_digest} Trojan.Old\n{'cd' * 32} Trojan.Gone\n"}
    current = {
        "bad.sha256": f"# updated\n{malware_digest} Trojan.Old\n{clean_digest} Oops.Clean\n",
        "broken.hashes": "not-a-digest\n",
        "r.yar": 'rule Y { strings: $a = "zzqqzzqq1234" condition: $a }\n',
    }
    findings = inspect_rules(tmp_path, current, previous=previous, corpus=corpus)
    over = by_rule(findings, "content.overbroad")
    assert set(over) == {"Oops.Clean"}
    assert over["Oops.Clean"].locations[0].uri == "bad.sha256"
    assert over["Oops.Clean"].locations[0].start_line == 3
    removed = by_rule(findings, "content.detection-removed")
    assert set(removed) == {"Trojan.Gone"}
    errors = [f for f in findings if f.rule_id == "content.compile-error"]
    assert [f.locations[0].uri for f in errors] == ["broken.hashes"]
