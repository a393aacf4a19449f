"""ECharts options shared by the pages."""

from __future__ import annotations

import base64
from collections.abc import Sequence


def bar_chart(values: Sequence[float | None], *, colors: list[str] | str = "#1d4ed8", top: float = 1.0) -> dict:
    """Ten bars, one per digit, on a 0..top axis; no bar where a value is None (nothing to show is not 0)."""
    palette = colors if isinstance(colors, list) else [colors] * len(values)
    return {
        "animation": False,
        "grid": {"left": 40, "right": 10, "top": 10, "bottom": 25},
        "xAxis": {"type": "category", "data": [str(d) for d in range(len(values))]},
        "yAxis": {"type": "value", "min": 0, "max": top},
        "tooltip": {"trigger": "axis"},
        "series": [
            {
                "type": "bar",
                "data": [
                    {"value": None if v is None else round(v, 4), "itemStyle": {"color": c}}
                    for v, c in zip(values, palette, strict=True)
                ],
            }
        ],
    }


def data_url(png: bytes | None) -> str:
    """PNG bytes as an <img> source."""
    return f"data:image/png;base64,{base64.b64encode(png).decode()}" if png else ""
