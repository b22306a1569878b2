"""Issue 12, case 9: public IPv4 addresses with small first octets are undeclared endpoints
(4.2.2.2, 3.5.140.2, 5.9.100.4), while version and section numbers do not flood the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearance.inspection.base import Artifact
from clearance.inspection.code import endpoints as finder
from clearance.inspection.code._host_scan import find_endpoints


def _ips(text: str) -> list[str]:
    return [e.host for e, _ in find_endpoints(text) if e.kind in ("ip", "url")]


@pytest.mark.parametrize(
    "text",
    [
        "resolver 4.2.2.2",
        'connect("3.5.140.2", 443)',
        "upload=5.9.100.4:8443",
        "http://5.9.100.4/beacon",
        "9.9.9.9",
    ],
)
def test_case9_public_ipv4_with_small_octets_is_reported(text: str) -> None:
    assert _ips(text), text


@pytest.mark.parametrize(
    "text",
    [
        "version 3.5.2.1",
        "v4.2.2.2",
        "(RFC 4880, Section 5.2.3.10)",
        "HTTP/2 (RFC7540 8.1.2.4)",
        "ECMA-262 Edition 14 Section 21.4.2.1",
        "OID 2.5.29.17",
        "1.3.6.1",
        "dpkg 1.4.1.17",
        "socat 1.7.4.4",
        "0.1.2.3",
        "libfoo.so.3.5.2.1",
        "GLIBC_2.3.4.5",
    ],
)
def test_case9_version_and_section_numbers_are_not_endpoints(text: str) -> None:
    assert _ips(text) == [], text


def test_case9_undeclared_small_octet_address_in_a_binary_is_a_finding(tmp_path: Path) -> None:
    binary = tmp_path / "agent"
    binary.write_bytes(b"\x00" * 64 + b"dns=4.2.2.2\x00" + b"c2 5.9.100.4\x00" + b"\x00" * 64)
    artifact = Artifact("agent", "binary", "0" * 64, binary.stat().st_size, binary)
    hosts = {endpoint.host for endpoint, _ in finder.binary_endpoints(artifact)}
    assert {"4.2.2.2", "5.9.100.4"} <= hosts
