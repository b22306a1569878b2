"""``content.exfiltration-action``: metadata asking the product to upload what matched.

The metadata convention a vendor must follow (docs/inspection.md): a rule's
response is declared in the ``action`` meta key (also read: ``actions``,
``response``, ``on_match``), as one or more words from the local actions
(alert, report, log, quarantine, block, kill, delete...).  Any other action
word, and any other meta key whose name asks for data to leave the machine
(``upload``, ``collect``, ``submit``, ``exfil``...), is treated as a request
to send the matched file away.  That is reported unless the rule is clearly
about executable code: uploading a malware sample is normal, uploading a
document is not.
"""

from __future__ import annotations

import re

from clearance.inspection.content import analysis, lexicon
from clearance.inspection.content.checks._base import CheckContext, rule_finding
from clearance.inspection.content.model import ContentRule
from clearance.inspection.findings import Finding, Severity

_KEY_WORDS = (
    "upload",
    "collect",
    "submit",
    "exfil",
    "transmit",
    "harvest",
    "retriev",
    "grab",
    "steal",
    "send_",
    "send",
)
_FALSE = frozenset({"", "false", "no", "0", "none", "off", "never"})


def _is_true(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in _FALSE


def requested_actions(rule: ContentRule) -> list[str]:
    """What the metadata asks to do with matches, beyond keeping them local."""
    asks = []
    for key, value in rule.metadata:
        low = key.lower()
        if low in lexicon.ACTION_KEYS:
            for word in re.split(r"[\s,;|+/]+", str(value).lower()):
                if not word or word in lexicon.LOCAL_ACTIONS:
                    continue
                if any(w in word for w in lexicon.EXFIL_WORDS):
                    asks.append(f"{key} = {word!r}")
                else:
                    asks.append(f"{key} = {word!r} (unknown action, treated as collection)")
        elif any(w in low for w in _KEY_WORDS) and _is_true(value):
            asks.append(f"{key} = {value!r} (action key outside the convention)")
    return asks


class ExfiltrationActionCheck:
    rule_id = "content.exfiltration-action"
    default_severity = Severity.CRITICAL
    description = "Declares an upload / collect action on what is not malware."

    def run(self, ctx: CheckContext) -> list[Finding]:
        out = []
        for rule in ctx.rules():
            asks = requested_actions(rule)
            if not asks:
                continue
            code = analysis.code_evidence(rule)
            if code:
                continue
            out.append(
                rule_finding(
                    ctx,
                    self.rule_id,
                    self.default_severity,
                    rule,
                    f"rule {rule.name} asks to send what it matched ({asks[0]}) "
                    "and shows no sign of being about executable code",
                    {"actions": asks, "code_indicators": code},
                    [_meta_line(ctx, rule)],
                )
            )
        return out


def _meta_line(ctx: CheckContext, rule: ContentRule) -> int:
    f = ctx.file(rule.uri)
    if f is None:
        return 0
    lines = f.text.splitlines()
    for number in range(rule.start_line, min(rule.end_line, len(lines)) + 1):
        stripped = lines[number - 1].strip().lower()
        if any(stripped.startswith(k) for k in lexicon.ACTION_KEYS) or any(
            stripped.startswith(w) for w in _KEY_WORDS
        ):
            return number
    return 0
