"""``content.detection-removed`` (semantic): samples the previous release detected and this one does not.

Reads :class:`~clearance.inspection.content.evidence.EvidenceScan`: the
release and its predecessor scanned, each in its real engine, over the
inspector's evidence corpus.  Reported:

* a sample the previous release detected and this release does not detect
  at all (high), naming the sample's SHA-256 and the rules that used to match;
* a rule that kept its name but no longer matches a sample it matched
  before, while other rules still detect it (medium: a weakened pattern);
* a rule the release declares evidence for that matches none of its
  declared samples (medium; the message says when the rule is new), and a
  declared sample the inspector does not hold (low: the vendor must deposit it).
"""

from __future__ import annotations

from clearance.inspection.content.checks._base import CheckContext, file_finding
from clearance.inspection.findings import Finding, Severity

_MAX_WEAKENED = 200


class EvidenceRemovedCheck:
    rule_id = "content.detection-removed"
    default_severity = Severity.HIGH
    description = "A sample the previous release detected is no longer detected."

    def run(self, ctx: CheckContext) -> list[Finding]:
        ev = ctx.evidence
        if ev is None:
            return []
        out: list[Finding] = []
        current_names = {r.name: r for r in ctx.rules()}
        current_keys = {r.key for r in ctx.rules()}
        # A previous rule whose content is still shipped (under any name: ClamAV databases
        # renumber their names) has not been weakened.
        kept_content = {
            r.name
            for f in ctx.previous_files or ()
            for r in f.rules
            if r.identity and r.key in current_keys
        }
        if ev.previous is not None:
            weakened = 0
            for sample in sorted(ev.previous):
                before = sorted(ev.previous[sample], key=lambda k: (k[1], k[0]))
                now = ev.current.get(sample, frozenset())
                now_names = {name for _, name in now}
                if not now:
                    uri, name = before[0]
                    out.append(
                        file_finding(
                            self.rule_id,
                            Severity.HIGH,
                            current_names[name].uri if name in current_names else uri,
                            f"evidence sample sha256:{sample} was detected by the previous release "
                            f"(rule {name}) and is not detected by this one",
                            {
                                "change": "no-longer-detected",
                                "sample_sha256": sample,
                                "previous_rules": sorted({n for _, n in before}),
                            },
                            rule_name=name,
                        )
                    )
                    continue
                for uri, name in before:
                    if (
                        name in now_names
                        or name not in current_names
                        or name in kept_content
                        or weakened >= _MAX_WEAKENED
                    ):
                        continue
                    weakened += 1
                    rule = current_names[name]
                    out.append(
                        file_finding(
                            self.rule_id,
                            Severity.MEDIUM,
                            rule.uri,
                            f"rule {name} no longer matches evidence sample sha256:{sample}, "
                            "which it matched in the previous release",
                            {"change": "weakened", "sample_sha256": sample, "previous_file": uri},
                            line=rule.start_line,
                            rule_name=name,
                        )
                    )
        out.extend(self._declared(ctx))
        return out

    def _declared(self, ctx: CheckContext) -> list[Finding]:
        ev = ctx.evidence
        assert ev is not None
        wanted: dict[str, list[str]] = {}
        out: list[Finding] = []
        for sample, rules in ev.declared:
            if sample not in ev.samples:
                out.append(
                    file_finding(
                        self.rule_id,
                        Severity.LOW,
                        "release",
                        f"the release declares evidence sample sha256:{sample}, which the "
                        "inspector does not hold (not deposited)",
                        {"change": "evidence-missing", "sample_sha256": sample},
                    )
                )
                continue
            for name in rules:
                wanted.setdefault(name, []).append(sample)
        rules_by_name = {r.name: r for r in ctx.rules()}
        for name in sorted(wanted):
            samples = wanted[name]
            hit = any(name in {n for _, n in ev.current.get(s, frozenset())} for s in samples)
            if hit:
                continue
            rule = rules_by_name.get(name)
            new = name not in ev.previous_rules
            out.append(
                file_finding(
                    self.rule_id,
                    Severity.MEDIUM,
                    rule.uri if rule else "release",
                    f"{'new ' if new else ''}rule {name} matches none of its "
                    f"{len(samples)} declared evidence sample(s)"
                    + ("" if rule else " (and the release has no such rule)"),
                    {
                        "change": "evidence-not-matched",
                        "samples_sha256": sorted(samples),
                        "new_rule": new,
                    },
                    line=rule.start_line if rule else None,
                    rule_name=name,
                )
            )
        return out
