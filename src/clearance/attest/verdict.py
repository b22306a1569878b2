"""Verdict statements (``https://clearance.dev/verdict/v1``): an inspector's decision on a release.

The single subject is the release envelope: name ``<product>@<version>``,
digest the SHA-256 of the release envelope's RFC 8785 bytes (exactly the
bytes that are logged).  The predicate::

    {"decision": "approved"|"rejected"|"needs-review",
     "release": {"product": str, "version": str, "channel": str},
     "findings": {ruleId: {severity: count}},
     "sarif": {"sha256": hex} | null,
     "engines": {name: version},
     "inspectedAt": RFC 3339 UTC time, "inspector": str, "note": str}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clearance.attest import _fields
from clearance.attest.dsse import Envelope
from clearance.attest.errors import StatementFormatError
from clearance.attest.release import Release
from clearance.attest.statement import VERDICT_V1, Statement, Subject, statement_of
from clearance.keys import Signer

DECISIONS = ("approved", "rejected", "needs-review")
APPROVED, REJECTED, NEEDS_REVIEW = DECISIONS
SEVERITIES = ("info", "low", "medium", "high", "critical")


def rfc3339_now() -> str:
    """The current UTC time, to the second, as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_time(value: str) -> str:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise StatementFormatError(f"inspectedAt {value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None or "T" not in value:
        raise StatementFormatError(f"inspectedAt {value!r} needs a date, 'T', time and zone")
    return value


def _check_findings(value: object) -> dict[str, dict[str, int]]:
    raw = _fields.obj(value, "findings")
    # Messages are only built on failure: this runs for every verdict a client verifies.
    for rule_id, by_severity in raw.items():
        if not isinstance(by_severity, dict):
            raise StatementFormatError(f"findings[{rule_id!r}] is not a JSON object")
        for severity, count in by_severity.items():
            if severity not in SEVERITIES:
                raise StatementFormatError(
                    f"findings[{rule_id!r}]: severity {severity!r} is not one of "
                    f"{', '.join(SEVERITIES)}"
                )
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise StatementFormatError(
                    f"findings[{rule_id!r}][{severity!r}] is not a non-negative integer"
                )
        _fields.name(rule_id, "findings ruleId")
    return raw


@dataclass(frozen=True)
class Verdict:
    """A typed view of a verdict statement."""

    release_sha256: str
    release_name: str
    decision: str
    product: str
    version: str
    channel: str
    findings: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    sarif_sha256: str | None = None
    engines: Mapping[str, str] = field(default_factory=dict)
    inspected_at: str = ""
    inspector: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise StatementFormatError(
                f"decision {self.decision!r} is not one of {', '.join(DECISIONS)}"
            )
        _fields.sha256(self.release_sha256, "verdict subject digest")
        if self.sarif_sha256 is not None:
            _fields.sha256(self.sarif_sha256, "sarif sha256")
        _check_time(self.inspected_at)
        _fields.name(self.inspector, "inspector")
        _check_findings(self.findings)

    @property
    def approved(self) -> bool:
        return self.decision == APPROVED

    def predicate(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "release": {"product": self.product, "version": self.version, "channel": self.channel},
            "findings": {k: dict(v) for k, v in sorted(self.findings.items())},
            "sarif": None if self.sarif_sha256 is None else {"sha256": self.sarif_sha256},
            "engines": dict(self.engines),
            "inspectedAt": self.inspected_at,
            "inspector": self.inspector,
            "note": self.note,
        }

    def statement(self) -> Statement:
        return Statement(
            (Subject(self.release_name, self.release_sha256),), VERDICT_V1, self.predicate()
        )

    @classmethod
    def from_statement(cls, statement: Statement) -> Verdict:
        """The verdict ``statement`` carries (read once per statement object)."""
        return statement.view(cls, cls._read)

    @classmethod
    def _read(cls, statement: Statement) -> Verdict:
        if statement.predicate_type != VERDICT_V1:
            raise StatementFormatError(f"statement is not a verdict ({VERDICT_V1})")
        if len(statement.subjects) != 1:
            raise StatementFormatError("a verdict has exactly one subject, the release envelope")
        subject = statement.subjects[0]
        p = statement.predicate
        release = _fields.obj(p.get("release"), "verdict release")
        sarif_raw = p.get("sarif")
        sarif = (
            None
            if sarif_raw is None
            else _fields.sha256(_fields.obj(sarif_raw, "sarif").get("sha256"), "sarif.sha256")
        )
        return cls(
            release_sha256=subject.sha256,
            release_name=subject.name,
            decision=_fields.text(p.get("decision"), "decision"),
            product=_fields.name(release.get("product"), "verdict release product"),
            version=_fields.name(release.get("version"), "verdict release version"),
            channel=_fields.name(release.get("channel"), "verdict release channel"),
            # Checked once, by __post_init__.
            findings=_fields.obj(p.get("findings", {}), "findings"),
            sarif_sha256=sarif,
            engines=_fields.str_map(p.get("engines", {}), "engines"),
            inspected_at=_fields.text(p.get("inspectedAt"), "inspectedAt"),
            inspector=_fields.text(p.get("inspector"), "inspector"),
            note=_fields.text(p.get("note", ""), "note", empty=True),
        )

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> Verdict:
        """The verdict inside ``envelope`` (signatures are NOT checked here)."""
        return cls.from_statement(statement_of(envelope, VERDICT_V1))


def create_verdict(
    release_envelope: Envelope,
    decision: str,
    *,
    signers: Signer | Sequence[Signer],
    findings_summary: Mapping[str, Mapping[str, int]] | None = None,
    sarif_sha256: str | None = None,
    engines: Mapping[str, str] | None = None,
    inspected_at: str | None = None,
    inspector: str | None = None,
    note: str = "",
) -> Envelope:
    """Sign a verdict on ``release_envelope``; the inspector name defaults to the first key's name."""
    signer_list = [signers] if isinstance(signers, Signer) else list(signers)
    if not signer_list:
        raise StatementFormatError("a verdict needs at least one signer")
    release = Release.from_envelope(release_envelope)
    verdict = Verdict(
        release_sha256=release_envelope.sha256,
        release_name=f"{release.product}@{release.version}",
        decision=decision,
        product=release.product,
        version=release.version,
        channel=release.channel,
        findings={k: dict(v) for k, v in (findings_summary or {}).items()},
        sarif_sha256=sarif_sha256,
        engines=dict(engines or {}),
        inspected_at=inspected_at or rfc3339_now(),
        inspector=inspector or signer_list[0].name,
        note=note,
    )
    return verdict.statement().sign(signer_list)
