"""The server-side SVG chart of a patient's totals (pure)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from fhir_gateway.web._trend_chart import MAX_POINTS, ChartPoint, trend_svg

SVG = "{http://www.w3.org/2000/svg}"


def _points(*values: int) -> list[ChartPoint]:
    return [
        ChartPoint(datetime(2026, 3, 1 + 7 * i, tzinfo=UTC), f"day {7 * i}", v)
        for i, v in enumerate(values)
    ]


def _chart(points: list[ChartPoint], baseline: int | None = 18) -> ET.Element:
    markup = trend_svg("phq-9", "PHQ-9", points, maximum=27, remission_below=5, baseline=baseline)
    return ET.fromstring(str(markup))  # well-formed XML: what a browser parses


def _texts(svg: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]


def test_each_total_is_drawn_and_written_with_its_date() -> None:
    svg = _chart(_points(18, 12, 8, 4))
    texts = _texts(svg)
    assert all(str(v) in texts for v in (18, 12, 8, 4))
    assert {"day 0", "day 7", "day 14", "day 21"} <= set(texts)
    assert len(list(svg.iter(f"{SVG}circle"))) == 4
    (line,) = svg.iter(f"{SVG}polyline")
    ys = [float(p.split(",")[1]) for p in line.get("points", "").split()]
    assert ys == sorted(ys)  # falling totals: each point lower on the chart (larger y)


def test_the_remission_and_response_thresholds_are_dashed_lines_with_names() -> None:
    svg = _chart(_points(18, 8))
    texts = _texts(svg)
    assert "Remission: below 5" in texts
    assert "Response: 9 or less(half of the baseline 18)" in texts
    dashed = [ln for ln in svg.iter(f"{SVG}line") if ln.get("stroke-dasharray")]
    assert len(dashed) == 2
    remission, response = sorted(float(ln.get("y1", 0)) for ln in dashed)[::-1]
    assert remission > response  # 5 is below 9 on the chart


def test_without_a_baseline_only_remission_is_marked() -> None:
    svg = _chart(_points(3), baseline=None)
    assert not any(t.startswith("Response") for t in _texts(svg))
    assert "Remission: below 5" in _texts(svg)


def test_the_chart_is_an_image_described_in_words() -> None:
    svg = _chart(_points(18, 12, 4))
    assert svg.get("role") == "img"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert title.text == "PHQ-9 totals over time"
    assert "18 on day 0, 12 on day 7, 4 on day 14" in (desc.text or "")
    assert "The latest total, 4, is in remission." in (desc.text or "")


def test_no_totals_draw_nothing_and_a_long_series_keeps_the_newest() -> None:
    assert str(trend_svg("x", "PHQ-9", [], maximum=27, remission_below=5, baseline=None)) == ""
    many = [
        ChartPoint(
            datetime(2020, 1, 1, tzinfo=UTC).replace(year=2020 + i // 12, month=1 + i % 12),
            f"m{i}",
            i % 27,
        )
        for i in range(MAX_POINTS + 20)
    ]
    svg = _chart(many)
    assert len(list(svg.iter(f"{SVG}circle"))) == MAX_POINTS
    assert "m0" not in _texts(svg) and f"m{MAX_POINTS + 19}" in _texts(svg)


def test_text_from_the_record_is_escaped() -> None:
    point = ChartPoint(datetime(2026, 3, 1, tzinfo=UTC), "<script>x</script>", 9)
    markup = str(
        trend_svg("phq-9", "PHQ-9 & co", [point], maximum=27, remission_below=5, baseline=9)
    )
    assert "<script>" not in markup and "&lt;script&gt;" in markup


def test_dates_close_together_are_not_written_on_top_of_each_other() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    points = [ChartPoint(start + timedelta(days=d), f"day {d}", 10) for d in (0, 1, 2, 60)]
    texts = _texts(_chart(points))
    assert "day 0" in texts and "day 60" in texts
    assert "day 1" not in texts and "day 2" not in texts  # the table beside lists every date
