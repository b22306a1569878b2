"""ClamAV signature databases: parsed by us, loaded and scanned by Debian's clamscan."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import tarfile
from pathlib import Path

import pytest

from clearance.inspection.content.clamav_format import parse_database
from clearance.inspection.content.model import HEX, REGEX
from clearance.inspection.findings import Severity

from ._helpers import by_rule, inspect_rules, write

pytestmark = pytest.mark.skipif(shutil.which("clamscan") is None, reason="clamav not installed")


def _hex(text: str, codec: str = "ascii") -> str:
    return text.encode(codec).hex()


def test_every_database_format_parses(tmp_path: Path) -> None:
    files = {
        "a.hdb": "44d88612fea8a8f36de82e1278abb02f:68:Eicar.Test\n",
        "a.hsb": f"{'ab' * 32}:*:Sha.Test:73\n",
        "a.mdb": "1024:44d88612fea8a8f36de82e1278abb02f:Section.Test\n",
        "a.ndb": "Body.Test:1:EP+0:6162(6364|6566)??{2-4}67*6869\n",
        "a.ldb": "Logic.Test;Engine:81-255,Target:2;0&1;414243::i;0/secret\\s+plan/i\n",
        "a.cdb": "Cont.Test:CL_TYPE_ZIP:*:.*\\.docx:*:*:*:*:*:*\n",
        "a.fp": "44d88612fea8a8f36de82e1278abb02f:68:Allowed\n",
        "a.ign2": "Body.Test\n",
        "bad.ndb": "Good.One:0:*:41424344\nBroken:0:*:zz\n",
    }
    paths = write(tmp_path, files)
    parsed = {p.name: parse_database(p.name, p) for p in paths}
    assert parsed["a.hdb"].rules[0].patterns[0].value == "44d88612fea8a8f36de82e1278abb02f"
    assert parsed["a.hsb"].rules[0].patterns[0].identifier == "$sha256"
    assert "target:pe" in parsed["a.mdb"].rules[0].tags
    body = parsed["a.ndb"].rules[0]
    assert body.patterns[0].kind == HEX and "target:pe" in body.tags
    assert body.patterns[0].value == "{ 61 62 ( 63 64 | 65 66 ) ?? [2-4] 67 [-] 68 69 }"
    logic = parsed["a.ldb"].rules[0]
    assert [p.kind for p in logic.patterns] == [HEX, REGEX] and "target:ole2" in logic.tags
    assert "nocase" in logic.patterns[0].modifiers
    assert parsed["a.cdb"].rules[0].patterns[0].kind == REGEX
    assert "allowlist" in parsed["a.fp"].rules[0].tags
    assert parsed["a.ign2"].rules[0].patterns[0].value == "Body.Test"
    assert parsed["bad.ndb"].parse_error.startswith("line 2:")
    assert [r.name for r in parsed["bad.ndb"].rules] == ["Good.One"]


def _corpus(tmp: Path) -> Path:
    return write(
        tmp / "corpus",
        {
            "readme.txt": "This is an ordinary text file about gardening.\n" * 20,
            "tool.py": "import os\n\ndef main():\n    print(os.getcwd())\n",
            "data.bin": bytes(range(256)) * 64,
        },
    )[0].parent


def test_malformed_line_is_named_and_the_rest_is_still_inspected(tmp_path: Path) -> None:
    findings = inspect_rules(
        tmp_path,
        {"x.ndb": f"Garden.Overbroad:0:*:{_hex('about gardening')}\nBroken:0:*:zz\nAlso.Bad:0\n"},
        corpus=_corpus(tmp_path),
    )
    errors = [f for f in findings if f.rule_id == "content.compile-error"]
    assert {f.locations[0].start_line for f in errors if f.severity == Severity.CRITICAL} == {2, 3}
    overbroad = by_rule(findings, "content.overbroad")
    assert "Garden.Overbroad" in overbroad


def test_document_hunting_in_legacy_encodings_and_targeting_in_utf16(tmp_path: Path) -> None:
    findings = inspect_rules(
        tmp_path,
        {
            "hunt.ndb": (
                f"Doc.Cyr:0:*:{_hex('СОВЕРШЕННО СЕКРЕТНО', 'cp1251')}\n"
                f"Doc.Koi:4:*:{_hex('СЕКРЕТНО', 'koi8_r')}\n"
                f"Doc.Gbk:0:*:{_hex('绝密', 'gbk')}\n"
                f"Doc.Sjis:2:*:{_hex('極秘', 'shift_jis')}\n"
                f"Host.Utf16:0:*:{_hex('FILESRV01.acme.corp', 'utf-16-le')}\n"
                f"Net.Ip:0:*:{_hex('10.20.30.40')}\n"
                "Honest.Shell:0:*:3c3f706870206576616c286261736536345f6465636f646528\n"
            ),
            "hunt.ldb": (
                f"Doc.Word;Engine:81-255,Target:2;0&1;{_hex('Budget')};{_hex('salary')}::i\n"
            ),
        },
        corpus=_corpus(tmp_path),
    )
    docs = by_rule(findings, "content.document-hunting")
    for name in ("Doc.Cyr", "Doc.Koi", "Doc.Gbk", "Doc.Sjis"):
        assert docs[name].severity == Severity.CRITICAL, name
    assert docs["Doc.Word"].severity >= Severity.HIGH
    targeting = by_rule(findings, "content.targeting")
    assert {"Host.Utf16", "Net.Ip"} <= set(targeting)
    assert "Honest.Shell" not in docs and "Honest.Shell" not in targeting


def test_slow_signature_is_measured_in_the_engine_and_named(tmp_path: Path) -> None:
    import random

    rng = random.Random(1)
    corpus = write(
        tmp_path / "corpus",
        {"ab.txt": bytes(rng.choice(b"ab ") for _ in range(400 * 1024))},
    )[0].parent
    findings = inspect_rules(
        tmp_path,
        {
            "slow.ldb": (
                "Fast.One;Engine:81-255,Target:0;0;68656c6c6f776f726c64\n"
                "Slow.Regex;Engine:81-255,Target:0;0&1;6162;0/((a|b)+ )+$/\n"
            )
        },
        corpus=corpus,
    )
    slow = [f for f in findings if f.rule_id == "content.slow"]
    assert slow and slow[0].evidence["rules_over_budget"] == ["Slow.Regex"]


def _cvd(
    members: dict[str, bytes], *, lie_md5: bool = False, count: int = 1, gz: bool = True
) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    body = gzip.compress(raw.getvalue(), mtime=0) if gz else raw.getvalue()
    md5 = "0" * 32 if lie_md5 else hashlib.md5(body).hexdigest()
    header = f"ClamAV-VDB:29 Nov 2026 00-00 +0000:7:{count}:90:{md5}:X:vendor:1800000000"
    return header.encode().ljust(512, b" ") + body


def test_cvd_container_is_opened_and_its_md5_checked(tmp_path: Path) -> None:
    good = _cvd({"vendor.ndb": f"Garden:0:*:{_hex('about gardening')}\n".encode()})
    bad = _cvd({"vendor.ndb": b"Other:0:*:41424344\n"}, lie_md5=True, count=5)
    cld = _cvd({"local.hdb": b"44d88612fea8a8f36de82e1278abb02f:68:Eicar\n"}, gz=False)
    findings = inspect_rules(
        tmp_path,
        {"daily.cvd": good, "main.cvd": bad, "local.cld": cld},  # type: ignore[dict-item]
        corpus=_corpus(tmp_path),
    )
    assert "Garden" in by_rule(findings, "content.overbroad")
    compile_errors = [f for f in findings if f.rule_id == "content.compile-error"]
    md5 = [f for f in compile_errors if f.evidence.get("code") == "container_md5"]
    assert md5 and md5[0].severity == Severity.CRITICAL and md5[0].locations[0].uri == "main.cvd"
    assert any(f.evidence.get("code") == "container_count" for f in compile_errors)
    # The uncompressed .cld is opened too; its header is noted, nothing is wrong with it.
    notes = [f for f in compile_errors if f.locations[0].uri == "local.cld"]
    assert [f.evidence.get("code") for f in notes] == ["container_header"]
    assert notes[0].severity == Severity.INFO


def test_removed_hash_and_switched_off_signature_are_detection_removed(tmp_path: Path) -> None:
    previous = {
        "v.hdb": "44d88612fea8a8f36de82e1278abb02f:68:Eicar.1\n" + "a" * 32 + ":10:Other.2\n",
        "v.ndb": "Body.Keep:0:*:41424344\n",
    }
    current = {
        # renumbered but the same hash: not a removal; the second hash is gone
        "v.hdb": "44d88612fea8a8f36de82e1278abb02f:68:Eicar.7\n",
        "v.ndb": "Body.Keep:0:*:41424344\n",
        "v.ign2": "Body.Keep\n",
    }
    findings = inspect_rules(tmp_path, current, previous=previous, corpus=_corpus(tmp_path))
    removed = [f for f in findings if f.rule_id == "content.detection-removed"]
    messages = " | ".join(f.message for f in removed)
    assert "Other.2" in messages and "Eicar" not in messages
    assert "switches off signature Body.Keep" in messages


def test_whole_set_that_does_not_load_is_an_engine_crash_not_silence(tmp_path: Path) -> None:
    from clearance.inspection import NullProgress
    from clearance.inspection.content.clamav_engine import ClamAVEngine
    from clearance.inspection.content.engine import CompileReport

    engine = ClamAVEngine()
    good = write(tmp_path / "db", {"a.ndb": "A.Sig:0:*:41424344\n"})
    report = engine.compile([("a.ndb", good[0])], tmp_path / "work", [], NullProgress())
    assert report.compiled_set is not None
    # The set breaks after each file loaded alone (what two conflicting files do together).
    (report.compiled_set / "broken.ndb").write_text("Broken:0:*:zz\n")
    corpus = _corpus(tmp_path)
    scan = engine.scan(
        CompileReport((), (), (), ("a.ndb",), report.compiled_set, 0.0, 0),
        [("a.ndb", good[0])],
        sorted(corpus.iterdir()),
        str,
        NullProgress(),
    )
    assert [c.uri for c in scan.crashes] == ["ruleset"]
    assert "whole set" in scan.crashes[0].message and scan.files_scanned == 0


def test_database_that_kills_the_engine_is_a_finding_and_the_rest_is_inspected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # clamscan cannot be made to crash on demand, so a wrapper stands in for a libclamav
    # that dies on one database: it kills itself with SIGSEGV when loading a file that
    # holds the marker, and runs the real clamscan otherwise.
    real = shutil.which("clamscan")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "clamscan"
    wrapper.write_text(
        "#!/bin/sh\n"
        'prev=""\n'
        'for a in "$@"; do\n'
        '  if [ "$prev" = "-d" ] && grep -rqs CRASHME "$a"; then kill -SEGV $$; fi\n'
        '  prev="$a"\n'
        "done\n"
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    findings = inspect_rules(
        tmp_path,
        {
            "killer.ndb": f"CRASHME:0:*:{_hex('anything at all')}\n",
            "fine.ndb": f"Garden:0:*:{_hex('about gardening')}\n",
        },
        corpus=_corpus(tmp_path),
    )
    crashes = [f for f in findings if f.rule_id == "content.engine-crash"]
    assert [f.locations[0].uri for f in crashes] == ["killer.ndb"]
    assert crashes[0].evidence["signal"] == "SIGSEGV"
    assert "Garden" in by_rule(findings, "content.overbroad")
