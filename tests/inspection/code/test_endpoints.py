from __future__ import annotations

from pathlib import Path

import pytest

from clearance.inspection.code._host_scan import find_endpoints, is_declared, normalise_declared
from clearance.inspection.code._source_diff import source_endpoints


def hosts(text: str) -> list[tuple[str, str]]:
    return [(e.kind, e.host) for e, _ in find_endpoints(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("POST https://upload.example.net/v1/docs", [("url", "upload.example.net")]),
        ("ftp://198.51.100.4/pub", [("url", "198.51.100.4")]),
        ("exfil.badhost.net", [("host", "exfil.badhost.net")]),
        ("connect 203.0.113.9 now", [("ip", "203.0.113.9")]),
        ("mail bug-reports@vendor.org", [("email", "vendor.org")]),
        ("cdn.example.co.uk", [("host", "cdn.example.co.uk")]),
        ("dns 8.8.8.8", [("ip", "8.8.8.8")]),
    ],
)
def test_finds_endpoints(text: str, expected: list[tuple[str, str]]) -> None:
    assert hosts(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "libc.so.6",
        "ld-linux-x86-64.so.2",
        "GLIBC_2.2.5",
        ".gnu.hash",
        "version 1.2.3.4",
        "v10.20.30.40",
        "1.2.3.4.5",
        "2.5.4.3",  # an X.500 OID arc, not an address
        "setup.py",
        "Makefile.am",
        "configure.ac",
        "config.h.in",
        "os.path.join",
        "self.info",
        "logger.info",
        "127.0.0.1",
        "0.0.0.0",
        "http://%s:%d/upload",
        "i32.store",
        "http://localhost:8080/",
        "user.email",
    ],
)
def test_ignores_non_endpoints(text: str) -> None:
    assert hosts(text) == []


def test_declared_matching() -> None:
    declared = normalise_declared(
        ["updates.example.com", "https://api.example.org/v1", "*.cdn.example.net", "10.0.0.1:443"]
    )
    assert is_declared("updates.example.com", declared)
    assert is_declared("api.example.org", declared)
    assert is_declared("eu.cdn.example.net", declared)
    assert is_declared("10.0.0.1", declared)
    assert not is_declared("cdn.example.net", declared)  # the wildcard covers subdomains only
    assert not is_declared("www.updates.example.com", declared)
    assert not is_declared("evil.example.com", declared)


def test_source_endpoints_from_literals_with_lines(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text(
        "import requests\n"
        "# see https://docs.vendor.com/ for help\n"
        "URL = 'https://collect.example.net/upload'\n"
        "self.example.com = 1\n"
    )
    (tmp_path / "main.c").write_text('int x;\nconst char *h = "c2.badhost.org";\n')
    (tmp_path / "settings.json").write_text('{\n  "server": "telemetry.vendor.io"\n}\n')
    (tmp_path / "README.md").write_text("Download from https://vendor.com/\n")
    found = {(e.host, rel, line) for e, rel, line, _text in source_endpoints(tmp_path)}
    assert found == {
        ("collect.example.net", "agent.py", 3),
        ("c2.badhost.org", "main.c", 2),
        ("telemetry.vendor.io", "settings.json", 2),
    }
