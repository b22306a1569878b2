"""Release and verdict statements: creation, typed views and refusal of bad fields."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from clearance.attest import (
    PAYLOAD_TYPE,
    RELEASE_V1,
    VERDICT_V1,
    Artifact,
    BuildRecipe,
    Release,
    StatementFormatError,
    Verdict,
    create_policy,
    create_release,
    create_verdict,
    statement_of,
)
from clearance.attest.policy import PolicyStatement
from clearance.keys import Signer


def _artifacts(tmp_path: Path) -> list[Artifact]:
    rules = tmp_path / "rules.yar"
    rules.write_bytes(b"rule x { condition: true }\n")
    agent = tmp_path / "agent"
    agent.write_bytes(b"\x7fELF...")
    src = tmp_path / "agent-src.tar"
    src.write_bytes(b"source")
    return [
        Artifact.from_file(rules, "content"),
        Artifact.from_file(agent, "binary"),
        Artifact.from_file(src, "source"),
    ]


def test_release_round_trip(tmp_path: Path) -> None:
    vendor = Signer.generate("vendor")
    arts = _artifacts(tmp_path)
    env = create_release(
        product="av",
        version="4.2.0",
        channel="stable",
        artifacts=arts,
        signers=[vendor],
        endpoints=["updates.example.com"],
        notes="weekly",
        builds={
            "agent": BuildRecipe(
                "agent-src.tar", ("make", "agent"), {"SOURCE_DATE_EPOCH": "0"}, "agent"
            )
        },
    )
    assert env.payload_type == PAYLOAD_TYPE
    statement = statement_of(env, RELEASE_V1)
    assert statement.to_dict()["_type"] == "https://in-toto.io/Statement/v1"
    assert (
        statement.subjects[0].sha256 == hashlib.sha256(b"rule x { condition: true }\n").hexdigest()
    )
    release = Release.from_envelope(env)
    assert release.version == "4.2.0"
    assert release.artifact("agent") == arts[1]
    assert release.artifact_by_digest(arts[2].sha256) == arts[2]
    assert release.builds["agent"].command == ("make", "agent")
    assert release.endpoints == ("updates.example.com",)
    env.verify([vendor.verifier])


def test_previous_release_must_be_lower(tmp_path: Path) -> None:
    vendor = Signer.generate("vendor")
    arts = _artifacts(tmp_path)
    first = create_release(
        product="av", version="1.9", channel="stable", artifacts=arts, signers=vendor
    )
    second = create_release(
        product="av",
        version="1.10",
        channel="stable",
        artifacts=arts,
        signers=vendor,
        previous=first,
    )
    assert Release.from_envelope(second).previous == first.sha256
    with pytest.raises(StatementFormatError, match="not higher"):
        create_release(
            product="av",
            version="1.9.0",
            channel="stable",
            artifacts=arts,
            signers=vendor,
            previous=first,
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"product": ""}, "product"),
        ({"version": "01.2"}, "version"),
        ({"channel": "a\nb"}, "channel"),
        ({"artifacts": []}, "at least one artifact"),
    ],
)
def test_bad_release_fields(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "product": "av",
        "version": "1.0",
        "channel": "stable",
        "artifacts": _artifacts(tmp_path),
        "signers": Signer.generate("v"),
    }
    args.update(kwargs)
    with pytest.raises(Exception, match=message) as info:
        create_release(**args)  # type: ignore[arg-type]
    from clearance.errors import BadInput

    assert isinstance(info.value, BadInput)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(StatementFormatError, match="kind"):
        Artifact("x", "0" * 64, 1, "firmware")


def test_verdict_round_trip(tmp_path: Path) -> None:
    vendor, inspector = Signer.generate("vendor"), Signer.generate("inspector-a")
    release = create_release(
        product="av", version="2.0", channel="beta", artifacts=_artifacts(tmp_path), signers=vendor
    )
    env = create_verdict(
        release,
        "rejected",
        signers=inspector,
        findings_summary={"content.targeting": {"high": 2}},
        sarif_sha256="ab" * 32,
        engines={"yara-x": "1.0.0"},
        inspected_at="2026-11-22T03:00:00Z",
        note="targets one organisation",
    )
    statement = statement_of(env, VERDICT_V1)
    assert statement.subjects[0].sha256 == hashlib.sha256(release.to_bytes()).hexdigest()
    verdict = Verdict.from_envelope(env)
    assert verdict.release_sha256 == release.sha256
    assert verdict.decision == "rejected" and not verdict.approved
    assert verdict.findings == {"content.targeting": {"high": 2}}
    assert verdict.inspector == "inspector-a"
    assert verdict.release_name == "av@2.0"
    env.verify([inspector.verifier])


def test_bad_verdict_fields(tmp_path: Path) -> None:
    vendor = Signer.generate("vendor")
    release = create_release(
        product="av", version="2.0", channel="beta", artifacts=_artifacts(tmp_path), signers=vendor
    )
    with pytest.raises(StatementFormatError, match="decision"):
        create_verdict(release, "maybe", signers=vendor)
    with pytest.raises(StatementFormatError, match="severity"):
        create_verdict(release, "approved", signers=vendor, findings_summary={"x": {"bad": 1}})
    with pytest.raises(StatementFormatError, match="RFC 3339"):
        create_verdict(release, "approved", signers=vendor, inspected_at="yesterday")
    with pytest.raises(StatementFormatError, match=r"expected .*release/v1"):
        Release.from_envelope(create_verdict(release, "approved", signers=vendor))


def test_policy_placeholder() -> None:
    authority = Signer.generate("regulator")
    env = create_policy({"jurisdictions": {"XX": "deny"}}, authority)
    assert PolicyStatement.from_envelope(env).predicate == {"jurisdictions": {"XX": "deny"}}
    env.verify([authority.verifier])


def test_release_evidence_names_samples_by_digest_only(tmp_path: Path) -> None:
    vendor = Signer.generate("vendor")
    sample = hashlib.sha256(b"malware sample").hexdigest()
    env = create_release(
        product="av",
        version="1.0.0",
        channel="stable",
        artifacts=_artifacts(tmp_path),
        signers=[vendor],
        evidence=[(sample, ["{HEX}php.shell.1", "Dropper"])],
    )
    release = Release.from_envelope(env)
    assert release.evidence == ((sample, ("{HEX}php.shell.1", "Dropper")),)
    plain = create_release(
        product="av",
        version="1.0.0",
        channel="stable",
        artifacts=_artifacts(tmp_path),
        signers=[vendor],
    )
    assert "evidence" not in statement_of(plain, RELEASE_V1).predicate
    with pytest.raises(StatementFormatError, match=r"evidence\[0\].sha256"):
        create_release(
            product="av",
            version="1.0.0",
            channel="stable",
            artifacts=_artifacts(tmp_path),
            signers=[vendor],
            evidence=[("not-a-digest", ["x"])],
        )


def test_a_statement_is_read_as_a_release_once_and_a_bad_one_refused_every_time(
    tmp_path: Path,
) -> None:
    """The gateway's checks, its index and the verifiable index all ask one submission's
    statement for its release: it is read once.  A statement that is no release is
    refused at every asking, not remembered as something else."""
    signer = Signer.generate("vendor")
    envelope = create_release(
        product="av", version="1.0.0", channel="stable", artifacts=_artifacts(tmp_path), signers=signer
    )
    statement = statement_of(envelope)
    first = Release.from_statement(statement)
    assert Release.from_statement(statement) is first
    assert Release.from_statement(statement_of(envelope)) == first  # another object: equal
    for _ in range(2):
        with pytest.raises(StatementFormatError, match="not a verdict"):
            Verdict.from_statement(statement)


def test_an_envelope_changed_by_replace_is_named_by_its_own_bytes(tmp_path: Path) -> None:
    """An envelope keeps its canonical bytes and digest once computed; a copy with other
    signatures (a stripped or swapped signature) must not inherit its original's name."""
    import dataclasses

    signer = Signer.generate("vendor")
    envelope = create_release(
        product="av", version="1.0.0", channel="stable", artifacts=_artifacts(tmp_path), signers=signer
    )
    name = envelope.sha256
    stripped = dataclasses.replace(envelope, signatures=())
    assert stripped.sha256 == hashlib.sha256(stripped.to_bytes()).hexdigest() != name
    assert envelope.sha256 == name == hashlib.sha256(envelope.to_bytes()).hexdigest()
