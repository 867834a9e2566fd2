"""Charts and the map of the dashboard, drawn as SVG on the server (pure functions).

No chart library and no map tiles: the machines that run this may have no internet, and the
pages work without JavaScript. Every text is escaped.
"""

from __future__ import annotations

import math
import textwrap
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from html import escape

from services.common import geo
from services.ops.indicators import RequestFacts, paris_date

COLOURS = {
    "confirmed": "#1a7f37",
    "unresolved": "#cf222e",
    "cancelled": "#8c959f",
    "open": "#0969da",
    "requests": "#0969da",
    "appointments": "#1a7f37",
}
Translate = Callable[[str], str]  # the reader's catalogue (gettext); French as written by default


def _french(text: str) -> str:
    return text


WAIT_BUCKETS = ((15, "< 15 min"), (30, "15–30"), (60, "30–60"), (120, "1–2 h"), (240, "2–4 h"), (math.inf, "> 4 h"))


def bars(
    values: Sequence[tuple[str, float]], title: str, colour: str = "#0969da", width: int = 420, t: Translate = _french
) -> str:
    """Horizontal bars, one per label (`title` and labels already in the reader's language)."""
    if not values:
        return f'<p class="muted">{escape(title)} : {escape(t("rien sur la période"))}</p>'
    top = max(v for _, v in values) or 1
    row, label_w = 22, 150
    lines = textwrap.wrap(title, 56)  # a long title on several lines rather than cut at the edge
    head = 10 + 16 * len(lines)
    height = row * len(values) + head + 2
    parts = [f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" width="100%">']
    parts += [
        f'<text x="0" y="{14 + 16 * n}" font-size="13" font-weight="600">{escape(line)}</text>'
        for n, line in enumerate(lines)
    ]
    for i, (label, value) in enumerate(values):
        y = head + i * row
        w = (width - label_w - 50) * value / top
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="14" fill="{colour}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="12">{value:g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def requests_per_day(
    requests: Sequence[RequestFacts], first: date, last: date, width: int = 720, t: Translate = _french
) -> str:
    """Stacked columns: requests received each day, by what became of them."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    counts: dict[date, Counter[str]] = {d: Counter() for d in days}
    for r in requests:
        day = paris_date(r.received_at)
        if day in counts:
            counts[day][r.status] += 1
    top = max([sum(c.values()) for c in counts.values()] + [1])
    height, base, column = 170, 140, (width - 30) / len(days)
    title = escape(t("Demandes reçues par jour, selon leur issue"))
    parts = [
        f'<svg role="img" aria-label="{title}" viewBox="0 0 {width} {height}" width="100%">',
        f'<text x="0" y="14" font-size="13" font-weight="600">{title}</text>',
        f'<text x="0" y="{base}" font-size="11">0</text><text x="0" y="30" font-size="11">{top}</text>',
    ]
    for i, day in enumerate(days):
        x, y = 30 + i * column, float(base)
        for status in ("confirmed", "open", "unresolved", "cancelled"):
            n = counts[day][status]
            if n:
                h = (base - 24) * n / top
                y -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(1.0, column - 2):.1f}" height="{h:.1f}" '
                    f'fill="{COLOURS[status]}"><title>{day} {status}: {n}</title></rect>'
                )
        if (len(days) <= 31 and i % 7 == 0 and i + 3 < len(days)) or i == len(days) - 1:
            anchor = ' text-anchor="end"' if i == len(days) - 1 else ""  # the last one ends at the edge
            at = x + column if anchor else x
            parts.append(f'<text x="{at:.1f}" y="{base + 14}" font-size="10"{anchor}>{day:%d/%m}</text>')
    legend = [
        ("confirmed", t("rendez-vous")),
        ("open", t("en cours")),
        ("unresolved", t("sans solution")),
        ("cancelled", t("annulée")),
    ]
    for i, (status, label) in enumerate(legend):
        parts.append(
            f'<rect x="{30 + i * 130}" y="{height - 12}" width="10" height="10" fill="{COLOURS[status]}"/>'
            f'<text x="{44 + i * 130}" y="{height - 3}" font-size="11">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def wait_distribution(requests: Sequence[RequestFacts]) -> list[tuple[str, float]]:
    """Confirmed requests by time from receipt to confirmation, in buckets."""
    counts: Counter[str] = Counter()
    for r in requests:
        if r.status == "confirmed" and r.confirmed_at:
            minutes = (r.confirmed_at - r.received_at).total_seconds() / 60
            counts[next(label for limit, label in WAIT_BUCKETS if minutes < limit)] += 1
    return [(label, counts[label]) for _, label in WAIT_BUCKETS]


def _hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The convex hull (Andrew's monotone chain): the territory's outline from its communes' centres."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return pts

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


LABELLED = 6  # communes named on the map: the busiest
LANDMARKS = 4  # and the territory's most populous, so that the map reads even on a quiet day


def _named(placed: Sequence[tuple[str, geo.Commune, int]], area: Sequence[geo.Commune]) -> list[geo.Commune]:
    """The communes the map names: the busiest of the period, then the territory's largest towns."""
    counts: Counter[str] = Counter()
    by_code: dict[str, geo.Commune] = {}
    for _, commune, n in placed:
        counts[commune.insee] += n
        by_code[commune.insee] = commune
    named = [by_code[code] for code, _ in counts.most_common(LABELLED)]
    towns = sorted(area, key=lambda c: -c.population)
    named += [c for c in towns if c not in named][: max(0, LANDMARKS - len(named) // 2)]
    return named


def _label(x: float, y: float, name: str) -> str:
    return (
        f'<text x="{x + 6:.1f}" y="{y - 6:.1f}" font-size="12" fill="#1b1f23" paint-order="stroke" '
        f'stroke="#eef3f8" stroke-width="3">{escape(name)}</text>'
    )


def commune_map(
    requests: Sequence[RequestFacts],
    territory: Sequence[str] = (),
    width: int = 420,
    height: int = 420,
    t: Translate = _french,
) -> str:
    """The territory (its communes as grey dots inside its outline), requests (blue, by the
    patient's commune) and appointments (green, where they take place) as circles whose area grows
    with the count; the busiest communes named."""
    points: Counter[tuple[str, str]] = Counter()
    for r in requests:
        if r.commune_insee:
            points[("requests", r.commune_insee)] += 1
        if r.status == "confirmed" and r.appointment_commune:
            points[("appointments", r.appointment_commune)] += 1
    placed = [(kind, c, n) for (kind, code), n in points.items() if (c := geo.commune(code))]
    area = [c for code in territory if (c := geo.commune(code))]
    title = t("Carte du territoire : demandes (bleu) et rendez-vous (vert) par commune")
    if not placed and not area:
        return f'<p class="muted">{escape(t("Carte : rien sur la période"))}</p>'
    lats = [c.lat for _, c, _ in placed] + [c.lat for c in area]
    lons = [c.lon for _, c, _ in placed] + [c.lon for c in area]
    span = max(max(lats) - min(lats), (max(lons) - min(lons)) * math.cos(math.radians(sum(lats) / len(lats))), 0.3)
    lat0, lon0 = (max(lats) + min(lats)) / 2, (max(lons) + min(lons)) / 2
    scale, squash = (min(width, height) - 60) / span, math.cos(math.radians(lat0))

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return width / 2 + (lon - lon0) * squash * scale, height / 2 - (lat - lat0) * scale

    parts = [
        f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" width="100%" '
        f'style="background:#eef3f8;border-radius:.4rem">'
    ]
    outline = _hull([xy(c.lat, c.lon) for c in area])
    if len(outline) >= 3:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in outline)
        parts.append(
            f'<polygon points="{path}" fill="#ffffff" stroke="#0b3d63" stroke-width="1.5" '
            f'stroke-dasharray="4 3"><title>{escape(t("Territoire de la CPTS"))}</title></polygon>'
        )
    for c in area:
        x, y = xy(c.lat, c.lon)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.6" fill="#8c959f"><title>{escape(c.name)}</title></circle>'
        )
    for kind, c, n in sorted(placed, key=lambda p: -p[2]):
        x, y = xy(c.lat, c.lon)
        radius = 3 + 3 * math.sqrt(n)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="{COLOURS[kind]}" fill-opacity=".55">'
            f"<title>{escape(c.name)} : {n} {escape(t('demande(s)') if kind == 'requests' else t('rendez-vous'))}"
            f"</title></circle>"
        )
    parts += [_label(*xy(c.lat, c.lon), c.name) for c in _named(placed, area)]
    parts.append(f'<text x="8" y="{height - 8}" font-size="11" fill="#57606a">{escape(title)}</text></svg>')
    return "".join(parts)
