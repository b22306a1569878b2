"""``content.targeting``: conditions that depend on who or where the scanned machine is.

Inside a file scan the only windows onto the machine are the external
variables and the scan date.  Reported:

* externals that are not the standard six (``hostname``, ``username``,
  ``domain``, ``country``...): the vendor's product would feed them the
  machine's identity (HIGH when the name says so, MEDIUM otherwise);
* ``owner`` compared with a particular account (not root/SYSTEM...);
* ``filepath``/``filename`` literals naming one user's profile
  (``C:\\Users\\jdoe\\``, ``/home/jdoe/``), a host (``\\\\HOST\\share``) or a
  network address;
* ``time.now()`` (a rule that fires only after a date);
* patterns naming one organisation's network, people or machines: internal
  hosts and domains, private addresses, shares, profiles, SIDs, serial
  numbers, hardware addresses, machine GUIDs, its legal name
  (:mod:`.identity`, :mod:`.org_software`);
* PE version information and in-house DLL imports of one organisation's
  software with no malware evidence (:mod:`.org_software`).

A path condition alone is not targeting: honest rules use ``filepath
contains "Thunderbird"`` and the like hundreds of times.
"""

from __future__ import annotations

import re

from clearance.inspection.content import analysis, identity, lexicon, org_software, yara_terms
from clearance.inspection.content.checks._base import CheckContext, rule_finding
from clearance.inspection.content.model import ContentRule
from clearance.inspection.findings import Finding, Severity

_PROFILE = re.compile(
    r"(?:users|documents and settings|home)(?:\\\\|\\|/)+([^\\/\"*?()\[\]|.+{}^$]+)",
    re.IGNORECASE,
)
_UNC = re.compile(r"^/?(?:\\\\)+([A-Za-z0-9_.-]+)\\")
_IPV4 = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.")


def _condition_lines(ctx: CheckContext, rule: ContentRule) -> list[int]:
    """Lines of the rule's condition section, to highlight in the report."""
    f = ctx.file(rule.uri)
    if f is None:
        return []
    lines = f.lines or tuple(f.text.splitlines())
    out: list[int] = []
    for number in range(rule.start_line, min(rule.end_line, len(lines)) + 1):
        text = lines[number - 1]
        if (out or "condition:" in text) and text.strip() not in ("", "}"):
            out.append(number)
    return out


class TargetingCheck:
    rule_id = "content.targeting"
    #: Reads only the parsed rules: runs in the sandboxed analysis (analysis_sandbox).
    sandboxed = True
    default_severity = Severity.HIGH
    description = "Depends on the identity of a host, user, organisation, network or region."

    def run(self, ctx: CheckContext) -> list[Finding]:
        names = ctx.rule_names()
        out = []
        for rule in ctx.rules():
            reasons, severity = self._reasons(rule, names)
            if reasons:
                out.append(
                    rule_finding(
                        ctx,
                        self.rule_id,
                        severity,
                        rule,
                        f"rule {rule.name} targets particular machines: {reasons[0]}"
                        + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""),
                        {"reasons": reasons, "condition": rule.condition[:1000]},
                        _condition_lines(ctx, rule),
                    )
                )
        return out

    def _reasons(self, rule: ContentRule, names: frozenset[str]) -> tuple[list[str], Severity]:
        reasons: list[str] = []
        severity = Severity.MEDIUM
        yara = rule.engine == "yara"  # externals and conditions exist only in YARA
        for ident in sorted(yara_terms.bare_identifiers(rule, names) if yara else ()):
            if ident in lexicon.STANDARD_EXTERNALS:
                continue
            parts = re.split(r"_|(?<=[a-z])(?=[A-Z])", ident.lower())
            if any(w in parts or ident.lower().startswith(w) for w in lexicon.IDENTITY_WORDS):
                reasons.append(
                    f"uses the non-standard external {ident!r}, named after machine identity"
                )
                severity = Severity.HIGH
            else:
                reasons.append(f"uses the non-standard external {ident!r}")
        for var, op, literal in yara_terms.external_comparisons(rule) if yara else ():
            if var == "owner" and literal.strip("/").lower() not in lexicon.SYSTEM_OWNERS:
                reasons.append(f"compares owner {op} {literal!r} (a particular account)")
                severity = Severity.HIGH
            if var in ("filepath", "filename"):
                for user in _PROFILE.findall(literal):
                    if user.strip().lower() not in lexicon.GENERIC_PROFILES and not user.startswith(
                        "%"
                    ):
                        reasons.append(f"{var} {op} {literal!r} names the profile of user {user!r}")
                        severity = Severity.HIGH
                        break
                unc = _UNC.match(literal)
                if unc:
                    reasons.append(f"{var} {op} {literal!r} names the host {unc.group(1)!r}")
                    severity = Severity.HIGH
                if _IPV4.search(literal):
                    reasons.append(f"{var} {op} {literal!r} names a network address")
                    severity = Severity.HIGH
        # An internal name inside an implant is a legitimate indicator (its C2 on the
        # victim's network, its author's profile in a PDB path): no finding when code is
        # required on every path, a warning when code shows in some branch, an error
        # when nothing shows code (the rule looks for one organisation's own files).
        named = identity.identity_reasons(rule) + identity.serial_reasons(rule)
        named += org_software.org_name_literals(rule)
        if named and not analysis.code_on_every_path(rule):
            reasons += [reason for reason, _line in named]
            if not analysis.code_evidence(rule):
                severity = Severity.HIGH
        # Version information and imports of one organisation's software: the PE module is
        # code evidence by itself, so these have their own test (see org_software).
        chosen = org_software.org_software_reasons(rule)
        if chosen:
            reasons += chosen
            severity = Severity.HIGH
        if any(t in ("time.now", "time.now()") for t in rule.condition_terms):
            reasons.append("depends on the scan date (time.now)")
        return reasons, severity
