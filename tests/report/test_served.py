"""Equal treatment from what was served: device-signed health reports in the log (alone or
inside a logged aggregate) against the logged policy; each red flag names its evidence."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from audit.helpers import World
from clearance.attest import Envelope, Statement, Subject, canonical_json
from clearance.gateway.health_batch import HealthAggregate
from clearance.keys import Signer
from clearance.log.tiles import DirectoryTileSource
from clearance.policy import ENTITLEMENT_PREDICATE_TYPE
from clearance.policy.rollout_statements import HealthReport
from clearance.report import Period, collect
from clearance.report.collect import ReportData
from monitor.support import policy_body, rollout

PERIOD = Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))


def _entitlement(world: World, customer: str, jurisdiction: str, device: Signer) -> bytes:
    body = {
        "customer": customer,
        "jurisdiction": jurisdiction,
        "product": "agent",
        "start": "2023-01-01",
        "end": "2099-01-01",
        "client_keys": [device.verifier.to_string()],
    }
    subject = Subject(customer, hashlib.sha256(canonical_json(body)).hexdigest())
    return Statement((subject,), ENTITLEMENT_PREDICATE_TYPE, body).sign([world.vendor]).to_bytes()


class Fleet:
    """An approved release rolled out to completion; policy: no updates in XX after
    2026-01-01; customers in DE, XX and FR, one device each."""

    def __init__(self, world: World, completed: bool = True) -> None:
        self.world = world
        self.devices = {j: Signer.generate(f"device-{j.lower()}") for j in ("DE", "XX", "FR")}
        self.release = world.release("1.0.0")
        world.append(
            self.release.to_bytes(),
            world.verdict(self.release).to_bytes(),
            rollout("started", self.release.sha256),
            *([rollout("completed", self.release.sha256, "broad")] if completed else []),
            world.policy(policy_body({"XX": "2026-01-01T00:00:00Z"})).to_bytes(),
            *(
                _entitlement(world, f"{j.lower()}-customer", j, device)
                for j, device in self.devices.items()
            ),
        )

    def health(self, jurisdiction: str, status: str = "ok") -> Envelope:
        report = HealthReport(self.release.sha256, "broad", status)
        return report.sign(self.devices[jurisdiction])

    def report(self, fetch: Any = None) -> ReportData:
        return collect(
            self.world.trust_root(),
            DirectoryTileSource(self.world.logdir / "public"),
            PERIOD,
            fetch_aggregate=fetch,
        )


def _flags(data: ReportData) -> list[tuple[str, str]]:
    return [(t.jurisdiction, t.kind) for t in data.served_flags]


def test_attack_withheld_release_installed_in_its_jurisdiction(world: World) -> None:
    """XX's gateway served an update the logged policy withholds from XX: the device's
    signed report in the log proves it, and the flag cites that entry and the policy."""
    fleet = Fleet(world)
    [at] = world.append(fleet.health("XX").to_bytes())
    world.append(fleet.health("DE").to_bytes(), fleet.health("FR", "failed").to_bytes())
    data = fleet.report()
    assert _flags(data) == [("XX", "received-withheld")]
    [flag] = data.served_flags
    assert "xx-customer installed it although policy 'ban-2026'" in flag.explanation
    assert flag.evidence[0].startswith(f"health report at log entry {at}, signed by device key")
    assert "of xx-customer (entitlement entry 6)" in flag.evidence[0]
    assert data.red_flags == []  # the recomputed decisions alone see nothing wrong
    assert len(data.served_evidence.installs) == 3


def test_attack_allowed_release_missing_from_one_jurisdiction(world: World) -> None:
    """DE installed it, FR is allowed it, the rollout completed, and no FR device reports
    it: a red flag citing DE's evidence.  XX's absence is explained by the policy."""
    fleet = Fleet(world)
    world.append(fleet.health("DE").to_bytes())
    data = fleet.report()
    assert _flags(data) == [("FR", "missing")]
    explained = [t for t in data.served if t.explained]
    assert [(t.jurisdiction, t.kind) for t in explained] == [("XX", "missing")]
    assert "withheld by policy 'ban-2026'" in explained[0].explanation
    assert "signed by device key device-de+" in data.served_flags[0].evidence[0]


def test_unfinished_rollout_explains_a_missing_install(world: World) -> None:
    fleet = Fleet(world, completed=False)
    world.append(fleet.health("DE").to_bytes())
    data = fleet.report()
    assert data.served_flags == []
    fr = next(t for t in data.served if t.jurisdiction == "FR")
    assert "last logged transition is 'started'" in fr.explanation


def _aggregate(fleet: Fleet, jurisdictions: Sequence[str]) -> tuple[bytes, list[dict[str, Any]]]:
    envelopes = [fleet.health(j) for j in jurisdictions]
    rows = [(e.sha256, "ok", e.to_bytes()) for e in envelopes]
    aggregate = HealthAggregate.build(fleet.release.sha256, "broad", 1_800_000_000, 3600, rows)
    return aggregate.to_bytes(), [e.to_dict() for e in envelopes]


def test_installs_inside_a_logged_aggregate_count_when_they_match_its_root(world: World) -> None:
    fleet = Fleet(world)
    entry, reports = _aggregate(fleet, ["DE", "FR"])
    [at] = world.append(entry)

    def fetch(index: int) -> Sequence[Mapping[str, Any]]:
        assert index == at
        return reports

    data = fleet.report(fetch)
    assert data.served_flags == [] and len(data.served_evidence.installs) == 2
    assert data.releases[0].health == {"broad": [2, 0]}  # the logged counts, per ring
    # Without the individual reports only the counts are known: FR and DE are unknown.
    unopened = fleet.report()
    assert unopened.served_evidence.unopened_aggregates and unopened.served == []


def test_attack_gateway_serves_other_reports_than_it_logged(world: World) -> None:
    """The gateway hides XX's install by serving a different set of reports for the
    aggregate: they do not hash to the logged root, so none is used and the report says so."""
    fleet = Fleet(world)
    entry, _ = _aggregate(fleet, ["DE", "XX"])
    [at] = world.append(entry)
    _, substitute = _aggregate(fleet, ["DE", "FR"])
    data = fleet.report(lambda index: substitute)
    assert data.served_evidence.mismatched_aggregates == [at]
    assert data.served_evidence.installs == []


def test_attack_gateway_pages_the_reader_back_forever() -> None:
    """A hostile gateway answers every page of an aggregate with a ``next_after`` that is
    not ahead of the page asked for: the reader would fetch forever; it stops with a
    clear error instead."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from clearance.errors import BadInput
    from clearance.report.served import fetch_from_server

    asked: list[str] = []

    class Hostile(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = json.dumps({"reports": [], "next_after": "0" * 64}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        fetch = fetch_from_server(f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(BadInput, match="is not ahead"):
            fetch(7)
        assert len(asked) == 2  # the first page, and the one that led back: no more
    finally:
        server.shutdown()
        server.server_close()
