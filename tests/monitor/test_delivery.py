"""Alerts leave the machine: a signed webhook POST to a loopback receiver, a mail through a
real SMTP server (aiosmtpd), JSON lines on stdout; failures are kept and retried."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.helpers import World
from clearance.cli import main
from clearance.keys import Signer, generate_key_files, load_verifier
from clearance.monitor import (
    ED25519_HEADER,
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    Email,
    EmailSink,
    MonitorConfig,
    Webhook,
    WebhookSink,
    verify_ed25519,
    verify_signature,
)
from clearance.monitor.sinks import sign_body, sign_body_ed25519
from monitor.support import WebhookReceiver, monitor_for, rollout, smtp_server

SECRET = b"0123456789abcdef-shared-secret"


def _rollout_of_unreviewed(world: World) -> None:
    rel = world.release("1.0.0")
    world.append(rel.to_bytes(), rollout("started", rel.sha256))


def test_webhook_gets_a_signed_post_per_alert(world: World, tmp_path: Path) -> None:
    _rollout_of_unreviewed(world)
    with WebhookReceiver().running() as hook:
        sink = WebhookSink(Webhook(hook.url, SECRET))
        result = monitor_for(world, tmp_path / "s", sinks=[sink]).run_once()
    assert result.undelivered == {}
    [got] = hook.received
    assert verify_signature(SECRET, got.body, got.headers[SIGNATURE_HEADER])
    assert json.loads(got.body)["ruleId"] == "monitor.unapproved-rollout"


def test_attack_forged_webhook_body_fails_the_signature(world: World, tmp_path: Path) -> None:
    _rollout_of_unreviewed(world)
    with WebhookReceiver().running() as hook:
        monitor_for(
            world, tmp_path / "s", sinks=[WebhookSink(Webhook(hook.url, SECRET))]
        ).run_once()
    got = hook.received[0]
    tampered = got.body.replace(b"critical", b"info")
    assert not verify_signature(SECRET, tampered, got.headers[SIGNATURE_HEADER])
    assert not verify_signature(b"another-secret-of-16+", got.body, got.headers[SIGNATURE_HEADER])


def test_failed_delivery_is_retried_on_the_next_pass(world: World, tmp_path: Path) -> None:
    _rollout_of_unreviewed(world)
    with WebhookReceiver(fail=1).running() as hook:
        monitor = monitor_for(world, tmp_path / "s", sinks=[WebhookSink(Webhook(hook.url, SECRET))])
        first = monitor.run_once()
        assert first.undelivered and "503" in next(iter(first.undelivered.values()))
        assert hook.received == []
        second = monitor.run_once()
    assert second.alerts == () and second.undelivered == {}
    assert [a["ruleId"] for a in hook.alerts()] == ["monitor.unapproved-rollout"]


def test_mail_through_a_real_smtp_server(world: World, tmp_path: Path) -> None:
    _rollout_of_unreviewed(world)
    with smtp_server() as (port, inbox):
        sink = EmailSink(
            Email("127.0.0.1", port, "monitor@example.org", ("oncall@example.org",)),
            "log.example.org",
        )
        monitor_for(world, tmp_path / "s", sinks=[sink]).run_once()
    [mail] = inbox
    assert mail["To"] == "oncall@example.org"
    assert "1 alert(s) on log.example.org (critical)" in mail["Subject"]
    parts = list(mail.walk())
    text = next(p for p in parts if p.get_content_type() == "text/plain").get_payload(decode=True)
    assert b"monitor.unapproved-rollout" in text
    attached = next(p for p in parts if p.get_filename() == "alerts.jsonl").get_payload(decode=True)
    assert json.loads(attached.splitlines()[0])["ruleId"] == "monitor.unapproved-rollout"


def test_cli_once_config_stdout_webhook_and_mail(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _rollout_of_unreviewed(world)
    root = world.write_trust_root()
    (tmp_path / "hook.secret").write_bytes(SECRET)
    private, public = generate_key_files("monitor.example", tmp_path)
    with WebhookReceiver().running() as hook, smtp_server() as (port, inbox):
        config = tmp_path / "monitor.yaml"
        config.write_text(
            f"signing_key: {private.name}\n"
            f"webhooks:\n  - url: {hook.url}\n    secret_file: hook.secret\n"
            f"email:\n  host: 127.0.0.1\n  port: {port}\n  from: m@example.org\n  to: [o@example.org]\n"
        )
        args = [
            "monitor",
            str(world.logdir),
            "--trust-root",
            str(root),
            "--state",
            str(tmp_path / "state"),
            "--config",
            str(config),
            "--once",
        ]
        assert main(args) == 1
        lines = capsys.readouterr().out.splitlines()
        assert [json.loads(line)["ruleId"] for line in lines] == ["monitor.unapproved-rollout"]
        assert main(args) == 0  # nothing new
        assert capsys.readouterr().out == ""
    assert len(hook.received) == 1 and len(inbox) == 1
    # The receiver checks both signatures: the shared secret's and the monitor's own key's.
    [got] = hook.received
    assert verify_signature(SECRET, got.body, got.headers[SIGNATURE_HEADER])
    monitor_key = load_verifier(public)
    assert got.headers[KEY_ID_HEADER] == f"monitor.example+{monitor_key.key_id:08x}"
    assert verify_ed25519(
        monitor_key, got.body, got.headers[ED25519_HEADER], got.headers[KEY_ID_HEADER]
    )


def test_attack_forged_alert_fails_the_monitor_key_signature(world: World, tmp_path: Path) -> None:
    """Whoever holds the webhook's shared secret (every receiver does) can forge its HMAC;
    only the monitor can make its Ed25519 signature: a forged or re-signed body fails it."""
    _rollout_of_unreviewed(world)
    monitor_key = Signer.generate("monitor.example")
    with WebhookReceiver().running() as hook:
        sink = WebhookSink(Webhook(hook.url, SECRET, monitor_key))
        monitor_for(world, tmp_path / "s", sinks=[sink]).run_once()
    [got] = hook.received
    signature, keyid = got.headers[ED25519_HEADER], got.headers[KEY_ID_HEADER]
    assert verify_ed25519(monitor_key.verifier, got.body, signature, keyid)
    forged = got.body.replace(b"critical", b"info")
    assert forged != got.body
    # the forger recomputes the HMAC with the shared secret: that check passes ...
    assert verify_signature(SECRET, forged, sign_body(SECRET, forged))
    # ... the monitor's signature does not, nor does another key claiming to be the monitor's
    assert not verify_ed25519(monitor_key.verifier, forged, signature, keyid)
    impostor = Signer.generate("monitor.example")
    headers = sign_body_ed25519(impostor, forged)
    assert not verify_ed25519(
        monitor_key.verifier, forged, headers[ED25519_HEADER], headers[KEY_ID_HEADER]
    )
    assert not verify_ed25519(monitor_key.verifier, got.body, "not base64!", keyid)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("webhooks: [{url: 'ftp://x', secret_env: X}]", "url must be an http(s) URL"),
        ("webhooks: [{url: 'http://x'}]", "give secret_file or secret_env"),
        ("colour: blue", "unknown key(s) colour"),
        ("checkpoint_stale_hours: -1", "checkpoint_stale_hours must be a number"),
        ("email: {host: h, from: nobody}", "host and a from address are required"),
        ("[1, 2", "not YAML"),
        ("signing_key: missing.key", "signing_key: "),
    ],
)
def test_bad_config_is_one_line(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, message: str
) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(config)
    code = main(
        [
            "monitor",
            str(world.logdir),
            "--trust-root",
            str(world.write_trust_root()),
            "--state",
            str(tmp_path / "s"),
            "--config",
            str(path),
            "--once",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_state_of_another_log_is_refused(world: World, tmp_path: Path) -> None:
    state = tmp_path / "s"
    monitor_for(world, state).run_once()
    other = World(tmp_path / "other")
    assert (
        main(
            [
                "monitor",
                str(other.logdir),
                "--trust-root",
                str(other.write_trust_root()),
                "--state",
                str(state),
                "--once",
            ]
        )
        == 2
    )


def test_follow_mode_passes_until_stopped(world: World, tmp_path: Path) -> None:
    import threading

    _rollout_of_unreviewed(world)
    stop = threading.Event()
    monitor = monitor_for(world, tmp_path / "s", MonitorConfig(interval_seconds=0.05))
    passes: list[int] = []

    def on_pass(result: object) -> None:
        passes.append(len(getattr(result, "alerts", ())))
        if len(passes) == 1:
            rel = world.release("2.0.0")
            world.append(rel.to_bytes(), rollout("started", rel.sha256))
        if len(passes) >= 3:
            stop.set()

    monitor.follow(stop, on_pass)
    assert passes[0] == 1 and sum(passes) == 2
