"""What each jurisdiction's customers actually installed, from device-signed health reports
in the log, compared with what the logged policy allows.

The "equal treatment" rows of :mod:`clearance.report.collect` recompute decisions from the
logged policy: they say what a gateway *should* have served.  This module reads what was
*served*: an install-health report is signed by one device key, and an entitlement (opened
by the regulator) names the device keys of its customer, so each report places one install
(status ok) or install attempt (failed, engine-crash) of one release in one jurisdiction.
The evidence is

- a health report logged on its own (a DSSE envelope at a log index), or
- one of the reports a logged health aggregate counts: the aggregate logs the RFC 6962
  root over the reports' envelopes; the gateway serves the envelopes
  (``GET /api/v1/health-aggregates/{index}``) and they are used only when their root is
  the logged one and each signature verifies.

Red flags: a jurisdiction that received a release the logged policy withholds from the
reporting customer; and a jurisdiction entitled to a release that others installed, with no
install evidence of its own, where neither a logged policy rule (it is allowed) nor a
logged rollout state (the rollout completed) explains the difference.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from clearance.attest import Envelope, key_id, statement_of
from clearance.errors import BadInput, ClearanceError
from clearance.keys import Verifier
from clearance.log import merkle
from clearance.policy import Entitlement

if TYPE_CHECKING:
    from clearance.report.rows import DecisionRow, ReleaseRow

#: Fetches the individual report envelopes (JSON objects) a logged aggregate counts.
AggregateFetcher = Callable[[int], Sequence[Mapping[str, Any]]]


@dataclass(frozen=True)
class Install:
    """One device's report on one release: who, where, and the log evidence for it."""

    release: str
    ring: str
    status: str
    customer: str
    jurisdiction: str
    device: str
    evidence: str


@dataclass
class HealthEvidence:
    """The health entries of the log, as the auditor's replay meets them."""

    #: (log index, envelope) of each health report logged on its own.
    reports: list[tuple[int, Envelope]] = field(default_factory=list)
    #: (log index, aggregate record) of each logged health aggregate.
    aggregates: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True)
class Devices:
    """Device keys by key id, with the customer and jurisdiction whose entitlement names them."""

    by_key_id: Mapping[str, tuple[Verifier, str, str, int]]

    @classmethod
    def of(cls, entitlements: Iterable[tuple[int, Entitlement]]) -> Devices:
        out: dict[str, tuple[Verifier, str, str, int]] = {}
        for index, ent in entitlements:
            for text in ent.client_keys:
                try:
                    key = Verifier.parse(text)
                except BadInput:
                    continue
                out.setdefault(key_id(key), (key, ent.customer, ent.jurisdiction, index))
        return cls(out)

    def jurisdictions(self) -> set[str]:
        return {j for _, _, j, _ in self.by_key_id.values()}


@dataclass
class ServedEvidence:
    installs: list[Install] = field(default_factory=list)
    #: Health reports no opened entitlement's device key signed (their customer is unknown).
    unattributed: int = 0
    #: Aggregates whose individual reports were not fetched (no --server) or did not match.
    unopened_aggregates: list[str] = field(default_factory=list)
    #: Aggregates whose served reports do not hash to the logged root: evidence withheld.
    mismatched_aggregates: list[int] = field(default_factory=list)


def _install(envelope: Envelope, devices: Devices, evidence: str, out: ServedEvidence) -> None:
    try:
        predicate = statement_of(envelope).predicate
    except BadInput:
        out.unattributed += 1
        return
    keyids = {s.keyid for s in envelope.signatures}
    device = devices.by_key_id.get(next(iter(keyids))) if len(keyids) == 1 else None
    if device is None:
        out.unattributed += 1
        return
    key, customer, jurisdiction, ent_index = device
    try:
        envelope.verify([key], 1)
    except ClearanceError:
        out.unattributed += 1
        return
    out.installs.append(
        Install(
            str(predicate.get("release", "")),
            str(predicate.get("ring", "")),
            str(predicate.get("status", "")),
            customer,
            jurisdiction,
            key_id(key),
            f"{evidence}, signed by device key {key_id(key)} of {customer} "
            f"(entitlement entry {ent_index})",
        )
    )


