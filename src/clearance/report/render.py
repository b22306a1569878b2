"""Writing the report: HTML (self-contained: inline CSS and SVG plots), PDF printed by
headless Chromium, a JSON summary, and a DSSE envelope over their digests."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from clearance.attest import Envelope, Statement, Subject
from clearance.attest.statement import REPORT_V1
from clearance.keys import Signer
from clearance.report import plots
from clearance.report.collect import ReportData, summary
from clearance.report.errors import PdfFailed

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")

_ENV = Environment(
    loader=PackageLoader("clearance.report", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def render_html(data: ReportData) -> str:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in data.decisions:
        counts[row.jurisdiction][0 if row.decision.allowed else 1] += 1
    period = (data.period.start, data.period.end)
    figures = {
        "releases": plots.releases_timeline(
            [(r.dated, f"{r.product} {r.version}", r.decision) for r in data.releases if r.dated]
        )
        if data.releases
        else "",
        "policies": [
            plots.policy_timeline(p.policy, data.generated, period) for p in data.policies
        ],
        "decisions": plots.decisions_by_jurisdiction({k: (v[0], v[1]) for k, v in counts.items()})
        if counts
        else "",
    }
    return _ENV.get_template("report.html").render(
        d=data,
        plots=figures,
        fmt=_fmt,
        period_text=f"{_fmt(data.period.start)} to {_fmt(data.period.end)}",
        treat_counts={k: (v[0], v[1]) for k, v in counts.items()},
    )


def find_chromium() -> str | None:
    for name in CHROMIUM:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def print_pdf(html: Path, pdf: Path, timeout: float = 120.0) -> None:
    """Print ``html`` to ``pdf`` with headless Chromium (no network: the HTML is
    self-contained)."""
    browser = find_chromium()
    if browser is None:
        raise PdfFailed("no Chromium to print the PDF (scripts/install-system-deps.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="clearance-chromium-") as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            html.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise PdfFailed(f"Chromium did not print the PDF within {timeout:g} s") from None
    if done.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise PdfFailed(f"Chromium could not print the PDF (exit {done.returncode}): {tail[0]}")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def report_statement(data: ReportData, files: dict[str, Path], producer: str) -> Statement:
    """The in-toto statement a report's producer signs: the files' digests and what the
    report covers (log origin, tree size and root hash, period, jurisdiction)."""
    return Statement(
        tuple(Subject(name, sha256_file(path)) for name, path in sorted(files.items())),
        REPORT_V1,
        {**summary(data), "producer": producer, "generated": _fmt(data.generated)},
    )


def sign_report(statement: Statement, signer: Signer) -> Envelope:
    return statement.sign([signer])
