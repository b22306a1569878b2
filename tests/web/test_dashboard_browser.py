"""The dashboard in a real browser: Debian chromium driven by Playwright."""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest

from clearance.attest import Artifact, create_release, create_verdict
from clearance.demo.world import World, build_world
from clearance.gateway.client import GatewayClient
from clearance.gateway.rollout import Ring
from clearance.gateway.server import RunningGateway

INSTANT = (
    Ring("canary", 1, timedelta(0)),
    Ring("early", 10, timedelta(0)),
    Ring("broad", 100, timedelta(0)),
)


def approve_and_complete(world: World, url: str, tmp: Path) -> str:
    rules = tmp / "rules.yar"
    rules.write_bytes(b'rule web_demo { strings: $a = "web-demo" condition: $a }\n')
    env = create_release(
        product=world.product,
        version="3.1.4",
        channel="stable",
        artifacts=[Artifact.from_file(rules, "content")],
        signers=world.vendor,
    )
    with GatewayClient(url, world.token("vendor")) as vendor:
        vendor.submit(env.to_bytes())
        vendor.upload_artifact(rules.read_bytes())
    with GatewayClient(url, world.token("inspector")) as inspector:
        inspector.submit(create_verdict(env, "approved", signers=world.inspector).to_bytes())
    deadline = time.monotonic() + 60
    with GatewayClient(url) as anyone:
        while time.monotonic() < deadline:
            rollout = anyone.status(env.sha256)["rollout"]
            if rollout and rollout["status"] == "complete":
                return env.sha256
            time.sleep(0.1)
    raise AssertionError("rollout did not complete")


CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.browser
def test_dashboard_shows_releases_verdicts_and_rings(tmp_path: Path) -> None:
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: run scripts/install-system-deps.sh")
    from playwright.sync_api import sync_playwright

    world = build_world(tmp_path / "w", embedded_inspector=False, rings=INSTANT)
    with RunningGateway(world.data_dir, workers=0) as server:
        sha = approve_and_complete(world, server.url, tmp_path)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page()
                page.goto(server.url + "/")
                assert page.title() == "Clearance gateway"
                row = page.locator(f"tr[data-sha256='{sha}']")
                assert row.locator("td.state").inner_text() == "approved"
                assert "approved by inspector" in row.inner_text()
                rings = row.locator("span.ring")
                assert rings.count() == 3
                assert row.locator("span.ring.current").inner_text().startswith("broad")
                assert int(page.locator("#log-size").inner_text()) >= 6
                page.click(f"tr[data-sha256='{sha}'] a")
                page.wait_for_selector("#transitions")
                events = page.locator("#transitions tbody tr td:nth-child(2)").all_inner_texts()
                assert events == ["started", "advanced", "advanced", "completed"]
                assert page.locator("#state").inner_text() == "approved"
                # Autoescaping: the dashboard renders stored text, never interprets it.
                assert page.evaluate("document.querySelectorAll('script').length") == 0
            finally:
                browser.close()
