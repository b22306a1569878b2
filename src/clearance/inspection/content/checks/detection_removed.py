"""``content.detection-removed``: with a previous release, rules removed or made narrower.

Rules are matched by name across releases.  Reported for review:
removed rules; rules with fewer patterns; rules whose condition became
stricter (a higher count in ``N of``, ``any of`` -> ``all of``, more
``and``-ed clauses, a lower ``filesize`` bound); a lower ``score``.
Other condition changes are reported at low severity so a person looks.
"""

from __future__ import annotations

import re

from clearance.inspection.content.checks._base import CheckContext, file_finding, rule_finding
from clearance.inspection.content.model import ContentRule
from clearance.inspection.findings import Finding, Severity

_SIZE = re.compile(r"^(\d+)(KB|MB)?$", re.IGNORECASE)


def _quantifiers(terms: tuple[str, ...]) -> list[float]:
    out = []
    for i, term in enumerate(terms[:-1]):
        if terms[i + 1] == "of":
            if term == "all":
                out.append(float("inf"))
            elif term == "any":
                out.append(1.0)
            elif term.isdigit():
                out.append(float(term))
    return out


def _size_bounds(terms: tuple[str, ...]) -> list[int]:
    out = []
    for i in range(len(terms) - 2):
        if terms[i] == "filesize" and terms[i + 1] in ("<", "<="):
            m = _SIZE.match(terms[i + 2])
            if m:
                unit = {"KB": 1024, "MB": 2**20}.get((m.group(2) or "").upper(), 1)
                out.append(int(m.group(1)) * unit)
    return out


def _score(rule: ContentRule) -> float | None:
    for value in rule.meta_values("score"):
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return None


def narrowing(old: ContentRule, new: ContentRule) -> tuple[list[str], bool]:
    """(reasons, definitely_narrower) comparing one rule across releases."""
    reasons: list[str] = []
    narrower = False
    if "private" in new.scopes and "private" not in old.scopes:
        # Same name, same patterns: but a private rule never reports a match.
        reasons.append("the rule was made private: its matches are no longer reported")
        narrower = True
    old_ids = {p.identifier: p for p in old.patterns}
    new_ids = {p.identifier: p for p in new.patterns}
    gone = sorted(set(old_ids) - set(new_ids))
    if len(new.patterns) < len(old.patterns) or gone:
        reasons.append(
            f"patterns went from {len(old.patterns)} to {len(new.patterns)}"
            + (f" (removed {', '.join(gone)})" if gone else "")
        )
        narrower = True
    changed = sorted(
        i
        for i in set(old_ids) & set(new_ids)
        if old_ids[i].value != new_ids[i].value or old_ids[i].modifiers != new_ids[i].modifiers
    )
    if changed:
        reasons.append(f"patterns changed: {', '.join(changed)}")
    if old.condition_terms != new.condition_terms:
        oq, nq = _quantifiers(old.condition_terms), _quantifiers(new.condition_terms)
        if len(oq) == len(nq) and any(n > o for o, n in zip(oq, nq, strict=True)):
            reasons.append("the condition requires more patterns to match")
            narrower = True
        os_, ns = _size_bounds(old.condition_terms), _size_bounds(new.condition_terms)
        if len(os_) == len(ns) and any(n < o for o, n in zip(os_, ns, strict=True)):
            reasons.append("the condition lowers the filesize bound")
            narrower = True
        if new.condition_terms.count("and") > old.condition_terms.count("and"):
            reasons.append("the condition adds and-ed clauses")
            narrower = True
        if not narrower:
            reasons.append("the condition changed")
    old_score, new_score = _score(old), _score(new)
    if old_score is not None and new_score is not None and new_score < old_score:
        reasons.append(f"score lowered from {old_score:g} to {new_score:g}")
        narrower = True
    return reasons, narrower


class DetectionRemovedCheck:
    rule_id = "content.detection-removed"
    default_severity = Severity.MEDIUM
    description = "Removes or weakens a detection that the previous release had."

    def run(self, ctx: CheckContext) -> list[Finding]:
        if ctx.previous_files is None:
            return []
        current: dict[str, ContentRule] = {}
        for rule in ctx.rules():
            current.setdefault(rule.key, rule)
        out = []
        seen: set[str] = set()
        for f in ctx.previous_files:
            for old in f.rules:
                if old.key in seen or "private" in old.scopes or "allowlist" in old.tags:
                    continue
                seen.add(old.key)
                new = current.get(old.key)
                if new is None:
                    out.append(
                        file_finding(
                            self.rule_id,
                            self.default_severity,
                            old.uri,
                            f"rule {old.name} of the previous release is removed",
                            {"change": "removed", "previous_file": old.uri},
                            line=old.start_line,
                            rule_name=old.name,
                        )
                    )
                    continue
                reasons, narrower = narrowing(old, new)
                if reasons:
                    out.append(
                        rule_finding(
                            ctx,
                            self.rule_id,
                            self.default_severity if narrower else Severity.LOW,
                            new,
                            f"rule {new.name} is {'narrower' if narrower else 'changed'}: {reasons[0]}",
                            {
                                "change": "narrowed" if narrower else "changed",
                                "reasons": reasons,
                                "previous_condition": old.condition[:1000],
                            },
                        )
                    )
        out.extend(self._switched_off(ctx))
        out.extend(self._new_global_gates(ctx))
        return out

    def _new_global_gates(self, ctx: CheckContext) -> list[Finding]:
        """A new global rule: when it is false, every other rule of its file is silenced."""
        before = {r.key for f in ctx.previous_files or () for r in f.rules if "global" in r.scopes}
        out = []
        for f in ctx.files:
            gated = [r.name for r in f.rules if "global" not in r.scopes]
            for rule in f.rules:
                if "global" not in rule.scopes or rule.key in before or not gated:
                    continue
                out.append(
                    rule_finding(
                        ctx,
                        self.rule_id,
                        self.default_severity,
                        rule,
                        f"new global rule {rule.name} gates the {len(gated)} other rule(s) of "
                        f"{f.uri}: none of them reports a match unless it is true",
                        {"change": "gated", "gated_rules": gated[:100]},
                    )
                )
        return out

    def _switched_off(self, ctx: CheckContext) -> list[Finding]:
        """Allow-list entries new in this release: ignored signatures, allow-listed files."""
        before = {r.key for f in ctx.previous_files or () for r in f.rules if "allowlist" in r.tags}
        out = []
        for rule in ctx.rules():
            if "allowlist" not in rule.tags or rule.key in before:
                continue
            if "ignore" in rule.tags:
                target = rule.patterns[0].value if rule.patterns else rule.name
                message = f"{rule.uri} switches off signature {target}"
                severity = self.default_severity
            else:
                message = f"{rule.uri} allow-lists a file ({rule.name}); it will never be reported"
                severity = Severity.LOW
            out.append(
                rule_finding(ctx, self.rule_id, severity, rule, message, {"change": "allow-listed"})
            )
        return out
