"""Shapes for the health and trace pages: the latency chart's geometry, timeline words."""

from __future__ import annotations

from dataclasses import dataclass

from trunks.models import TrunkEvent
from trunks.presentation import event_result

from .selectors import LatencyPoint

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 600, 160, 24


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    points: str  # the SVG polyline's "x,y x,y ..."
    dots: list[tuple[float, float, str]]  # x, y, tooltip
    max_ms: float
    last_ms: float | None
    y_ticks: list[tuple[float, str]]


def latency_chart(points: list[LatencyPoint]) -> Chart:
    """Inline-SVG geometry: x by order of measurement, y from 0 to the largest latency seen."""
    if not points:
        return Chart(CHART_WIDTH, CHART_HEIGHT, "", [], 0.0, None, [])
    max_ms = max(max(p.ms for p in points), 1.0)
    inner_w, inner_h = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - 2 * CHART_PAD
    step = inner_w / max(len(points) - 1, 1)
    dots = []
    for i, p in enumerate(points):
        x = CHART_PAD + i * step
        y = CHART_PAD + inner_h * (1 - p.ms / max_ms)
        dots.append((round(x, 1), round(y, 1), f"{p.at:%Y-%m-%d %H:%M:%S} UTC: {p.ms:.0f} ms"))
    ticks = [(round(CHART_PAD + inner_h * (1 - f), 1), f"{max_ms * f:.0f} ms") for f in (0, 0.5, 1)]
    return Chart(
        CHART_WIDTH,
        CHART_HEIGHT,
        " ".join(f"{x},{y}" for x, y, _ in dots),
        dots,
        max_ms,
        points[-1].ms,
        ticks,
    )


GOOD = {"registered", "reachable"}


@dataclass(frozen=True)
class TimelineEntry:
    at: object
    kind: str
    words: str
    ok: bool
    source: str
    user_agent: str


def timeline_entry(event: TrunkEvent) -> TimelineEntry:
    detail = event.detail or {}
    return TimelineEntry(
        at=event.at,
        kind=event.kind,
        words=event_result(event),
        ok=event.kind in GOOD or bool(detail.get("ok")),
        source=str(detail.get("source", "")),
        user_agent=str(detail.get("user_agent", "")),
    )
