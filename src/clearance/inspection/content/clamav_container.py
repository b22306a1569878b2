"""ClamAV ``.cvd``/``.cld`` containers: a 512-byte header, then a tar (gzip'd for .cvd).

Header: ``ClamAV-VDB:build time:version:signatures:functionality level:MD5:
digital signature:builder:build time (seconds)``, space-padded to 512 bytes.

What the inspector checks of a container, and what it does not:

* checked: the header's form (magic, field count, numeric fields); the MD5
  in the header against the MD5 of the body (for ``.cvd``; a ``.cld`` is
  rewritten by incremental updates and ClamAV itself does not check it, so
  a mismatch there is only noted); the signature count in the header
  against the signatures actually inside; the body unpacks safely
  (:func:`clearance.inspection.archive.unpack_archive` limits);
* **not** checked: the digital signature (``dsig``), an RSA signature by
  Cisco-Talos over the MD5, verified by libclamav with the key compiled into
  it.  The inspector loads the members as loose databases, which clamscan
  does not signature-check; the container's dsig is recorded in the
  evidence.  What makes an update trustworthy here is the vendor's signed
  release and the inspection, not Talos's key (a third-party vendor cannot
  sign with it anyway).  Verification is not written because no real signed
  container is reachable to test it against (docs/inspection.md says why).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

from clearance.inspection.archive import ArchiveError, unpack_archive
from clearance.inspection.content import clamav_format
from clearance.inspection.content.engine import Diagnostic

HEADER_BYTES = 512
_MAX_BODY = 512 * 2**20


@dataclass(frozen=True)
class ContainerHeader:
    build_time: str
    version: int
    signatures: int
    functionality_level: int
    md5: str
    dsig: str
    builder: str
    build_seconds: int


class ContainerError(ValueError):
    pass


def read_header(data: bytes) -> ContainerHeader:
    """Parse the 512-byte header; :class:`ContainerError` naming the problem otherwise."""
    if len(data) < HEADER_BYTES:
        raise ContainerError(f"shorter than the {HEADER_BYTES}-byte header")
    text = data[:HEADER_BYTES].decode("latin-1").rstrip(" \x00")
    fields = text.split(":")
    if fields[0] != "ClamAV-VDB":
        raise ContainerError("header does not start with ClamAV-VDB:")
    if len(fields) < 8:
        raise ContainerError(f"header has {len(fields)} fields, expected 9")
    # The build time itself contains a colon-free form "02 Nov 2023 07-26 -0400".
    try:
        version, sigs, flevel = int(fields[2]), int(fields[3]), int(fields[4])
        seconds = int(fields[8]) if len(fields) > 8 and fields[8].strip() else 0
    except ValueError as exc:
        raise ContainerError(f"header field is not a number: {exc}") from exc
    return ContainerHeader(
        fields[1], version, sigs, flevel, fields[5], fields[6], fields[7], seconds
    )


def expand(path: Path, dest: Path) -> tuple[list[Path], list[Diagnostic]]:
    """Unpack ``path`` into ``dest``: (member databases, diagnostics about the container)."""
    uri = path.name
    data = path.read_bytes()
    diags: list[Diagnostic] = []
    try:
        header = read_header(data)
    except ContainerError as exc:
        return [], [
            Diagnostic(uri, "error", "bad_container", f"not a ClamAV container: {exc}", 0, "")
        ]
    body = data[HEADER_BYTES:]
    is_cvd = path.name.lower().endswith(".cvd")
    actual = hashlib.md5(body, usedforsecurity=False).hexdigest()
    if actual != header.md5.lower():
        diags.append(
            Diagnostic(
                uri,
                "error" if is_cvd else "warning",
                "container_md5",
                f"the header's MD5 {header.md5[:32]!r} is not the body's ({actual})"
                + ("" if is_cvd else "; ClamAV does not check it for .cld"),
                0,
                "",
            )
        )
    if body[:2] == b"\x1f\x8b":
        try:
            body = _gunzip(body)
        except (OSError, EOFError, zlib.error, ContainerError) as exc:
            return [], [
                *diags,
                Diagnostic(
                    uri, "error", "bad_container", f"body does not decompress: {exc}", 0, ""
                ),
            ]
    work = dest / "_body"
    work.mkdir(parents=True, exist_ok=True)
    tar = work / "body.tar"
    tar.write_bytes(body)
    members_dir = dest / "members"
    try:
        members = unpack_archive(tar, members_dir)
    except ArchiveError as exc:
        return [], [
            *diags,
            Diagnostic(uri, "error", "bad_container", f"body is not a safe tar: {exc}", 0, ""),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    databases = [m for m in members if clamav_format.suffix(m.name) not in ("", ".cvd", ".cld")]
    counted = sum(
        len(clamav_format.parse_database(m.name, m).rules)
        for m in databases
        if not m.name.lower().endswith((".fp", ".sfp", ".ign2", ".ign"))
    )
    if header.signatures and counted != header.signatures:
        diags.append(
            Diagnostic(
                uri,
                "warning",
                "container_count",
                f"the header announces {header.signatures} signatures, the databases inside hold {counted}",
                0,
                "",
            )
        )
    diags.append(
        Diagnostic(
            uri,
            "info",
            "container_header",
            f"version {header.version}, built {header.build_time} by {header.builder}, "
            f"functionality level {header.functionality_level}; dsig not verified by the inspector",
            0,
            f"dsig={header.dsig[:100]}",
        )
    )
    return sorted(databases), diags


def _gunzip(body: bytes) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(body)) as stream:
        out = stream.read(_MAX_BODY + 1)
    if len(out) > _MAX_BODY:
        raise ContainerError(f"body decompresses to more than {_MAX_BODY} bytes")
    return out
