"""The stats page: accuracy from users' feedback, overall, per digit, per model version, and a confusion matrix."""

from __future__ import annotations

from nicegui import ui

from app.context import App
from app.records import Stats, StoreUnavailable
from ui.widgets.charts import bar_chart


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def per_digit_chart(stats: Stats) -> dict:
    return bar_chart([stats.per_digit[d].rate or 0.0 for d in range(10)])


def confusion_chart(stats: Stats) -> dict:
    cells = [[predicted, true, stats.confusion[true][predicted]] for true in range(10) for predicted in range(10)]
    peak = max((count for _, _, count in cells), default=0)
    digits = [str(d) for d in range(10)]
    return {
        "animation": False,
        "tooltip": {"position": "top"},
        "grid": {"left": 50, "right": 10, "top": 10, "bottom": 50},
        "xAxis": {"type": "category", "data": digits, "name": "predicted", "nameLocation": "middle", "nameGap": 28},
        "yAxis": {"type": "category", "data": digits, "name": "true", "nameLocation": "middle", "nameGap": 30},
        "visualMap": {"min": 0, "max": max(1, peak), "show": False, "inRange": {"color": ["#f8fafc", "#1d4ed8"]}},
        "series": [{"type": "heatmap", "data": cells, "label": {"show": True, ":formatter": "p => p.value[2] || ''"}}],
    }


class StatsPage:
    """Everyone's accuracy (no browser's drawings: /stats is public)."""

    @staticmethod
    async def show(context: App) -> None:
        try:
            stats = await context.history.stats()
        except StoreUnavailable:
            ui.label("Statistics are unavailable: the database cannot be reached.").classes("text-negative")
            return
        StatsPage._draw(stats)

    @staticmethod
    def _draw(stats: Stats) -> None:
        with ui.row().classes("w-full gap-6 justify-center items-start"):
            with ui.card():
                ui.label("All users").classes("text-lg font-medium")
                ui.label(f"{stats.total} predictions, {stats.overall.labelled} with feedback")
                ui.label(f"Accuracy {_percent(stats.overall.rate)}").classes("text-3xl font-bold")
                ui.label("Per model version").classes("mt-4 font-medium")
                rows = [
                    {"version": version, "predictions": v.total, "labelled": v.labelled, "accuracy": _percent(v.rate)}
                    for version, v in sorted(stats.per_version.items())
                ]
                columns = [{"name": key, "label": key.capitalize(), "field": key} for key in rows[0]] if rows else []
                ui.table(columns=columns, rows=rows, row_key="version").mark("versions")
            with ui.card():
                ui.label("Accuracy per true digit").classes("text-lg font-medium")
                ui.echart(per_digit_chart(stats)).classes("w-[420px] h-[220px]")
            with ui.card():
                ui.label("Confusion matrix (feedback)").classes("text-lg font-medium")
                ui.echart(confusion_chart(stats)).classes("w-[420px] h-[400px]")
