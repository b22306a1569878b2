"""One monitor pass, and following the log pass after pass.

A pass: the auditor replays the log from where it stopped (checkpoint signature and
origin, witness cosignatures, consistency with the last checkpoint seen and with the
witnesses' views, every new entry's signatures), calling :class:`EntryRules` on each
entry; the auditor's findings become alerts (``audit.*`` ids, or the ``monitor.*`` id that
names the same event); the checkpoint rules run (stale checkpoint, silent witness); then
every alert not yet delivered goes to each sink.  Alerts are recorded before delivery, by
key, so a restart neither loses nor repeats one.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearance.attest import TrustRoot
from clearance.audit import AuditFinding, AuditOptions, audit_log
from clearance.audit.auditor import cosigning_witnesses, log_identity
from clearance.audit.errors import LogUnavailable
from clearance.keys import Note
from clearance.log.tiles import TileSource
from clearance.monitor._entries import EntryRules
from clearance.monitor.config import MonitorConfig
from clearance.monitor.errors import DeliveryFailed
from clearance.monitor.rules import Alert
from clearance.monitor.sinks import Sink
from clearance.monitor.state import MonitorState

#: Audit findings the monitor reports under its own id (same event, monitor vocabulary);
#: ``None``: the monitor's entry rules report the event themselves.
_RENAMED: dict[str, str | None] = {
    "audit.log-inconsistent": "monitor.split-view",
    "audit.split-view": "monitor.split-view",
    "audit.release-without-verdict": "monitor.release-without-verdict",
    "audit.policy-changed": None,
    # The auditor's recomputed index decides (distinct inspector keys, k-of-n, revocations).
    "audit.rollout-unapproved": "monitor.unapproved-rollout",
}


@dataclass(frozen=True)
class MonitorOptions:
    trust_root: TrustRoot
    source: TileSource
    state_dir: Path
    config: MonitorConfig = field(default_factory=MonitorConfig)
    sinks: Sequence[Sink] = ()
    clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class PassResult:
    checkpoint_size: int
    entries: int
    #: Alerts first raised in this pass.
    alerts: tuple[Alert, ...]
    #: Sinks that could not take every alert, with the error (retried next pass).
    undelivered: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint_size": self.checkpoint_size,
            "entries": self.entries,
            "alerts": [a.to_dict() for a in self.alerts],
            "undelivered": self.undelivered,
        }


class Monitor:
    def __init__(self, options: MonitorOptions) -> None:
        self._opt = options

    def run_once(self) -> PassResult:
        opt = self._opt
        identity = log_identity(opt.trust_root)
        with MonitorState.open(opt.state_dir, identity) as state:
            raised: list[Alert] = []
            now = opt.clock()
            sinks = [s.name for s in opt.sinks]

            def raise_alert(alert: Alert) -> None:
                if state.add_alert(alert, now, sinks):
                    raised.append(alert)

            root = self._root(state)
            rules = EntryRules(opt.config, state, raise_alert)

            def observe(view: Any, at_root: TrustRoot) -> None:
                nonlocal root
                state.hold()
                rules(view, at_root)
                if view.new_trust_root is not None:
                    root = view.new_trust_root
                    state.set_meta("trust_root", root.to_bytes().decode())

            report = audit_log(
                AuditOptions(
                    trust_root=root,
                    source=opt.source,
                    state_dir=opt.state_dir / "audit",
                    witness_urls=opt.config.witnesses,
                    deadline_seconds=opt.config.verdict_deadline_hours * 3600,
                    clock=opt.clock,
                    observer=observe,
                    before_commit=state.flush,
                )
            )
            state.flush()
            overrides = {
                a.entry_index for a in raised if a.rule_id == "monitor.rejection-overridden"
            }
            for finding in report.findings:
                if (
                    finding.rule_id == "audit.verdict-overridden"
                    and finding.entry_index in overrides
                ):
                    continue
                alert = self._from_finding(finding, report.note, state)
                if alert is not None:
                    raise_alert(alert)
            self._checkpoint_rules(state, root, report.checkpoint_size, report.note, raise_alert)
            undelivered = self._deliver(state)
        return PassResult(report.checkpoint_size, report.audited_to, tuple(raised), undelivered)

    def follow(
        self, stop: threading.Event, on_pass: Callable[[PassResult], None] | None = None
    ) -> None:
        """Pass after pass until ``stop`` is set; an unreachable log is reported on stderr
        and tried again on the next pass."""
        while not stop.is_set():
            try:
                result = self.run_once()
            except LogUnavailable as exc:
                print(f"monitor: {exc} (retrying)", file=sys.stderr)
            else:
                if on_pass is not None:
                    on_pass(result)
            stop.wait(self._opt.config.interval_seconds)

    # -- pieces of a pass -------------------------------------------------------------------
    def _root(self, state: MonitorState) -> TrustRoot:
        stored = state.meta("trust_root")
        if stored is not None:
            rotated = TrustRoot.from_bytes(stored.encode())
            if rotated.version > self._opt.trust_root.version:
                return rotated
        return self._opt.trust_root

    def _from_finding(
        self, finding: AuditFinding, note: bytes, state: MonitorState
    ) -> Alert | None:
        rule = _RENAMED.get(finding.rule_id, finding.rule_id)
        if rule is None:
            return None
        evidence = dict(finding.evidence)
        if rule == "monitor.split-view":
            if "current" not in evidence:
                evidence["current"] = note.decode()
            other = evidence.get("previous", evidence.get("witness_checkpoint", ""))
            alert = Alert(rule, finding.message, finding.entry_index, evidence)
            folder = state.directory / "evidence" / alert.key
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "served.checkpoint").write_text(str(evidence["current"]), encoding="utf-8")
            (folder / "other.checkpoint").write_text(str(other), encoding="utf-8")
            return Alert(
                rule,
                finding.message,
                finding.entry_index,
                {**evidence, "saved": str(folder)},
                alert.key,
            )
        return Alert(rule, finding.message, finding.entry_index, evidence)

    def _checkpoint_rules(
        self,
        state: MonitorState,
        root: TrustRoot,
        size: int,
        note_bytes: bytes,
        raise_alert: Callable[[Alert], None],
    ) -> None:
        now = self._opt.clock()
        config = self._opt.config
        last_size = state.meta("size")
        since = float(state.meta("size_since") or now)
        if last_size is None or int(last_size) != size:
            state.set_meta("size", str(size))
            state.set_meta("size_since", repr(now))
        elif config.checkpoint_stale_hours and now - since >= config.checkpoint_stale_hours * 3600:
            raise_alert(
                Alert(
                    "monitor.checkpoint-stale",
                    f"the checkpoint has stayed at size {size} for "
                    f"{(now - since) / 3600:.1f} h (limit {config.checkpoint_stale_hours:g} h)",
                    None,
                    {"size": size, "since": since},
                    key=f"stale:{size}:{since!r}",
                )
            )
        cosigners = set(cosigning_witnesses(Note.from_bytes(note_bytes), root))
        for key in root.witnesses.keys:
            seen = state.witness(key.name)
            if key.name in cosigners:
                if seen is None or seen.last_size != size:
                    state.set_witness(key.name, size, now)
                continue
            if seen is None or seen.last_size >= size:
                continue
            if now - seen.last_time < config.witness_silent_hours * 3600:
                continue
            raise_alert(
                Alert(
                    "monitor.witness-silent",
                    f"witness {key.name} last cosigned size {seen.last_size}; the log is at "
                    f"size {size} without its cosignature",
                    None,
                    {"witness": key.name, "last_size": seen.last_size, "size": size},
                    key=f"witness:{key.name}:{seen.last_size}",
                )
            )

    def _deliver(self, state: MonitorState) -> dict[str, str]:
        failures: dict[str, str] = {}
        for sink in self._opt.sinks:
            pending = state.undelivered(sink.name)
            if not pending:
                continue
            try:
                sink.send(pending)
            except DeliveryFailed as exc:
                state.mark_failed(sink.name, [a.key for a in pending], str(exc))
                failures[sink.name] = str(exc)
            else:
                state.mark_delivered(sink.name, [a.key for a in pending])
        return failures
