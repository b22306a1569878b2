"""Where alerts go: stdout (JSON lines), webhooks (signed HTTP POST), e-mail (SMTP).

A webhook receives one POST per alert, body = the alert's canonical JSON, with
``X-Clearance-Signature: sha256=<hex HMAC-SHA256 of the body under the shared secret>``
and ``X-Clearance-Alert: <key>`` (receivers drop repeats by key).  A receiver checks the
signature with :func:`verify_signature`.  When the monitor has its own key
(``signing_key``), the POST also carries ``X-Clearance-Signature-Ed25519: <base64
Ed25519 signature>`` over the DSSE pre-authentication encoding of the body (payload type
:data:`ALERT_PAYLOAD_TYPE`, so the signature cannot be replayed as any other signed
object) and ``X-Clearance-Key-Id: <name+keyhash>``; :func:`verify_ed25519` checks it with
the monitor's public key only.  A failed delivery raises
:class:`~clearance.monitor.errors.DeliveryFailed`; the alert stays queued in the state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import smtplib
import ssl
import sys
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Protocol, TextIO

import httpx

from clearance.attest.dsse import key_id, pae
from clearance.keys import Signer, Verifier
from clearance.monitor.config import Email, Webhook
from clearance.monitor.errors import DeliveryFailed
from clearance.monitor.rules import Alert

SIGNATURE_HEADER = "X-Clearance-Signature"
ALERT_HEADER = "X-Clearance-Alert"
ED25519_HEADER = "X-Clearance-Signature-Ed25519"
KEY_ID_HEADER = "X-Clearance-Key-Id"
#: What the Ed25519 signature is over: PAE(ALERT_PAYLOAD_TYPE, body), as DSSE signs.
ALERT_PAYLOAD_TYPE = "application/vnd.clearance.monitor-alert+json"


class Sink(Protocol):
    #: Stable name under which deliveries are recorded in the state.
    name: str

    def send(self, alerts: Sequence[Alert]) -> None: ...


class StdoutSink:
    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, alerts: Sequence[Alert]) -> None:
        stream = self._stream or sys.stdout
        for alert in alerts:
            stream.write(alert.to_bytes().decode() + "\n")
        stream.flush()


def sign_body(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign_body(secret, body), header)


def sign_body_ed25519(signer: Signer, body: bytes) -> dict[str, str]:
    """The two headers of the monitor's own signature on ``body``."""
    signature = signer.sign(pae(ALERT_PAYLOAD_TYPE, body))
    return {
        ED25519_HEADER: base64.b64encode(signature).decode(),
        KEY_ID_HEADER: key_id(signer.verifier),
    }


def verify_ed25519(monitor_key: Verifier, body: bytes, signature: str, keyid: str) -> bool:
    """True when ``signature`` (the header's base64) is ``monitor_key``'s over ``body`` and
    ``keyid`` names that key (a receiver trusting several monitors picks the key by id)."""
    if keyid != key_id(monitor_key):
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    return monitor_key.verify(pae(ALERT_PAYLOAD_TYPE, body), raw)


class WebhookSink:
    def __init__(self, hook: Webhook, client: httpx.Client | None = None) -> None:
        self._hook = hook
        self._client = client or httpx.Client(timeout=10.0)
        self.name = f"webhook:{hook.url}"

    def send(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            body = alert.to_bytes()
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign_body(self._hook.secret, body),
                ALERT_HEADER: alert.key,
            }
            if self._hook.signer is not None:
                headers.update(sign_body_ed25519(self._hook.signer, body))
            try:
                response = self._client.post(self._hook.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise DeliveryFailed(f"webhook {self._hook.url}: {exc}") from None
            if not 200 <= response.status_code < 300:
                raise DeliveryFailed(f"webhook {self._hook.url}: HTTP {response.status_code}")


def render_mail(
    alerts: Sequence[Alert], origin: str, sender: str, to: Sequence[str]
) -> EmailMessage:
    worst = max(a.severity for a in alerts)
    msg = EmailMessage()
    msg["Subject"] = f"[clearance monitor] {len(alerts)} alert(s) on {origin} ({worst.label})"
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    lines = [f"The Clearance monitor of {origin} raised {len(alerts)} alert(s):", ""]
    for a in alerts:
        where = "" if a.entry_index is None else f" (entry {a.entry_index})"
        lines.append(f"- [{a.severity.label}] {a.rule_id}{where}: {a.message}")
    msg.set_content("\n".join(lines) + "\n")
    msg.add_attachment(
        b"\n".join(a.to_bytes() for a in alerts) + b"\n",
        maintype="application",
        subtype="x-ndjson",
        filename="alerts.jsonl",
    )
    return msg


class EmailSink:
    def __init__(self, config: Email, origin: str) -> None:
        self._config = config
        self._origin = origin
        self.name = f"email:{config.host}:{config.port}"

    def send(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        c = self._config
        msg = render_mail(alerts, self._origin, c.sender, c.recipients)
        try:
            with smtplib.SMTP(c.host, c.port, timeout=15) as smtp:
                if c.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if c.username is not None and c.password is not None:
                    smtp.login(c.username, c.password)
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"mail to {c.host}:{c.port}: {exc}") from None
