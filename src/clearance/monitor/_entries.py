"""The monitor's rules on single log entries, fed by the auditor's replay (one call per
entry, with the trust root in force at that entry)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from clearance.attest import TrustRoot, admission, key_id
from clearance.audit.entries import (
    KIND_POLICY,
    KIND_RELEASE,
    KIND_TRUST_ROOT,
    KIND_VERDICT,
    EntryView,
    audit_kind,
    key_roles,
)
from clearance.monitor.config import MonitorConfig
from clearance.monitor.rules import Alert
from clearance.monitor.state import MonitorState

#: Rollout events that put (or keep) a release in front of a ring of machines.


#: Which trust-root roles may sign each kind of entry, under the auditor's kind names: the
#: admission rule's table (a report or resume decision signed by the parties that judge the
#: others is no alert; signed by anyone else, it is a key outside its role).
_ALLOWED: Mapping[str, frozenset[str]] = {
    audit_kind(kind): frozenset(roles) for kind, roles in admission.SIGNING_ROLES.items()
} | {
    # A rotation is signed by the parties it changes (current and new keys) and the policy
    # authority (clearance.attest._governance): any role's key may appear on it.
    KIND_TRUST_ROOT: frozenset(
        {"log", "vendor", "inspector", "policy", "rollout", "root", "witness"}
    ),
}


def _policy_diff(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict[str, Any]:
    def rules(body: Mapping[str, Any] | None) -> dict[str, Any]:
        if body is None:
            return {}
        return {
            str(r.get("jurisdiction")): r
            for r in body.get("jurisdictions", [])
            if isinstance(r, dict)
        }

    old, new = rules(before), rules(after)
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "changed": sorted(j for j in set(old) & set(new) if old[j] != new[j]),
    }


class EntryRules:
    """Per-entry alert rules; ``raise_alert`` records and delivers (deduplicated by key)."""

    def __init__(
        self, config: MonitorConfig, state: MonitorState, raise_alert: Callable[[Alert], None]
    ) -> None:
        self._config = config
        self._state = state
        self._raise = raise_alert

    def __call__(self, view: EntryView, root: TrustRoot) -> None:
        if view.envelope is not None:
            self._signers(view, root)
        if view.kind == KIND_RELEASE and view.release is not None:
            self._release(view)
        elif view.kind == KIND_VERDICT and view.verdict is not None:
            self._verdict(view)
        elif view.kind == KIND_POLICY:
            self._policy(view)
        # A rollout step for a release the log does not approve is reported by the auditor's
        # recomputed verifiable index (audit.rollout-unapproved -> monitor.unapproved-rollout),
        # which applies the trust root's threshold of distinct inspector keys and revocations.

    # -- who signed ----------------------------------------------------------------------
    def _signers(self, view: EntryView, root: TrustRoot) -> None:
        assert view.envelope is not None
        allowed = _ALLOWED.get(view.kind)
        if allowed is None:  # health reports: signed by client keys; unknown: audit reports it
            return
        roles = key_roles(root)
        if view.kind == KIND_TRUST_ROOT and view.new_trust_root is not None:
            for role, keys in key_roles(view.new_trust_root).items():
                roles[role] = (*roles.get(role, ()), *keys)
        everyone = [k for keys in roles.values() for k in keys]
        known = {key_id(k) for k in everyone}
        for sig in view.envelope.signatures:
            if sig.keyid not in known:
                self._raise(
                    Alert(
                        "monitor.unknown-signer",
                        f"entry {view.index} ({view.kind}) carries a signature by "
                        f"{sig.keyid!r}, a key the trust root does not name",
                        view.index,
                        {"kind": view.kind, "keyid": sig.keyid, "sha256": view.sha256},
                    )
                )
        try:
            valid = admission.valid_key_ids(view.envelope, everyone)
        except admission.ForgedSignatureError:
            return  # a forgery: the audit reports it (audit.bad-signature)
        for key in everyone:
            if key_id(key) not in valid:
                continue
            held = sorted(
                r for r, keys in roles.items() if any(k.public_key == key.public_key for k in keys)
            )
            if not allowed & set(held):
                self._raise(
                    Alert(
                        "monitor.key-outside-role",
                        f"entry {view.index}: the {'/'.join(held)} key {key_id(key)} signed a "
                        f"{view.kind}, which only {' or '.join(sorted(allowed))} keys may sign",
                        view.index,
                        {"kind": view.kind, "keyid": key_id(key), "roles": held},
                    )
                )

    # -- releases, verdicts, policies, rollouts --------------------------------------------
    def _release(self, view: EntryView) -> None:
        release = view.release
        assert release is not None and view.envelope is not None
        products = self._config.products
        if products is not None and release.product not in products:
            self._raise(
                Alert(
                    "monitor.unexpected-product",
                    f"entry {view.index}: release of product {release.product!r} "
                    f"{release.version}, not one of {', '.join(products) or 'none'}",
                    view.index,
                    {"product": release.product, "version": release.version},
                )
            )
        expected = self._config.signers.get(release.product)
        if expected is None:
            return
        for sig in view.envelope.signatures:
            name = sig.keyid.split("+", 1)[0]
            if sig.keyid not in expected and name not in expected:
                self._raise(
                    Alert(
                        "monitor.unexpected-signer",
                        f"entry {view.index}: release {release.product} {release.version} "
                        f"signed by {sig.keyid!r}, not a signer expected for this product",
                        view.index,
                        {
                            "product": release.product,
                            "keyid": sig.keyid,
                            "expected": list(expected),
                        },
                    )
                )

    def _verdict(self, view: EntryView) -> None:
        verdict = view.verdict
        assert verdict is not None
        if not view.signature_ok:
            return  # not a decision anyone made: the audit reports the bad signature
        automated = bool(verdict.engines)
        before = self._state.decision(verdict.release_sha256)
        if (
            before is not None
            and before[0] < view.index
            and before[1] == "rejected"
            and before[2]
            and not automated
            and verdict.decision != "rejected"
        ):
            self._raise(
                Alert(
                    "monitor.rejection-overridden",
                    f"entry {view.index}: {verdict.inspector} decided {verdict.decision!r} on "
                    f"{verdict.product} {verdict.version}, which the automated inspection at "
                    f"entry {before[0]} rejected",
                    view.index,
                    {
                        "release_sha256": verdict.release_sha256,
                        "rejected_at": before[0],
                        "decision": verdict.decision,
                        "inspector": verdict.inspector,
                        "note": verdict.note,
                    },
                )
            )
        self._state.set_decision(verdict.release_sha256, view.index, verdict.decision, automated)

    def _policy(self, view: EntryView) -> None:
        if not view.signature_ok:
            return
        body = dict(view.record)
        before = self._state.add_policy(view.index, body)
        diff = _policy_diff(before, body)
        what = "replaces the policy in force" if before is not None else "is the first policy"
        self._raise(
            Alert(
                "monitor.policy-change",
                f"entry {view.index}: distribution policy {body.get('name', '?')!r} {what} "
                f"(jurisdictions added: {', '.join(diff['added']) or '-'}; changed: "
                f"{', '.join(diff['changed']) or '-'}; removed: {', '.join(diff['removed']) or '-'})",
                view.index,
                {"policy": body.get("name"), "issued": body.get("issued"), **diff},
            )
        )
