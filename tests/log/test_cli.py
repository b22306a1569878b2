"""``clearance log ...``: the command-line contract (outputs and exit codes)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from clearance.cli import main
from clearance.keys import Signer
from clearance.log import TransparencyLog, open_checkpoint

ORIGIN = "example.com/log"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    assert main(["keys", "generate", ORIGIN, "--dir", str(tmp_path / "keys")]) == 0
    return tmp_path / "keys" / f"{ORIGIN}.key"


@pytest.fixture
def logdir(tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "log"
    assert main(["log", "init", str(directory), "--origin", ORIGIN, "--key", str(key_file)]) == 0
    capsys.readouterr()
    return directory


def _files(tmp_path: Path, *contents: bytes) -> list[str]:
    paths = []
    for i, data in enumerate(contents):
        path = tmp_path / f"entry{i}.bin"
        path.write_bytes(data)
        paths.append(str(path))
    return paths


def test_init_append_verify(
    tmp_path: Path, logdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _files(tmp_path, b"alpha", b"beta")
    assert main(["log", "append", str(logdir), *files]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"0\t{hashlib.sha256(b'alpha').hexdigest()}\n1\t{hashlib.sha256(b'beta').hexdigest()}\n"
    )
    assert main(["log", "append", str(logdir), files[0], "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["size"] == 3
    assert result["entries"][0]["index"] == 2
    assert main(["log", "verify", str(logdir)]) == 0
    assert capsys.readouterr().out.startswith("ok: 3 entries, root ")
    assert main(["log", "checkpoint", str(logdir), "--json"]) == 0
    cp = json.loads(capsys.readouterr().out)
    assert cp["size"] == 3
    opened, _ = open_checkpoint(
        cp["note"].encode(),
        Signer.parse((tmp_path / "keys" / f"{ORIGIN}.key").read_text()).verifier,
    )
    assert opened.size == 3
    assert (logdir / "public" / "checkpoint").read_text() == cp["note"]


def test_prove_and_consistency(
    tmp_path: Path, logdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["log", "append", str(logdir), *_files(tmp_path, *[b"%d" % i for i in range(9)])]) == 0
    )
    capsys.readouterr()
    assert main(["log", "prove", str(logdir), "4", "--size", "7", "--json"]) == 0
    proof = json.loads(capsys.readouterr().out)
    assert proof["size"] == 7
    assert len(proof["proof"]) == 3
    assert main(["log", "consistency", str(logdir), "3", "--json"]) == 0
    cons = json.loads(capsys.readouterr().out)
    assert cons["new_size"] == 9
    assert main(["log", "prove", str(logdir), "8"]) == 0
    assert "(verified)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["log", "prove", "{log}", "9"], 2, "no entry 9"),
        (["log", "prove", "{log}", "1", "--size", "12"], 2, "past the log size"),
        (["log", "consistency", "{log}", "5", "3"], 2, "backwards"),
        (["log", "consistency", "{log}", "2", "10"], 2, "past the log size"),
        (["log", "consistency", "{log}", "0"], 2, "empty tree"),
        (["log", "append", "{log}", "{missing}"], 2, "not found"),
        (["log", "append", "{log}", "{big}"], 2, "at most 65535 bytes"),
        (["log", "verify", "{tmp}/nolog"], 2, "not a Clearance log"),
        (["log", "init", "{log}", "--origin", ORIGIN, "--key", "{key}"], 2, "already holds a log"),
        (
            ["log", "init", "{tmp}/new", "--origin", ORIGIN, "--key", "{tmp}/entry0.bin"],
            2,
            "private key",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path,
    logdir: Path,
    key_file: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    message: str,
) -> None:
    _files(tmp_path, *[b"x"] * 9)
    assert (
        main(["log", "append", str(logdir), *[str(tmp_path / f"entry{i}.bin") for i in range(9)]])
        == 0
    )
    (tmp_path / "big.bin").write_bytes(b"b" * 65536)
    capsys.readouterr()
    before = (logdir / "public" / "checkpoint").read_bytes()
    values = {
        "log": str(logdir),
        "tmp": str(tmp_path),
        "missing": str(tmp_path / "missing.bin"),
        "big": str(tmp_path / "big.bin"),
        "key": str(key_file),
    }
    assert main([a.format(**values) for a in argv]) == code
    captured = capsys.readouterr()
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err
    assert (logdir / "public" / "checkpoint").read_bytes() == before
    assert not (tmp_path / "new" / "log.db").exists()
    with TransparencyLog.open(logdir) as log:
        assert log.size == 9


def test_corrupted_store_and_forged_checkpoint_exit_1(
    tmp_path: Path, logdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["log", "append", str(logdir), *_files(tmp_path, b"a", b"b", b"c")]) == 0
    # A forged published checkpoint (someone edits public/): verify refuses.
    public = logdir / "public" / "checkpoint"
    public.write_bytes(public.read_bytes().replace(b"\n3\n", b"\n4\n"))
    assert main(["log", "verify", str(logdir)]) == 0  # reopening republishes from the database
    capsys.readouterr()
    # A changed entry inside the database: verify refuses with exit 1.
    db = sqlite3.connect(logdir / "log.db")
    (data,) = db.execute("SELECT data FROM bundles WHERE idx = 0").fetchone()
    db.execute("UPDATE bundles SET data = ? WHERE idx = 0", (data.replace(b"b", b"B"),))
    db.commit()
    db.close()
    assert main(["log", "verify", str(logdir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("refused: ") and "does not match the entries" in err


def test_real_process_exit_codes(tmp_path: Path, logdir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    files = _files(tmp_path, b"one", b"two")
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from clearance.cli import main; sys.exit(main())",
            "log",
            "append",
            str(logdir),
            *files,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[1].startswith("1\t")
    bad = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from clearance.cli import main; sys.exit(main())",
            "log",
            "prove",
            str(logdir),
            "7",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: no entry 7 in a tree of size 2"


def test_wrong_key_and_garbage_database_exit_1(
    tmp_path: Path, logdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["log", "append", str(logdir), *_files(tmp_path, b"a")]) == 0
    capsys.readouterr()
    key = (logdir / "log.key").read_text()
    (logdir / "log.key").write_text(Signer.generate(ORIGIN).to_string() + "\n")
    assert main(["log", "append", str(logdir), *_files(tmp_path, b"b")]) == 1
    assert "not the key this log was created with" in capsys.readouterr().err
    (logdir / "log.key").write_text(key)
    for name in ("log.db-wal", "log.db-shm"):
        (logdir / name).unlink(missing_ok=True)
    (logdir / "log.db").write_bytes(b"\xff" * 4096)
    before = (logdir / "public" / "checkpoint").read_bytes()
    assert main(["log", "verify", str(logdir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("refused: ") and "log database" in err
    assert len(err.strip().splitlines()) == 1
    assert (logdir / "public" / "checkpoint").read_bytes() == before


def test_postgres_log_init_append_export_verify(
    tmp_path: Path, key_file: Path, backend: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`log init --database DSN` (or the SQLite default), then the same commands; export."""
    directory = tmp_path / "pglog"
    init = ["log", "init", str(directory), "--origin", ORIGIN, "--key", str(key_file)]
    assert main(init + (["--database", backend] if backend else [])) == 0
    assert (directory / ("log.dsn" if backend else "log.db")).is_file()
    if backend:
        assert (directory / "log.dsn").stat().st_mode & 0o777 == 0o600
        assert not (directory / "public").exists()
    assert main(["log", "append", str(directory), *_files(tmp_path, b"a", b"b", b"c")]) == 0
    assert main(["log", "verify", str(directory)]) == 0
    capsys.readouterr()
    assert main(["log", "export", str(directory), str(tmp_path / "static"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "ok": True,
        "target": str(tmp_path / "static"),
        "size": 3,
    }
    with TransparencyLog.open(directory) as log:
        assert (tmp_path / "static/checkpoint").read_bytes() == log.checkpoint().to_bytes()


def test_unreachable_database_is_one_line_exit_1(
    tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = "postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2"
    init = ["log", "init", str(tmp_path / "l"), "--origin", ORIGIN, "--key", str(key_file)]
    assert main([*init, "--database", dsn]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unavailable" in err
    assert "secret" not in err  # the password is never printed
