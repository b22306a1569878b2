"""The dashboard over the worked example, in Debian chromium driven by Playwright: every
page renders, every link resolves, no console errors, screenshots kept and checked,
basic accessibility (headings, labels, contrast), customers only for operator/regulator,
API docs offline."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import httpx
import matplotlib.image
import pytest

from clearance.gateway.server import RunningGateway
from web.worked_example import ARGS, ARTIFACTS, CHROMIUM, run_worked_example

pytestmark = pytest.mark.browser

MAIN_PAGES = {
    "overview": ("/", ["Clearance gateway", "endpoint-antivirus", "us-2024-av-restriction"]),
    "releases": ("/releases", ["Releases", "2024.7.1", "approved"]),
    "policy": ("/policy", ["us-2024-av-restriction", "no updates after", "today"]),
    "witnesses": ("/witnesses", ["witness-1", "witness-2", "Latest checkpoint"]),
    "rollouts": ("/rollouts", ["complete", "halt threshold", "completed"]),
    "entries": ("/entries", ["Log entries", "release", "verdict"]),
    "entry-0": ("/entries/0", ["Log entry 0", "Inclusion proof", "vendor"]),
    "audit": ("/audit", ["Audit results"]),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: run scripts/install-system-deps.sh")
    data = tmp_path_factory.mktemp("worked") / "data"
    tokens = run_worked_example(data)
    with RunningGateway(data / "gateway", workers=0) as server:
        yield server.url, tokens


@pytest.fixture(scope="module")
def browser(site: Any) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _page(browser: Any, base: str, errors: list[str]) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on(
        "console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    # Offline: any request that leaves the gateway fails the test.
    host = urlparse(base).netloc
    page.route(
        re.compile(r"^https?://(?!" + re.escape(host) + r"/).*"),
        lambda route: (errors.append(f"external request {route.request.url}"), route.abort()),
    )
    return page


def test_every_page_renders_and_every_link_resolves(browser: Any, site: Any) -> None:
    base, _ = site
    errors: list[str] = []
    page = _page(browser, base, errors)
    seen: set[str] = set()
    queue = ["/"]
    html_pages = 0
    while queue and len(seen) < 120:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        if path.startswith(
            ("/log/", "/tuf/", "/api/", "/trust-root.json", "/openapi.json", "/docs-assets/")
        ) or path.endswith((".sarif", ".json")):
            r = httpx.get(base + path, timeout=30)
            assert r.status_code == 200, f"{path}: HTTP {r.status_code}"
            continue
        response = page.goto(base + path)
        assert response is not None and response.status == 200, (
            f"{path}: HTTP {response and response.status}"
        )
        if path == "/docs":
            continue
        html_pages += 1
        assert page.locator("h1").count() == 1, f"{path}: one h1 per page"
        for href in page.eval_on_selector_all(
            "a[href]", "els => els.map(e => e.getAttribute('href'))"
        ):
            target = urlparse(urljoin(base + path, href))
            if target.netloc == urlparse(base).netloc and target.path not in seen:
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
    assert errors == []
    assert (
        html_pages >= 12 and "/entries/8" in seen and any(p.endswith("/report.html") for p in seen)
    )


def test_screenshots_of_the_main_pages(browser: Any, site: Any) -> None:
    base, _ = site
    errors: list[str] = []
    page = _page(browser, base, errors)
    out = ARTIFACTS / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    for name, (path, expected) in MAIN_PAGES.items():
        page.goto(base + path)
        text = page.inner_text("body")
        for needle in expected:
            assert needle.lower() in text.lower(), f"{path}: {needle!r} not on the page"
        shot = out / f"{name}.png"
        page.screenshot(path=str(shot), full_page=True)
        pixels = matplotlib.image.imread(str(shot))
        assert pixels.shape[1] == 1280 and pixels.shape[0] >= 300
        colours = {tuple(p) for p in pixels[::7, ::7].reshape(-1, pixels.shape[2]).tolist()}
        assert len(colours) > 20, f"{name}: the screenshot is (nearly) blank"
        if path in ("/policy", "/rollouts"):
            assert page.locator("figure svg").count() >= 1, f"{path}: the plot is missing"
    assert errors == []


def test_release_page_renders_sarif_findings_and_links_reports(browser: Any, site: Any) -> None:
    base, _ = site
    errors: list[str] = []
    page = _page(browser, base, errors)
    page.goto(base + "/releases")
    page.click("#releases tbody tr a")
    findings = page.locator("#findings .finding")
    assert findings.count() >= 1
    first = findings.first.inner_text()
    assert re.search(r"content\.[a-z-]+", first)
    assert page.locator("#reports a", has_text="SARIF").count() == 1
    page.click("#reports a:has-text('HTML')")
    assert "Clearance" in page.title() or page.locator("h1").count() >= 1
    page.go_back()
    page.click("#verdicts a")
    assert page.locator("#kind").inner_text() == "verdict"
    assert errors == []


def test_customers_only_for_operator_and_regulator(browser: Any, site: Any) -> None:
    base, tokens = site
    errors: list[str] = []
    page = _page(browser, base, errors)
    response = page.goto(base + "/customers")
    assert response is not None and response.status == 401
    assert page.locator("nav a", has_text="Customers").count() == 0
    page.goto(base + "/search?q=us-hospital")
    assert "Nothing matches" in page.inner_text("#results")
    # A vendor's credential is not enough.
    page.goto(base + "/signin")
    page.fill("#credential", tokens["vendor"])
    page.click("form[action='/signin'] button")
    assert "not the log operator" in page.inner_text("main")
    for role in ("operator", "policy"):
        page.goto(base + "/signin")
        page.fill("#credential", tokens[role])
        page.click("form[action='/signin'] button")
        page.wait_for_url("**/customers")
        row = page.locator("tr[data-customer='us-hospital']")
        assert row.locator("td.withheld").inner_text() == "withheld"
        assert "no-updates" in row.inner_text() and "us-2024-av-restriction" in row.inner_text()
        assert page.locator("tr[data-customer='de-stadtwerke'] td.allowed").count() == 1
        page.click("form[action='/signout'] button")
    # The refusals above are the only errors the browser reports.
    assert [e for e in errors if "status of 401" not in e and "status of 403" not in e] == []


def test_api_docs_work_offline(browser: Any, site: Any) -> None:
    base, _ = site
    errors: list[str] = []
    page = _page(browser, base, errors)
    page.goto(base + "/docs")
    page.wait_for_selector(".opblock", timeout=20000)
    assert page.locator(".opblock").count() >= 8
    assert "/api/v1/submissions" in page.inner_text("body")
    assert [e for e in errors if "external request" in e] == []


def test_html_error_pages(browser: Any, site: Any) -> None:
    base, _ = site
    errors: list[str] = []
    page = _page(browser, base, errors)
    for path, status in (
        ("/no-such-page", 404),
        ("/entries/999999", 404),
        ("/entries/x", 404),
        ("/releases/" + "0" * 64, 404),
    ):
        response = page.goto(base + path)
        assert response is not None and response.status == status
        assert page.locator("h1").inner_text().startswith(str(status))
        assert page.locator("a[href='/']").count() >= 1
    api = httpx.get(base + "/no-such-page", headers={"accept": "application/json"})
    assert api.status_code == 404 and api.json()["detail"]


CONTRAST_JS = """
() => {
  const lum = c => { const v = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map(x => x / 255)
    .map(x => x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4));
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const bg = el => { for (let e = el; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor;
    const a = c.match(/[\\d.]+/g); if (a && (a.length < 4 || Number(a[3]) > 0.5)) return c; } return 'rgb(255,255,255)'; };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg') || el.closest('.skip')) continue;
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const s = getComputedStyle(el); if (s.visibility === 'hidden' || s.display === 'none') continue;
    const l1 = lum(s.color), l2 = lum(bg(el));
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const large = parseFloat(s.fontSize) >= 24 || (parseFloat(s.fontSize) >= 18.6 && Number(s.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) bad.push(el.tagName + ' ' + el.textContent.trim().slice(0, 30) + ' ' + ratio.toFixed(2));
  }
  return bad;
}
"""


def test_basic_accessibility(browser: Any, site: Any) -> None:
    base, tokens = site
    errors: list[str] = []
    page = _page(browser, base, errors)
    page.set_extra_http_headers({"authorization": f"Bearer {tokens['operator']}"})
    for path in [p for p, _ in MAIN_PAGES.values()] + ["/customers", "/search?q=2024", "/signin"]:
        page.goto(base + path)
        assert page.evaluate("document.documentElement.lang") == "en"
        levels = [
            int(t[1])
            for t in page.eval_on_selector_all(
                "main h1, main h2, main h3, main h4", "els => els.map(e => e.tagName)"
            )
        ]
        assert levels[0] == 1 and all(b - a <= 1 for a, b in itertools.pairwise(levels)), (
            f"{path}: {levels}"
        )
        unlabelled = page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(i => !(i.id && document.querySelector(`label[for="${i.id}"]`)) && !i.getAttribute('aria-label'))
            .map(i => i.name)""")
        assert unlabelled == [], f"{path}: inputs without a label: {unlabelled}"
        assert page.evaluate(CONTRAST_JS) == [], f"{path}: low contrast"
        assert (
            page.locator("table th").count() == page.locator("table th[scope]").count()
            or path == "/entries/0"
        )
    assert errors == []


def test_posted_audit_result_is_shown(site: Any, browser: Any) -> None:
    base, _ = site
    report = {
        "origin": "clearance.demo/log",
        "checkpoint_size": 9,
        "clean": False,
        "audited_from": 0,
        "audited_to": 9,
        "cosignatures": 2,
        "findings": [
            {
                "ruleId": "audit.bad-signature",
                "severity": "high",
                "message": "entry 4: forged",
                "entryIndex": 4,
                "evidence": {},
            }
        ],
    }
    assert httpx.post(base + "/api/v1/audit-reports", content=json.dumps(report)).status_code == 201
    bad = httpx.post(base + "/api/v1/audit-reports", content=json.dumps({**report, "origin": "x"}))
    assert bad.status_code == 400
    page = _page(browser, base, [])
    page.goto(base + "/audit")
    assert "audit.bad-signature" in page.inner_text("main") and "discrepancies" in page.inner_text(
        "main"
    )
