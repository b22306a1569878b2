"""Release statements (``https://clearance.dev/release/v1``): what a vendor publishes.

Subjects are the artifacts (name and SHA-256).  The predicate::

    {"product": str, "version": str, "channel": str,
     "artifacts": [{"name": str, "kind": "content"|"binary"|"source", "size": int}],
     "previous": {"sha256": hex} | null,      # the previous release envelope's digest
     "endpoints": [str],                      # declared network endpoints
     "notes": str,
     "builds": {binary name: {"source": str, "command": [str], "env": {str: str},
                "output": str}},              # optional reproducibility recipes
     "evidence": [{"sha256": hex, "rules": [str]}]}  # optional: samples the detections are for

``evidence`` names, by SHA-256 only, the malware samples the release's
detections are meant to catch (the vendor deposits the files with the
inspector; the public log only ever holds their digests).  The key is
written only when the list is not empty, so older releases keep their bytes.

The artifact list and the subjects name the same files in the same order.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearance.attest import _fields
from clearance.attest.dsse import Envelope
from clearance.attest.errors import StatementFormatError
from clearance.attest.statement import RELEASE_V1, Statement, Subject, statement_of
from clearance.attest.version import Version
from clearance.keys import Signer

ARTIFACT_KINDS = ("content", "binary", "source")


@dataclass(frozen=True)
class Artifact:
    """One released file: its name (a relative path), digest, size and kind."""

    name: str
    sha256: str
    size: int
    kind: str

    def __post_init__(self) -> None:
        # Checked once, here: every artifact name admitted is a clean relative path.
        _fields.relative_path(self.name, "artifact name")
        if self.kind not in ARTIFACT_KINDS:
            raise StatementFormatError(
                f"artifact {self.name!r}: kind {self.kind!r} is not one of {', '.join(ARTIFACT_KINDS)}"
            )

    @classmethod
    def from_file(cls, path: str | Path, kind: str, name: str | None = None) -> Artifact:
        """Hash a file on disk; its name defaults to the file's base name."""
        p = Path(path)
        digest = hashlib.sha256()
        size = 0
        try:
            with p.open("rb") as stream:
                while chunk := stream.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
        except OSError as exc:
            raise StatementFormatError(f"{p}: cannot read artifact: {exc.strerror}") from None
        return cls(name or p.name, digest.hexdigest(), size, kind)


@dataclass(frozen=True)
class BuildRecipe:
    """How to rebuild a binary from a source artifact: argv, environment and output path."""

    source: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    output: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "command": list(self.command),
            "env": dict(self.env),
            "output": self.output,
        }

    @classmethod
    def from_dict(cls, value: object, what: str) -> BuildRecipe:
        raw = _fields.obj(value, what)
        command = raw.get("command")
        if not isinstance(command, list) or not command:
            raise StatementFormatError(f"{what}.command is not a non-empty list of strings")
        return cls(
            _fields.text(raw.get("source"), f"{what}.source"),
            tuple(
                _fields.text(c, f"{what}.command[{i}]", empty=True) for i, c in enumerate(command)
            ),
            _fields.str_map(raw.get("env", {}), f"{what}.env"),
            _fields.text(raw.get("output", ""), f"{what}.output", empty=True),
        )