def served(
    health: HealthEvidence, devices: Devices, fetch: AggregateFetcher | None
) -> ServedEvidence:
    """Every install the log evidences, attributed to a customer and jurisdiction."""
    out = ServedEvidence()
    for index, envelope in health.reports:
        _install(envelope, devices, f"health report at log entry {index}", out)
    for index, record in health.aggregates:
        if fetch is None:
            out.unopened_aggregates.append(f"{index} (its reports are served by the gateway)")
            continue
        try:
            envelopes = [Envelope.from_dict(dict(e)) for e in fetch(index)]
            logged_root = bytes.fromhex(str(record.get("merkle_root", "")))
        except (ClearanceError, ValueError) as exc:
            out.unopened_aggregates.append(f"{index} ({exc})")
            continue
        ordered = sorted(envelopes, key=lambda e: e.sha256)
        root = merkle.root_from_leaf_hashes([merkle.leaf_hash(e.to_bytes()) for e in ordered])
        if root != logged_root or len(ordered) != record.get("reports"):
            out.mismatched_aggregates.append(index)
            continue
        for position, envelope in enumerate(ordered):
            _install(
                envelope,
                devices,
                f"report {position + 1} of {len(ordered)} in the health aggregate at log "
                f"entry {index} (its Merkle root verified)",
                out,
            )
    return out


#: Reports asked for per request (the gateway's largest page).
AGGREGATE_PAGE = 10_000


def fetch_from_server(server: str) -> AggregateFetcher:
    """Read an aggregate's reports from a gateway, a page at a time (public: health reports
    name no customer)."""
    import httpx

    base = server.rstrip("/")

    def page(http: httpx.Client, index: int, after: str) -> tuple[list[Any], str | None]:
        try:
            response = http.get(
                f"{base}/api/v1/health-aggregates/{index}",
                params={"limit": AGGREGATE_PAGE, "after": after},
            )
        except httpx.HTTPError as exc:
            raise BadInput(f"health aggregate {index}: {exc}") from None
        if response.status_code != 200:
            raise BadInput(f"health aggregate {index}: HTTP {response.status_code}")
        try:
            answer = json.loads(response.content)
            reports, following = answer.get("reports"), answer.get("next_after")
        except (ValueError, AttributeError):
            raise BadInput(f"health aggregate {index}: not JSON") from None
        if not isinstance(reports, list) or not all(isinstance(r, dict) for r in reports):
            raise BadInput(f"health aggregate {index}: no list of reports")
        if following is not None and (not isinstance(following, str) or following <= after):
            # A server sending the reader back (or round in circles) would never end.
            raise BadInput(f"health aggregate {index}: next page {following!r} is not ahead")
        return reports, following

    def fetch(index: int) -> Sequence[Mapping[str, Any]]:
        reports: list[Mapping[str, Any]] = []
        after: str | None = ""
        with httpx.Client(timeout=30) as http:
            while after is not None:
                found, after = page(http, index, after)
                reports += found
        return reports

    return fetch


def by_release(installs: Iterable[Install]) -> dict[str, dict[str, list[Install]]]:
    """Installs grouped by release digest, then by jurisdiction."""
    out: dict[str, dict[str, list[Install]]] = defaultdict(lambda: defaultdict(list))
    for install in installs:
        out[install.release][install.jurisdiction].append(install)
    return out


@dataclass(frozen=True)
class ServedRow:
    """One difference between what a jurisdiction received and what the policy says."""

    release: ReleaseRow
    jurisdiction: str
    #: "received-withheld", "received-unapproved" or "missing".
    kind: str
    explanation: str
    evidence: tuple[str, ...]
    explained: bool


def _cite(installs: Sequence[Install], limit: int = 3) -> tuple[str, ...]:
    shown = tuple(i.evidence for i in installs[:limit])
    more = len(installs) - limit
    return shown + ((f"and {more} more report(s)",) if more > 0 else ())


