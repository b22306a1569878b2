"""The dashboard over a live gateway, through HTTP (no browser): permalinks whose proofs
verify, a halted rollout's plot, customers only for the operator and the regulator,
the audit drop box, escaping."""

from __future__ import annotations

import html
import json
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from clearance.gateway.rollout import Ring, customer_bucket
from clearance.inspection.findings import Finding, Location, Severity
from clearance.inspection.sarif import to_sarif
from clearance.keys import Signer
from clearance.log.checkpoint import open_checkpoint
from clearance.log.merkle import leaf_hash, verify_inclusion
from clearance.policy.rollout_statements import HealthReport
from clearance.web.pages import logged_ring_series, ring_series
from clearance.web.sarif_view import findings_of
from gateway.support import entitle, start_live
from gateway.test_flow import _approve

RINGS = (
    Ring("canary", 1.0, timedelta(hours=1), failure_threshold=0.3, min_reports=2),
    Ring("broad", 100.0, timedelta(0)),
)


def _canary(count: int) -> list[str]:
    return [f"site-{n}" for n in range(5000) if customer_bucket(f"site-{n}") < 1.0][:count]


def _health(release: str, status: str, device: Signer) -> bytes:
    return HealthReport(release, "canary", status).sign(device).to_bytes()


def _page(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers={"accept": "text/html", **headers}, timeout=30)


def test_halted_rollout_plot_permalinks_and_customers(tmp_path: Path) -> None:
    with start_live(tmp_path / "world", RINGS) as live:
        sha = _approve(live, tmp_path, "1.0.0")
        a, b = _canary(2)
        device_a, device_b = (entitle(live, c, "DE", "2024-01-01") for c in (a, b))
        with live.client(None) as client:  # devices sign their reports: no token
            client.submit(_health(sha, "ok", device_a))
            client.submit(_health(sha, "ok", device_b))
            halted = client.submit(_health(sha, "engine-crash", device_a))
        assert halted["rollout"]["status"] == "halted"

        # The rollouts page: the canary's failure rate crosses its threshold; transitions.
        page = _page(live.url + "/rollouts").text
        assert "canary failure rate" in page and "canary halt threshold" in page
        assert re.search(r"<td>halted</td>\s*<td>canary</td>", page)
        # The plot reads the device-signed reports the log holds, not the gateway's store.
        assert 'data-source="log"' in page and "3 logged health report(s)" in page

        # Every permalink's inclusion proof verifies against the signed checkpoint it shows.
        root = live.world.trust_root
        size = httpx.get(live.url + "/log/checkpoint").text.splitlines()[1]
        for index in range(int(size)):
            text = _page(f"{live.url}/entries/{index}").text
            proof = [
                bytes.fromhex(h) for h in re.findall(r"<li><code>([0-9a-f]{64})</code></li>", text)
            ]
            note = html.unescape(
                re.search(r'<pre id="checkpoint">(.*?)</pre>', text, re.S).group(1)
            )
            checkpoint, _ = open_checkpoint(note.encode(), root.log_key, root.log_origin)
            entry = live.server.gateway.reads.log_entry(index)
            verify_inclusion(index, checkpoint.size, leaf_hash(entry), proof, checkpoint.root_hash)
            assert '<code id="entry-sha256">' in text

        # Customers: not for the public, not for a vendor; for the operator and regulator.
        assert _page(live.url + "/customers").status_code == 401
        vendor_token = live.world.token("vendor")
        assert (
            _page(live.url + "/customers", authorization=f"Bearer {vendor_token}").status_code
            == 403
        )
        results = _page(f"{live.url}/search?q={a}").text.split('id="results"')[1].split("</ul>")[0]
        assert "Nothing matches" in results
        for role in ("operator", "policy"):
            signed = httpx.post(live.url + "/signin", data={"credential": live.world.token(role)})
            assert signed.status_code == 303
            cookie = signed.cookies.get("clearance_credential")
            assert "httponly" in signed.headers["set-cookie"].lower()
            assert "samesite=strict" in signed.headers["set-cookie"].lower()
            page = httpx.get(live.url + "/customers", cookies={"clearance_credential": cookie}).text
            assert f'data-customer="{a}"' in page and "allowed" in page
            found = httpx.get(f"{live.url}/search?q={a}", cookies={"clearance_credential": cookie})
            assert f"customer {a}" in found.text
        refused = httpx.post(live.url + "/signin", data={"credential": vendor_token})
        assert refused.status_code == 403 and "set-cookie" not in refused.headers


def test_ring_series_counts_per_ring_and_restarts_on_resume() -> None:
    def at(second: int) -> datetime:
        return datetime(2026, 11, 30, 0, 0, second, tzinfo=UTC)

    transitions = [
        (2, {"event": "started", "ring": "canary", "at": "2026-11-30T00:00:02Z"}),
        (6, {"event": "resumed", "ring": "canary", "at": "2026-11-30T00:00:06Z"}),
        (8, {"event": "advanced", "ring": "broad", "at": "2026-11-30T00:00:08Z"}),
    ]
    health = [
        (at(3), "ok"),
        (at(4), "failed"),
        (at(5), "engine-crash"),
        (at(7), "ok"),
        (at(9), "failed"),
    ]
    assert ring_series(transitions, health) == {
        "canary": [(at(3), 0.0), (at(4), 0.5), (at(5), 2 / 3), (at(7), 0.0)],
        "broad": [(at(9), 1.0)],
    }


