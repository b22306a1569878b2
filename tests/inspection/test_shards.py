"""The clean corpus scanned in shards: one report whatever the shards, and no lost shard.

Real engines throughout (yara-x, clamscan, hashlib) in the real sandbox.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from clearance.inspection import NullProgress
from clearance.inspection.base import InspectionInput
from clearance.inspection.content._orchestration import partition, shard_of
from clearance.inspection.content.clamav_engine import ClamAVEngine, ClamAVSettings
from clearance.inspection.content.hashlist_engine import HashListEngine
from clearance.inspection.content.inspector import ContentInspector
from clearance.inspection.content.yara_engine import YaraEngine, YaraSettings
from clearance.inspection.sandbox import Limits
from clearance.inspection.sarif import sarif_bytes, to_sarif
from inspection._helpers import artifact, write

RULES = {
    # Matches every "garden" file: more than the 20 kept as evidence, so which 20
    # are kept must not depend on the order the shards finish in.
    "broad.yar": 'rule Garden { strings: $a = "gardening" condition: $a }\n',
    "narrow.yar": 'rule Tool { strings: $a = "def main" condition: $a and filesize < 10KB }\n',
    "sigs.ndb": "Clearance.Test.Garden:0:*:67617264656e696e67\n",
}


def _corpus(root: Path) -> Path:
    files: dict[str, str | bytes] = {}
    for i in range(45):
        files[f"garden/{i:02d}.txt"] = f"notes {i} about gardening\n" * (i + 1)
    for i in range(12):
        files[f"tools/t{i}.py"] = f"def main():\n    return {i}\n"
    for i in range(10):
        files[f"bin/b{i}"] = bytes(range(256)) * (i + 1)
    write(root, files)
    return root


def _inspector(shards: int, workers: int = 2) -> ContentInspector:
    # Generous cost budgets: on a sample this small a machine's load can push a
    # cost over the default budget in one run and not the other, which is about
    # measuring cost, not about shards.
    return ContentInspector(
        [
            YaraEngine(YaraSettings(shards=shards, workers=workers, budget_ms_per_mib=1e4)),
            HashListEngine(),
            ClamAVEngine(ClamAVSettings(shards=shards, workers=workers, budget_ms_per_mib=1e4)),
        ]
    )


def _report(tmp: Path, tag: str, corpus: Path, inspector: ContentInspector) -> bytes:
    paths = write(tmp / "rules", dict(RULES))
    clean = corpus / "garden" / "00.txt"
    digest = hashlib.sha256(clean.read_bytes()).hexdigest()
    paths += write(tmp / "rules", {"list.sha256": f"{digest} Oops.Clean\n"})
    inp = InspectionInput(
        product="p",
        version="1",
        artifacts=tuple(artifact(p) for p in paths),
        corpus=(corpus,),
        work_dir=tmp / f"work-{tag}",
    )
    result = inspector.inspect(inp, NullProgress())
    return sarif_bytes(to_sarif(result.findings, result.engines))


def test_partition_is_by_label_digest_and_covers_every_file() -> None:
    labels = [f"/corpus/file{i}" for i in range(200)]
    sizes = [i % 17 for i in range(200)]
    parts = partition(labels, sizes, 4)
    assert sorted(i for p in parts for i in p) == list(range(200))
    for part in parts:
        shard = {shard_of(labels[i], 4) for i in part}
        assert len(shard) == 1
        # Largest first inside a shard.
        assert [sizes[i] for i in part] == sorted((sizes[i] for i in part), reverse=True)
    # A file's shard depends on its label only, not on the rest of the corpus.
    assert shard_of("/corpus/file7", 4) == shard_of("/corpus/file7", 4)
    assert [labels[i] for i in partition(labels[:50], sizes[:50], 4)[0]] == [
        labels[i] for i in parts[0] if i < 50
    ]


@pytest.mark.skipif(shutil.which("clamscan") is None, reason="needs clamav (clamscan)")
def test_one_shard_and_four_shards_give_the_same_report_bytes(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    one = _report(tmp_path, "one", corpus, _inspector(shards=1, workers=1))
    four = _report(tmp_path, "four", corpus, _inspector(shards=4, workers=2))
    assert one == four
    text = one.decode()
    # The scan really found things in every engine (the equality is not of two empty reports).
    assert "Garden" in text and "Clearance.Test.Garden" in text and "Oops.Clean" in text


def test_engine_scan_results_do_not_depend_on_shards(tmp_path: Path) -> None:
    corpus_root = _corpus(tmp_path / "corpus")
    corpus = sorted(p for p in corpus_root.rglob("*") if p.is_file())
    files = [(name, p) for name, p in zip(RULES, write(tmp_path / "r", RULES), strict=True)]
    yara_files = [(n, p) for n, p in files if n.endswith(".yar")]
    reports = []
    for shards in (1, 3, 7):
        engine = YaraEngine(YaraSettings(shards=shards))
        compiled = engine.compile(yara_files, _dir(tmp_path / f"w{shards}"), [], NullProgress())
        scan = engine.scan(compiled, yara_files, corpus, str, NullProgress())
        reports.append((scan.matches, scan.match_counts, scan.files_scanned, scan.bytes_scanned))
    assert reports[0] == reports[1] == reports[2]
    assert reports[0][1][("broad.yar", "Garden")] == 45
    assert len([m for m in reports[0][0] if m.rule_name == "Garden"]) == 20


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_a_shard_whose_child_hangs_on_a_file_is_a_finding_and_the_rest_is_kept(
    tmp_path: Path,
) -> None:
    corpus_root = _corpus(tmp_path / "corpus")
    corpus = sorted(p for p in corpus_root.rglob("*") if p.is_file())
    # Opening a FIFO with no writer blocks forever: the engine's child hangs on it.
    fifo = corpus_root / "stuck.fifo"
    os.mkfifo(fifo)
    files = [(n, p) for n, p in zip(RULES, write(tmp_path / "r", RULES), strict=True)]
    yara_files = [(n, p) for n, p in files if n.endswith(".yar")]
    settings = YaraSettings(shards=4, scan_limits=Limits(wall_seconds=6), attribute_crashes=0)
    engine = YaraEngine(settings)
    compiled = engine.compile(yara_files, _dir(tmp_path / "w"), [], NullProgress())
    scan = engine.scan(compiled, yara_files, [*corpus, fifo], str, NullProgress())
    assert [c.evidence["corpus_file"] for c in scan.crashes] == [str(fifo)]
    assert scan.crashes[0].evidence["status"] == "timeout"
    # Every other file of every shard, the hung shard's included, was scanned.
    assert scan.files_scanned == len(corpus)
    assert scan.match_counts[("broad.yar", "Garden")] == 45


def test_a_shard_whose_child_dies_before_its_first_file_is_one_finding(tmp_path: Path) -> None:
    corpus_root = _corpus(tmp_path / "corpus")
    corpus = sorted(p for p in corpus_root.rglob("*") if p.is_file())
    files = [(n, p) for n, p in zip(RULES, write(tmp_path / "r", RULES), strict=True)]
    yara_files = [(n, p) for n, p in files if n.endswith(".yar")]
    compiled = YaraEngine().compile(yara_files, _dir(tmp_path / "w"), [], NullProgress())
    # yara-x reserves ~80 MiB of address space to load compiled rules: under 120 MiB
    # the real engine cannot even load the set in the scanning child.
    settings = YaraSettings(
        shards=3, scan_limits=Limits(address_space_bytes=120 * 2**20, wall_seconds=8)
    )
    scan = YaraEngine(settings).scan(compiled, yara_files, corpus, str, NullProgress())
    assert scan.files_scanned == 0
    assert sorted(c.evidence["shard"] for c in scan.crashes) == ["1 of 3", "2 of 3", "3 of 3"]
    assert {c.uri for c in scan.crashes} == {"ruleset"}
    assert all("before its first file" in c.message for c in scan.crashes)
