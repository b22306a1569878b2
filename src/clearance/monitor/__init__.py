"""The monitor: follows the log, verifies every checkpoint and entry (by replaying it with
:mod:`clearance.audit`), and raises alerts with stable ids to stdout, webhooks and e-mail."""

from clearance.monitor.config import Email, MonitorConfig, Webhook
from clearance.monitor.errors import DeliveryFailed, MonitorInputError
from clearance.monitor.monitor import Monitor, MonitorOptions, PassResult
from clearance.monitor.rules import MONITOR_RULES, Alert, MonitorRule
from clearance.monitor.sinks import (
    ED25519_HEADER,
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    EmailSink,
    Sink,
    StdoutSink,
    WebhookSink,
    verify_ed25519,
    verify_signature,
)

__all__ = [
    "ED25519_HEADER",
    "KEY_ID_HEADER",
    "MONITOR_RULES",
    "SIGNATURE_HEADER",
    "Alert",
    "DeliveryFailed",
    "Email",
    "EmailSink",
    "Monitor",
    "MonitorConfig",
    "MonitorInputError",
    "MonitorOptions",
    "MonitorRule",
    "PassResult",
    "Sink",
    "StdoutSink",
    "Webhook",
    "WebhookSink",
    "verify_ed25519",
    "verify_signature",
]
