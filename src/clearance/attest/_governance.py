"""Who must sign a rotation of the trust root: the parties whose keys change, not a key pool.

A trust root names parties (roles): the log, the vendors, the inspectors, the
witnesses, the policy authority and the rollout operator.  A rotation to the
next version is accepted only when, for every role it changes,

- a threshold of that role's CURRENT keys signed it (the party agrees), and
- a threshold of that role's NEW keys signed it (the new keys exist and agree), and
- when the current root has a policy authority, a threshold of the policy
  authority's current keys signed it as well (the regulator co-signs every
  change of another party; its own keys change with its own threshold only).

Filling a role that had no keys, and changing the settings (the maximum
checkpoint age) are decided by the *fallback authority*: the policy authority,
or, when the root has none, the vendors and the inspectors together.  A
rotation that changes nothing but the version needs the fallback authority
too, so nobody can push a version forward alone.  An optional ``root`` role
(named explicitly with ``trust init --root-key``) is an extra requirement on
every rotation, never a substitute for the parties' own thresholds.  So the
vendor, whatever its number of keys, cannot replace the inspectors, the
witnesses, the log or the policy authority.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from clearance.keys import Verifier

# ``root`` arguments are :class:`clearance.attest.trust_root.TrustRoot` (typed ``Any`` here
# so that this module does not import the one that imports it).

#: Roles a rotation can change, in the order they are reported.
PARTY_ROLES = ("log", "vendors", "inspectors", "witnesses", "policy", "rollout")


@dataclass(frozen=True)
class Party:
    """One party's keys and how many of them must sign."""

    keys: tuple[Verifier, ...]
    threshold: int


@dataclass(frozen=True)
class Requirement:
    """``role`` (keys and threshold) must sign; ``why`` says which change needs it."""

    label: str
    role: Party
    why: str


def party_role(root: Any, name: str) -> Party:
    """The keys and threshold of one party (the log is a one-key role)."""
    if name == "log":
        return Party((root.log_key,), 1)
    role = getattr(root, name)
    return Party(tuple(role.keys), int(role.threshold))


def changed_roles(current: Any, new: Any) -> list[str]:
    """The parties whose keys, threshold (or, for the log, origin) differ."""
    out = []
    for name in PARTY_ROLES:
        if name == "log":
            if (current.log_origin, current.log_key) != (new.log_origin, new.log_key):
                out.append(name)
        elif party_role(current, name) != party_role(new, name):
            out.append(name)
    return out


def _fallback(current: Any) -> Iterator[tuple[str, Party]]:
    if current.policy.threshold:
        yield "policy authority", party_role(current, "policy")
    else:
        yield "vendors", party_role(current, "vendors")
        yield "inspectors", party_role(current, "inspectors")


def requirements(current: Any, new: Any) -> list[Requirement]:
    """Every (role, threshold) that must have signed the rotation from ``current`` to ``new``."""
    needed: list[Requirement] = []
    changed = changed_roles(current, new)
    cosign_policy = False
    use_fallback: list[str] = []
    for name in changed:
        old_role, new_role = party_role(current, name), party_role(new, name)
        if old_role.threshold:
            needed.append(Requirement(f"current {name}", old_role, f"it changes the {name}"))
        else:
            use_fallback.append(f"it gives the {name} their first keys")
        if new_role.threshold:
            needed.append(Requirement(f"new {name}", new_role, f"it changes the {name}"))
        if name != "policy":
            cosign_policy = True
    if current.max_checkpoint_age != new.max_checkpoint_age:
        use_fallback.append("it changes the maximum checkpoint age")
    if not changed and current.root != new.root:
        use_fallback.append("it changes the root role")
    if not changed and not use_fallback and current.root is None:
        use_fallback.append("it changes nothing but the version")
    if use_fallback or (cosign_policy and current.policy.threshold):
        why = "; ".join(use_fallback) or "the policy authority co-signs every change of a party"
        for label, role in _fallback(current):
            needed.append(Requirement(f"current {label}", role, why))
    for label, extra in (("current root", current.root), ("new root", new.root)):
        if extra is not None and extra.threshold:
            party = Party(tuple(extra.keys), int(extra.threshold))
            needed.append(Requirement(label, party, "the trust root names a root role"))
    return needed