def _received(
    release: ReleaseRow, jurisdiction: str, installs: list[Install], decisions: Mapping[str, Any]
) -> ServedRow | None:
    if release.decision != "approved":
        return ServedRow(
            release,
            jurisdiction,
            "received-unapproved",
            f"devices in {jurisdiction} report installing a release whose latest logged verdict "
            f"is {release.decision!r}",
            _cite(installs),
            False,
        )
    withheld = [
        i for i in installs if (d := decisions.get(i.customer)) is not None and not d.allowed
    ]
    if not withheld:
        return None
    d = decisions[withheld[0].customer]
    where = (
        f"policy {d.policy_name!r} (log entry {d.policy_log_index})"
        if d.policy_log_index is not None
        else "no logged policy"
    )
    customers = ", ".join(sorted({i.customer for i in withheld}))
    return ServedRow(
        release,
        jurisdiction,
        "received-withheld",
        f"{customers} installed it although {where}, rule {d.rule}, withholds it: {d.reason}",
        _cite(withheld),
        False,
    )


def _missing(
    release: ReleaseRow,
    jurisdiction: str,
    rows: list[DecisionRow],
    others: list[Install],
    devices: Devices,
) -> ServedRow:
    cited = _cite(others)
    allowed = [r for r in rows if r.decision.allowed]
    if not allowed and all(r.decision.policy_log_index is not None for r in rows):
        d = rows[0].decision
        text = (
            f"not installed; withheld by policy {d.policy_name!r} (log entry "
            f"{d.policy_log_index}), rule {d.rule}"
        )
        return ServedRow(release, jurisdiction, "missing", text, cited, True)
    last = release.transitions[-1] if release.transitions else None
    if last is not None and last.event != "completed":
        text = (
            f"no install reported yet; the rollout's last logged transition is {last.event!r} "
            f"in ring {last.ring} (log entry {last.index}): {jurisdiction}'s customers may be "
            "in a ring not offered yet"
        )
        return ServedRow(release, jurisdiction, "missing", text, cited, True)
    if jurisdiction not in devices.jurisdictions():
        text = (
            f"no device of {jurisdiction} is registered to report installs (no client key in "
            "an opened entitlement): the log holds no evidence either way"
        )
        return ServedRow(release, jurisdiction, "missing", text, cited, True)
    customers = ", ".join(sorted({r.customer for r in allowed}))
    rule = allowed[0].decision.rule if allowed else rows[0].decision.rule
    text = (
        f"others installed it, the logged policy allows it to {customers or 'its customers'} "
        f"(rule {rule}), the rollout completed, yet no device of {jurisdiction} reported it"
    )
    return ServedRow(release, jurisdiction, "missing", text, cited, False)


def compare(
    releases: Iterable[ReleaseRow],
    decisions: Sequence[DecisionRow],
    evidence: ServedEvidence,
    devices: Devices,
    focus: str | None = None,
) -> list[ServedRow]:
    """Each jurisdiction's installs of each release against the logged policy's decisions."""
    installed = by_release(evidence.installs)
    by_rel: dict[int, list[DecisionRow]] = defaultdict(list)
    for row in decisions:
        by_rel[row.release.index].append(row)
    out: list[ServedRow] = []
    for release in releases:
        got = installed.get(release.sha256, {})
        rows = by_rel.get(release.index, [])
        decided = {r.customer: r.decision for r in rows}
        for jurisdiction, installs in sorted(got.items()):
            if focus is None or jurisdiction == focus:
                flag = _received(release, jurisdiction, installs, decided)
                if flag is not None:
                    out.append(flag)
        if not got:
            continue
        others = [i for installs in got.values() for i in installs]
        entitled: dict[str, list[DecisionRow]] = defaultdict(list)
        for r in rows:
            entitled[r.jurisdiction].append(r)
        for jurisdiction, group in sorted(entitled.items()):
            if jurisdiction in got or (focus is not None and jurisdiction != focus):
                continue
            out.append(_missing(release, jurisdiction, group, others, devices))
    return out