def test_logged_ring_series_follows_log_order_and_aggregate_windows() -> None:
    """Rings come from the evidence itself, order from the log: a report logged on its own
    is placed at the last dated logged event; an aggregate at its window's end."""

    def at(second: int) -> datetime:
        return datetime(2026, 11, 30, 0, 0, second, tzinfo=UTC)

    transitions = [
        (2, {"event": "started", "ring": "canary", "at": "2026-11-30T00:00:02Z"}),
        (5, {"event": "resumed", "ring": "canary", "at": "2026-11-30T00:00:06Z"}),
        (8, {"event": "advanced", "ring": "broad", "at": "2026-11-30T00:00:08Z"}),
    ]
    health = [
        (3, None, "canary", 1, 0),
        (4, None, "canary", 0, 1),
        (6, at(7), "canary", 3, 1),  # an aggregate: 3 ok, 1 failed in its window
        (9, at(20), "broad", 9, 1),
    ]
    assert logged_ring_series(transitions, health) == {
        "canary": [(at(2), 0.0), (at(2), 0.5), (at(7), 0.25)],
        "broad": [(at(20), 0.1)],
    }


def test_sarif_view_shows_rule_text_offending_lines_and_evidence() -> None:
    finding = Finding(
        "content.document-hunting",
        Severity.HIGH,
        "looks for <b>SECRET</b> markings",
        (Location("rules.yar", "hunt", 3, 4, 'rule hunt {\n  strings: $a = "SECRET"'),),
        {"strings": ["SECRET"]},
    )
    [view] = findings_of(to_sarif([finding], {"yara-x": "1"}))
    assert view.rule_id == "content.document-hunting" and view.severity == "high"
    assert "documents" in view.rule_text and view.logical_name == "hunt" and view.uri == "rules.yar"
    assert [(line.number, line.text) for line in view.lines] == [
        (3, "rule hunt {"),
        (4, '  strings: $a = "SECRET"'),
    ]
    assert view.evidence == {"strings": ["SECRET"]}
    assert (
        findings_of({"runs": [{"results": [{"ruleId": "x"}]}]})[0].rule_id == "x"
    )  # other tools' SARIF
    assert findings_of("not sarif") == []


def test_audit_drop_box_checks_shape_and_size(tmp_path: Path) -> None:
    with start_live(tmp_path / "world") as live:
        url = live.url + "/api/v1/audit-reports"
        origin = live.world.trust_root.log_origin
        good = {"origin": origin, "checkpoint_size": 1, "clean": True, "findings": []}
        assert httpx.post(url, content=b"{").status_code == 400
        assert httpx.post(url, content=json.dumps({"origin": origin})).status_code == 400
        assert (
            httpx.post(url, content=json.dumps({**good, "origin": "elsewhere"})).status_code == 400
        )
        assert httpx.post(url, content=b"x" * (600 * 1024)).status_code == 413
        assert httpx.post(url, content=json.dumps(good)).json() == {"number": 1}
        evil = {
            **good,
            "clean": False,
            "findings": [
                {
                    "ruleId": "audit.bad-signature",
                    "severity": "high",
                    "message": "<script>alert(1)</script>",
                    "entryIndex": None,
                }
            ],
        }
        assert httpx.post(url, content=json.dumps(evil)).json() == {"number": 2}
        page = _page(live.url + "/audit")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>" not in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]


def test_auditor_posts_its_result_with_the_cli(tmp_path: Path) -> None:
    from clearance.cli import main

    with start_live(tmp_path / "world") as live:
        _approve(live, tmp_path, "1.0.0")
        root = tmp_path / "trust-root.json"
        root.write_bytes(live.world.trust_root.to_bytes())
        code = main(
            [
                "audit",
                "--server",
                live.url,
                "--trust-root",
                str(root),
                "--state",
                str(tmp_path / "state"),
                "--no-reinspect",
                "--quiet",
                "--post",
                live.url,
            ]
        )
        assert code == 0
        page = _page(live.url + "/audit").text
        assert "Report 1:" in page and "clean" in page
        with socket.socket() as s:  # a port the OS gave and nothing listens on
            s.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{s.getsockname()[1]}/"
        assert (
            main(
                [
                    "audit",
                    "--server",
                    live.url,
                    "--trust-root",
                    str(root),
                    "--state",
                    str(tmp_path / "state2"),
                    "--no-reinspect",
                    "--quiet",
                    "--post",
                    closed,
                ]
            )
            == 3
        )


def test_signed_report_is_logged_listed_on_audit_and_verifies(tmp_path: Path) -> None:
    """`clearance report --key --submit-server` logs the report through the gateway; /audit
    lists it with its permalink; `clearance report verify --server` checks the folder."""
    from clearance.cli import main

    with start_live(tmp_path / "world") as live:
        _approve(live, tmp_path, "1.0.0")
        root = tmp_path / "trust-root.json"
        root.write_bytes(live.world.trust_root.to_bytes())
        out = tmp_path / "report"
        common = ["--trust-root", str(root), "--json"]
        code = main(
            [
                "report",
                "--server",
                live.url,
                "--from",
                "2000-01-01",
                "--to",
                "2099-12-31",
                "--out",
                str(out),
                "--no-pdf",
                "--key",
                str(tmp_path / "world" / "keys" / "policy.key"),
                "--submit-server",
                live.url,
                "--token",
                live.world.token("policy"),
                *common,
            ]
        )
        assert code in (0, 1)  # written either way (1: red flags); logged below
        receipt = json.loads((out / "receipt.json").read_text())
        index = receipt["log_index"]
        assert receipt["kind"] == "report"
        page = _page(live.url + "/audit").text
        assert "Signed reports in the log" in page and f'href="/entries/{index}"' in page
        assert "report.html" in page
        entry = _page(live.url + f"/entries/{index}")
        assert entry.status_code == 200 and "report/v1" in entry.text
        assert main(["report", "verify", str(out), "--server", live.url, *common]) == 0
        (out / "report.html").write_text("<p>nothing to see</p>")
        assert main(["report", "verify", str(out), "--server", live.url, *common]) == 1
