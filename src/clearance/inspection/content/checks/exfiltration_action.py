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

_FALSE = frozenset({"", "false", "no", "0", "none", "off", "never", "disabled"})
#: Verbs that ask for data to leave the machine, as whole words of a key or value.
_SEND_VERBS = frozenset(
    {
        "upload",
        "uploads",
        "send",
        "forward",
        "share",
        "submit",
        "collect",
        "exfil",
        "exfiltrate",
        "transmit",
        "push",
        "sync",
        "mirror",
        "harvest",
        "grab",
        "steal",
        "retrieve",
        "acquire",
        "escalate",
    }
)
#: Where data would go: a value naming one of these with a send verb nearby asks to send.
_DESTINATIONS = frozenset({"cloud", "server", "remote", "collector", "bucket", "s3", "sandbox"})
_URL = re.compile(r"(?i)\b(?:https?|ftps?|sftp|s3|wss?)://")
#: A value of at most this many words is a setting, not prose; a longer value asks
#: only when it starts with the verb ("upload to ..."), as an instruction does.
_SETTING_WORDS = 3


def _words(text: str) -> list[str]:
    """Lower-case words of a key or value: snake_case, kebab-case and camelCase split."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def _is_true(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in _FALSE


def _asks_to_send(key: str, value: object) -> str | None:
    """Why this key/value asks to send what matched, judged by meaning, not key name."""
    if not _is_true(value):
        return None
    text = str(value)
    key_words = set(_words(key))
    value_words = _words(text)
    if str(value).strip().lower().startswith("tlp"):
        return None  # traffic-light sharing labels describe the rule, not an action
    if key_words & _SEND_VERBS:
        return f"{key} = {value!r} (the key asks to send)"
    setting = len(value_words) <= _SETTING_WORDS
    verbs = set(value_words if setting else value_words[:1]) & _SEND_VERBS
    if verbs:
        return f"{key} = {value!r} (asks to {sorted(verbs)[0]})"
    if setting and set(value_words) & _DESTINATIONS and key_words & _DESTINATIONS:
        return f"{key} = {value!r} (names a destination)"
    return None


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
            continue
        reason = _asks_to_send(key, value)
        if reason is not None:
            asks.append(reason)
        elif _URL.search(str(value)) and set(_words(key)) & {"destination", "dest", "target", "to"}:
            asks.append(f"{key} = {value!r} (a destination address)")
    return asks


class ExfiltrationActionCheck:
    rule_id = "content.exfiltration-action"
    #: Reads only the parsed rules: runs in the sandboxed analysis (analysis_sandbox).
    sandboxed = True
    default_severity = Severity.CRITICAL
    description = "Declares an upload / collect action on what is not malware."

    def run(self, ctx: CheckContext) -> list[Finding]:
        out = []
        for rule in ctx.rules():
            asks = requested_actions(rule)
            if not asks:
                continue
            if analysis.code_on_every_path(rule):
                continue
            code = analysis.code_evidence(rule)
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
        key = stripped.split("=", 1)[0].strip()
        if key in lexicon.ACTION_KEYS or any(
            _asks_to_send(k, v) for k, v in rule.metadata if k.lower() == key
        ):
            return number
    return 0
