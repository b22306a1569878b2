"""Distribution policies and entitlements as readable YAML, and as signed envelopes.

The policy authority and the vendor write these documents by hand, so the
commands take YAML (``2024-07-20`` dates and ``2024-07-20T00:00:00Z`` times
both work) and sign them into DSSE envelopes; every command also accepts the
signed envelope, so ``check`` and ``explain`` work on what is in the log.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from clearance.cli._common import read_text
from clearance.errors import BadInput

#: A template: the worked example of docs/policy.md (the 2024 US restriction).
POLICY_TEMPLATE = """\
# A distribution policy (docs/policy.md).  Check it with `clearance policy check`,
# try it with `clearance policy explain`, sign it with `clearance policy sign`.
name: {name}
issued: 2024-06-20                 # RFC 3339 time, or a date (midnight UTC)
# The products this policy governs, and their category; other products are
# outside it (their entitlements alone decide).
products:
  endpoint-antivirus: security-software
  threat-intelligence-feed: threat-intelligence
  cybersecurity-training: training
jurisdictions:
  - jurisdiction: US
    no_new_sales_after: 2024-07-20  # entitlements starting from here are not honoured
    no_updates_after: 2024-09-29    # no update of a restricted category from here
    grace_days: 184                 # existing customers keep updates this long...
    grace_starts: 2024-07-20        # ...from here (never past no_updates_after)
    allowed_categories: [threat-intelligence, training]
note: >-
  New sales end 30 days, updates 100 days after publication; six months of free
  updates for existing customers; threat intelligence and training stay allowed.
"""


def _plain(value: Any) -> Any:
    """YAML's dates and times as the RFC 3339 strings the wire format uses."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat()  # refused later: "has no time zone (use Z)"
        from clearance.policy._time import format_time

        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_document(path: Path, what: str, predicate_type: str) -> tuple[Any, Any]:
    """``(body, envelope or None)`` from a YAML file or a signed envelope of ``predicate_type``."""
    text = read_text(path, what)
    if text.lstrip().startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}: {what} is not valid JSON ({exc.msg})") from None
        if isinstance(raw, dict) and "payloadType" in raw:
            from clearance.attest import Envelope, statement_of

            envelope = Envelope.from_dict(raw)
            statement = statement_of(envelope, predicate_type)
            return dict(statement.predicate), envelope
        return raw, None
    import yaml

    from clearance._untrusted import load_yaml

    try:
        raw = load_yaml(text, f"{path}: {what}")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise BadInput(f"{path}: {what} is not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise BadInput(f"{path}: {what} must be a YAML mapping of fields")
    return _plain(raw), None


def with_source(path: Path, exc: BadInput) -> BadInput:
    """The same error class, its message prefixed with the file it is about."""
    message = str(exc)
    return type(exc)(message if message.startswith(str(path)) else f"{path}: {message}")


def subject_digest(body: dict[str, Any]) -> str:
    from clearance.attest import canonical_json

    return hashlib.sha256(canonical_json(body)).hexdigest()
