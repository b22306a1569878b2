"""The verdict policy: findings in, ``approved`` / ``rejected`` / ``needs-review`` out.

The policy is a small YAML document (see ``default_policy.yaml``, shipped in
the package and documented in docs/inspection.md).  Evaluation is pure and
deterministic: the same findings and policy always give the same decision
and the same reasons.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from clearance._untrusted import load_yaml
from clearance.inspection.errors import VerdictPolicyError
from clearance.inspection.findings import FINDING_KINDS, Finding, Severity

APPROVED, REJECTED, NEEDS_REVIEW = "approved", "rejected", "needs-review"
_RANK = {APPROVED: 0, NEEDS_REVIEW: 1, REJECTED: 2}


@dataclass(frozen=True)
class PolicyRule:
    name: str
    decision: str
    rule_id: str = "*"
    severity_at_least: Severity = Severity.INFO
    min_count: int = 1

    def count(self, findings: Sequence[Finding]) -> int:
        return sum(
            1
            for f in findings
            if fnmatch.fnmatchcase(f.rule_id, self.rule_id) and f.severity >= self.severity_at_least
        )


@dataclass(frozen=True)
class VerdictDecision:
    decision: str
    #: Why: one line per rule that fired, in policy order.
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class VerdictPolicy:
    default: str
    rules: tuple[PolicyRule, ...]
    source: str = "default"

    def decide(self, findings: Sequence[Finding]) -> VerdictDecision:
        fired: list[str] = []
        reasons: list[str] = []
        for rule in self.rules:
            count = rule.count(findings)
            if count >= rule.min_count:
                fired.append(rule.decision)
                reasons.append(
                    f"{rule.name}: {count} finding(s) {rule.rule_id} at "
                    f"{rule.severity_at_least.label} or worse -> {rule.decision}"
                )
        if not fired:
            return VerdictDecision(self.default, (f"no policy rule fired -> {self.default}",))
        return VerdictDecision(max(fired, key=lambda d: _RANK[d]), tuple(reasons))

    @classmethod
    def from_dict(cls, raw: object, source: str) -> VerdictPolicy:
        if not isinstance(raw, Mapping):
            raise VerdictPolicyError(f"{source}: a policy is a mapping with 'default' and 'rules'")
        if raw.get("version", 1) != 1:
            raise VerdictPolicyError(f"{source}: unsupported policy version {raw.get('version')!r}")
        default = _decision(raw.get("default", APPROVED), f"{source}: default")
        rules_raw = raw.get("rules", [])
        if not isinstance(rules_raw, list):
            raise VerdictPolicyError(f"{source}: 'rules' must be a list")
        rules = []
        for index, item in enumerate(rules_raw):
            where = f"{source}: rules[{index}]"
            if not isinstance(item, Mapping):
                raise VerdictPolicyError(f"{where} is not a mapping")
            unknown = set(item) - {"name", "when", "decision"}
            if unknown:
                raise VerdictPolicyError(
                    f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}"
                )
            when = item.get("when", {})
            if not isinstance(when, Mapping):
                raise VerdictPolicyError(f"{where}.when is not a mapping")
            unknown = set(when) - {"rule_id", "severity_at_least", "min_count"}
            if unknown:
                raise VerdictPolicyError(
                    f"{where}.when: unknown key(s) {', '.join(sorted(map(str, unknown)))}"
                )
            try:
                severity = Severity.parse(str(when.get("severity_at_least", "info")))
            except ValueError as exc:
                raise VerdictPolicyError(f"{where}.when: {exc}") from None
            min_count = when.get("min_count", 1)
            if not isinstance(min_count, int) or isinstance(min_count, bool) or min_count < 1:
                raise VerdictPolicyError(f"{where}.when.min_count must be a positive integer")
            rule_id = when.get("rule_id", "*")
            if not isinstance(rule_id, str) or not rule_id:
                raise VerdictPolicyError(f"{where}.when.rule_id must be a non-empty string")
            if not any(fnmatch.fnmatchcase(known, rule_id) for known in FINDING_KINDS):
                # A typo ("content.overbraod") would make the rule silently never fire.
                raise VerdictPolicyError(
                    f"{where}.when.rule_id {rule_id!r} matches no finding id "
                    f"(known: {', '.join(sorted(FINDING_KINDS))})"
                )
            rules.append(
                PolicyRule(
                    name=str(item.get("name", f"rule {index + 1}")),
                    decision=_decision(item.get("decision"), f"{where}.decision"),
                    rule_id=rule_id,
                    severity_at_least=severity,
                    min_count=min_count,
                )
            )
        return cls(default, tuple(rules), source)

    @classmethod
    def from_yaml(cls, text: str, source: str) -> VerdictPolicy:
        try:
            raw = load_yaml(text, source)
        except yaml.YAMLError as exc:
            raise VerdictPolicyError(f"{source}: not valid YAML ({exc})") from None
        return cls.from_dict(raw, source)


def _decision(value: object, where: str) -> str:
    # A str check first: a YAML list or mapping is unhashable (found by fuzzing, issue 12).
    if not isinstance(value, str) or value not in _RANK:
        shown = repr(value)[:60]
        raise VerdictPolicyError(f"{where}: {shown} is not one of approved, rejected, needs-review")
    return str(value)


def default_policy() -> VerdictPolicy:
    text = (
        resources.files("clearance.inspection").joinpath("default_policy.yaml").read_text("utf-8")
    )
    return VerdictPolicy.from_yaml(text, "default policy")


def load_policy(path: Path) -> VerdictPolicy:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise VerdictPolicyError(f"{path}: policy file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VerdictPolicyError(f"{path}: cannot read the policy ({exc})") from None
    return VerdictPolicy.from_yaml(text, str(path))
