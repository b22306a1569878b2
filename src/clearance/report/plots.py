"""The report's and the dashboard's plots (matplotlib, Agg backend, SVG text; no global
state: every figure is created and closed here)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
from matplotlib.figure import Figure

from clearance.policy import DistributionPolicy

# Colour-blind-safe, dark enough for text contrast on white (Okabe-Ito, darkened).
GREEN = "#007a53"
RED = "#b3261e"
ORANGE = "#a15c00"
BLUE = "#0b5cad"
GREY = "#555555"
DECISION_COLOURS = {"approved": GREEN, "rejected": RED, "needs-review": ORANGE}


def _num(moment: datetime) -> float:
    """A datetime as a matplotlib date number (the stubs do not type date2num)."""
    return float(mdates.date2num(moment))  # type: ignore[no-untyped-call]


def _date_axis(fig: Figure, ax: Any, pattern: str = "%Y-%m-%d") -> None:
    ax.xaxis.set_major_formatter(mdates.DateFormatter(pattern))  # type: ignore[no-untyped-call]
    fig.autofmt_xdate()


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    # Text stays text (searchable, read by screen readers, selectable), not glyph paths.
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def policy_timeline(
    policy: DistributionPolicy, today: datetime, period: tuple[datetime, datetime] | None = None
) -> str:
    """Per jurisdiction: end of new sales, end of updates, grace period, allowed categories,
    and today (and the report's period, shaded)."""
    rules = list(policy.rules)
    fig = Figure(figsize=(8, 0.8 + 0.7 * max(1, len(rules))))
    ax = fig.subplots()
    moments: list[datetime] = [today]
    for y, rule in enumerate(rules):
        start, end = rule.grace_start, rule.grace_end
        if start is not None and end is not None:
            ax.barh(
                y,
                _num(end) - _num(start),
                left=_num(start),
                height=0.35,
                color=BLUE,
                alpha=0.35,
                label="grace (updates continue)" if y == 0 else None,
            )
            moments += [start, end]
        if rule.no_new_sales_after is not None:
            ax.plot(
                _num(rule.no_new_sales_after),
                y,
                marker="v",
                color=ORANGE,
                markersize=11,
                linestyle="none",
                label="no new sales after" if y == 0 else None,
            )
            moments.append(rule.no_new_sales_after)
        if rule.no_updates_after is not None:
            ax.plot(
                _num(rule.no_updates_after),
                y,
                marker="X",
                color=RED,
                markersize=11,
                linestyle="none",
                label="no updates after" if y == 0 else None,
            )
            moments.append(rule.no_updates_after)
        if rule.allowed_categories:
            ax.annotate(
                "still allowed: " + ", ".join(rule.allowed_categories),
                (0, y),
                xycoords=("axes fraction", "data"),
                xytext=(4, -14),
                textcoords="offset points",
                fontsize=8,
                color=GREY,
            )
    if period is not None:
        ax.axvspan(_num(period[0]), _num(period[1]), color=GREY, alpha=0.12, label="report period")
        moments += list(period)
    ax.axvline(_num(today), color=GREEN, linewidth=2, label="today")
    low, high = min(moments) - timedelta(days=15), max(moments) + timedelta(days=15)
    ax.set_xlim(_num(low), _num(high))
    ax.set_yticks(range(len(rules)), [r.jurisdiction for r in rules] or ["(none)"])
    ax.set_ylim(-0.8, max(0, len(rules) - 1) + 0.8)
    _date_axis(fig, ax, "%Y-%m-%d")
    ax.set_title(f"Policy {policy.name!r}: cut-offs per jurisdiction")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    return _svg(fig)


def releases_timeline(rows: Sequence[tuple[datetime, str, str]]) -> str:
    """Updates per day, stacked by latest verdict (rows: date, "product version", decision);
    one bar per day keeps the figure the same size for ten updates or ten thousand."""
    per_day: dict[str, dict[datetime, int]] = {}
    for moment, _label, decision in rows:
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        per_day.setdefault(decision, {})
        per_day[decision][day] = per_day[decision].get(day, 0) + 1
    days = sorted({d for counts in per_day.values() for d in counts})
    fig = Figure(figsize=(8, 2.8))
    ax = fig.subplots()
    bottom = dict.fromkeys(days, 0)
    for decision in sorted(per_day):
        heights = [per_day[decision].get(d, 0) for d in days]
        ax.bar(
            [_num(d) + 0.5 for d in days],
            heights,
            width=0.8,
            bottom=[bottom[d] for d in days],
            color=DECISION_COLOURS.get(decision, GREY),
            label=decision,
        )
        for d, h in zip(days, heights, strict=True):
            bottom[d] += h
    if days:
        ax.set_xlim(_num(days[0] - timedelta(days=2)), _num(days[-1] + timedelta(days=3)))
    _date_axis(fig, ax)
    ax.set_ylabel("updates")
    ax.set_title("Updates in the period per day, by latest verdict")
    if rows:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    return _svg(fig)


def decisions_by_jurisdiction(counts: dict[str, tuple[int, int]]) -> str:
    """Stacked bars: decisions allowed and withheld per jurisdiction."""
    names = sorted(counts)
    fig = Figure(figsize=(6, 0.9 + 0.45 * max(2, len(names))))
    ax = fig.subplots()
    allowed = [counts[n][0] for n in names]
    withheld = [counts[n][1] for n in names]
    ax.barh(names, allowed, color=GREEN, label="allowed")
    ax.barh(names, withheld, left=allowed, color=RED, label="withheld")
    ax.set_xlabel("policy decisions (customer × update)")
    ax.set_title("Decisions per jurisdiction")
    ax.legend(loc="lower right", fontsize=8)
    return _svg(fig)


def ring_failure_rates(
    series: dict[str, list[tuple[datetime, float]]],
    thresholds: dict[str, float],
    transitions: Sequence[tuple[datetime, str]] = (),
) -> str:
    """Per ring, the failure rate over time (after each health report) against the ring's
    halt threshold; rollout transitions as dotted markers."""
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    colours = [BLUE, ORANGE, GREEN, RED, GREY]
    for n, ring in enumerate(sorted(set(series) | set(thresholds))):
        colour = colours[n % len(colours)]
        points = series.get(ring, [])
        if points:
            ax.step(
                [_num(p[0]) for p in points],
                [100 * p[1] for p in points],
                where="post",
                color=colour,
                marker="o",
                markersize=3,
                label=f"{ring} failure rate",
            )
        if ring in thresholds:
            ax.axhline(
                100 * thresholds[ring],
                color=colour,
                linestyle="--",
                linewidth=1,
                label=f"{ring} halt threshold",
            )
    for at, event in transitions:
        ax.axvline(_num(at), color=GREY, linewidth=0.8, linestyle=":")
        ax.annotate(
            event,
            (_num(at), 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=7,
            color=GREY,
            va="top",
            ha="right",
        )
    moments = [p[0] for pts in series.values() for p in pts] + [t[0] for t in transitions]
    if moments:
        pad = max(timedelta(seconds=30), (max(moments) - min(moments)) / 20)
        ax.set_xlim(_num(min(moments) - pad), _num(max(moments) + pad))
    _date_axis(fig, ax, "%m-%d %H:%M:%S")
    ax.set_ylabel("failure rate (%)")
    ax.set_title("Rollout rings: failure rate against halt threshold")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    return _svg(fig)