@dataclass(frozen=True)
class Release:
    """A typed view of a release statement."""

    product: str
    version: str
    channel: str
    artifacts: tuple[Artifact, ...]
    previous: str | None = None
    endpoints: tuple[str, ...] = ()
    notes: str = ""
    builds: Mapping[str, BuildRecipe] = field(default_factory=dict)
    #: (sample SHA-256, rule names it is evidence for) -- see the module docstring.
    evidence: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        _fields.name(self.product, "release product")
        for index, (digest, rules) in enumerate(self.evidence):
            _fields.sha256(digest, f"evidence[{index}].sha256")
            for rule in rules:
                _fields.text(rule, f"evidence[{index}].rules")
        _fields.name(self.channel, "release channel")
        _ = self.parsed_version  # refuses a malformed version; kept for the version rule
        if not self.artifacts:
            raise StatementFormatError("a release needs at least one artifact")
        names = [a.name for a in self.artifacts]
        if len(set(names)) != len(names):
            raise StatementFormatError("release artifact names are not unique")
        for artifact in self.artifacts:
            if not _fields.is_sha256(artifact.sha256):
                raise StatementFormatError(f"artifact {artifact.name!r} sha256 is not a SHA-256")
        if self.previous is not None:
            _fields.sha256(self.previous, "previous release digest")
        for binary, recipe in self.builds.items():
            if binary not in names:
                raise StatementFormatError(f"build recipe for {binary!r}, which is not an artifact")
            if recipe.source not in names:
                raise StatementFormatError(
                    f"build recipe for {binary!r} names source {recipe.source!r}, not an artifact"
                )

    @functools.cached_property
    def parsed_version(self) -> Version:
        """The version, parsed once per release object: the version rule compares it at
        every admission and at every entry the verifiable index applies."""
        return Version.parse(self.version)

    def artifact(self, name: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def artifact_by_digest(self, sha256: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.sha256 == sha256), None)

    def predicate(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "product": self.product,
            "version": self.version,
            "channel": self.channel,
            "artifacts": [{"name": a.name, "kind": a.kind, "size": a.size} for a in self.artifacts],
            "previous": None if self.previous is None else {"sha256": self.previous},
            "endpoints": list(self.endpoints),
            "notes": self.notes,
            "builds": {name: recipe.to_dict() for name, recipe in sorted(self.builds.items())},
        }
        if self.evidence:
            out["evidence"] = [{"sha256": d, "rules": list(r)} for d, r in self.evidence]
        return out

    def statement(self) -> Statement:
        return Statement(
            tuple(Subject(a.name, a.sha256) for a in self.artifacts), RELEASE_V1, self.predicate()
        )

    @classmethod
    def from_statement(cls, statement: Statement) -> Release:
        """The release ``statement`` carries (read once per statement object)."""
        return statement.view(cls, cls._read)

    @classmethod
    def _read(cls, statement: Statement) -> Release:
        if statement.predicate_type != RELEASE_V1:
            raise StatementFormatError(f"statement is not a release ({RELEASE_V1})")
        p = statement.predicate
        raw_artifacts = p.get("artifacts")
        if not isinstance(raw_artifacts, list):
            raise StatementFormatError("release predicate: artifacts is not a list")
        if len(raw_artifacts) != len(statement.subjects):
            raise StatementFormatError("release: artifacts and subjects do not correspond")
        artifacts = []
        for i, (raw, subject) in enumerate(zip(raw_artifacts, statement.subjects, strict=True)):
            entry = _fields.obj(raw, f"artifacts[{i}]")
            if entry.get("name") != subject.name:
                raise StatementFormatError(f"release: artifacts[{i}] is not subject[{i}]")
            kind = _fields.text(entry.get("kind"), f"artifacts[{i}].kind")
            if kind not in ARTIFACT_KINDS:
                raise StatementFormatError(f"artifacts[{i}].kind {kind!r} is not a known kind")
            size = _fields.integer(entry.get("size"), f"artifacts[{i}].size")
            artifacts.append(Artifact(subject.name, subject.sha256, size, kind))
        previous_raw = p.get("previous")
        previous = (
            None
            if previous_raw is None
            else _fields.sha256(
                _fields.obj(previous_raw, "previous").get("sha256"), "previous.sha256"
            )
        )
        builds_raw = _fields.obj(p.get("builds", {}), "builds")
        # product, version, channel, names and digests are checked once, by __post_init__.
        return cls(
            product=p.get("product"),  # type: ignore[arg-type]
            version=p.get("version"),  # type: ignore[arg-type]
            channel=p.get("channel"),  # type: ignore[arg-type]
            artifacts=tuple(artifacts),
            previous=previous,
            endpoints=_fields.str_list(p.get("endpoints", []), "endpoints"),
            notes=_fields.text(p.get("notes", ""), "notes", empty=True),
            builds={k: BuildRecipe.from_dict(v, f"builds[{k!r}]") for k, v in builds_raw.items()},
            evidence=_evidence(p.get("evidence", [])),
        )

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> Release:
        """The release inside ``envelope`` (signatures are NOT checked here)."""
        return cls.from_statement(statement_of(envelope, RELEASE_V1))


def _evidence(raw: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(raw, list):
        raise StatementFormatError("release predicate: evidence is not a list")
    out = []
    for index, item in enumerate(raw):
        entry = _fields.obj(item, f"evidence[{index}]")
        digest = _fields.sha256(entry.get("sha256"), f"evidence[{index}].sha256")
        rules = entry.get("rules", [])
        if not isinstance(rules, list):
            raise StatementFormatError(f"evidence[{index}].rules is not a list")
        names = tuple(_fields.text(r, f"evidence[{index}].rules[{i}]") for i, r in enumerate(rules))
        out.append((digest, names))
    return tuple(out)


def create_release(
    *,
    product: str,
    version: str,
    channel: str,
    artifacts: Sequence[Artifact],
    signers: Signer | Sequence[Signer],
    previous: Envelope | None = None,
    endpoints: Sequence[str] = (),
    notes: str = "",
    builds: Mapping[str, BuildRecipe] | None = None,
    evidence: Sequence[tuple[str, Sequence[str]]] = (),
) -> Envelope:
    """Build and sign a release; with ``previous``, the version must be higher than its version."""
    previous_digest = None
    if previous is not None:
        prior = Release.from_envelope(previous)
        if prior.product != product:
            raise StatementFormatError(
                f"previous release is for product {prior.product!r}, not {product!r}"
            )
        if not Version.parse(version) > prior.parsed_version:
            raise StatementFormatError(
                f"version {version} is not higher than the previous release's {prior.version}"
            )
        previous_digest = previous.sha256
    release = Release(
        product=product,
        version=version,
        channel=channel,
        artifacts=tuple(artifacts),
        previous=previous_digest,
        endpoints=tuple(endpoints),
        notes=notes,
        builds=dict(builds or {}),
        evidence=tuple((digest, tuple(rules)) for digest, rules in evidence),
    )
    signer_list = [signers] if isinstance(signers, Signer) else list(signers)
    return release.statement().sign(signer_list)
