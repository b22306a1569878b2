"""``content.document-hunting``: rules that look for documents rather than malicious code.

Signals, from the parsed rule:

* classification and handling markings (strong ones anywhere in a pattern;
  weak ones such as ``SECRET`` when a pattern is only the marking), in
  text, wide, hex (ASCII, UTF-16, UTF-8) and regex patterns, English and
  other languages;
* secrecy, project and personal-data keywords, and regexes that the engine
  itself shows to match personal-data shapes (social security, card, IBAN,
  e-mail, phone numbers);
* magic numbers and content of office, PDF, RTF, mail and archive formats,
  and document file extensions compared with the externals.

Strong markings are always reported; everything else only when the rule shows
no sign of executable code (an honest malicious-document rule looks for
macros, exploits, shellcode or droppers, and says so in its patterns).
"""

from __future__ import annotations

from clearance.inspection.content import analysis
from clearance.inspection.content.checks._base import CheckContext, rule_finding
from clearance.inspection.content.model import ContentRule, RulePattern
from clearance.inspection.findings import Finding, Severity


def _short(pattern: RulePattern) -> bool:
    """A format check is a short pattern (a magic or a header), not a long specific string."""
    longest = max((len(lit) for lit in analysis.pattern_texts(pattern)), default=0)
    return longest <= 40


class DocumentHuntingCheck:
    rule_id = "content.document-hunting"
    #: Reads only the parsed rules: runs in the sandboxed analysis (analysis_sandbox).
    sandboxed = True
    default_severity = Severity.HIGH
    description = "Looks for document contents (markings, keywords, personal data, formats)."

    def run(self, ctx: CheckContext) -> list[Finding]:
        out = []
        for rule in ctx.rules():
            finding = self._judge(ctx, rule)
            if finding is not None:
                out.append(finding)
        return out

    def _judge(self, ctx: CheckContext, rule: ContentRule) -> Finding | None:
        # Content signals (keywords, personal data, weak markings) are exempted only
        # when code evidence is needed on every way the condition can be true: one
        # code-like string negated or in an optional "or" branch is no exemption.
        # A bare document-format check keeps the looser test (code shown anywhere):
        # malicious-document rules routinely end in a "3 of them" fallback.
        code_anywhere = analysis.code_evidence(rule)
        code = code_anywhere if analysis.code_on_every_path(rule) else []
        marks = analysis.markings(rule)
        strong = [m for m in marks if m[2] == "strong"]
        weak = [m for m in marks if m[2] == "weak"]
        keys = analysis.keywords(rule)
        pii = sorted(
            (pid, shapes)
            for (uri, name, pid), shapes in ctx.pii_hits.items()
            if uri == rule.uri and name == rule.name
        )
        docs = analysis.document_evidence(rule)
        reasons: list[str] = []
        lines: list[int] = []
        for lit, marking, _ in strong + weak:
            reasons.append(f"{lit.pattern.identifier} looks for the marking {marking!r}")
            lines.append(lit.pattern.line)
        if not code:
            for lit, word in keys:
                reasons.append(f"{lit.pattern.identifier} looks for the keyword {word!r}")
                lines.append(lit.pattern.line)
            for pid, shapes in pii:
                reasons.append(f"{pid} matches personal data ({', '.join(shapes)})")
                lines += [p.line for p in rule.patterns if p.identifier == pid]
        if not code_anywhere:
            reasons += docs
        if strong:
            severity = Severity.CRITICAL if not code else Severity.HIGH
        elif reasons and not code:
            # Format checks plus specific strings are usually a malicious-document rule
            # whose code indicators are not in our list (medium, noted); a content signal,
            # or a rule that matches every document of a format, is high.
            has_content_signal = bool(weak or keys or pii)
            format_only = bool(docs) and all(
                any(r.startswith(f"{p.identifier} ") for r in docs)
                and _short(p)  # a long string that merely contains a format marker is specific
                for p in rule.patterns
            )
            severity = Severity.HIGH if has_content_signal or format_only else Severity.MEDIUM
        else:
            return None
        matched = [
            {"pattern": lit.pattern.identifier, "value": lit.raw[:200], "marking": marking}
            for lit, marking, _ in strong + weak
        ]
        return rule_finding(
            ctx,
            self.rule_id,
            severity,
            rule,
            f"rule {rule.name} hunts documents: {reasons[0]}"
            + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""),
            {
                "reasons": reasons,
                "markings": matched,
                "code_indicators": code_anywhere,
                "code_required_on_every_path": bool(code),
                "document_formats": docs,
            },
            [line for line in lines if line],
        )
