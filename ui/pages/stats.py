"""The stats page: accuracy from users' feedback, overall, per digit, per model version, and a confusion matrix; the
"not a digit" answers (refusals answered, confirmed, overturned); whole numbers (Number mode) counted apart from
digits: a number's digits count as digits above, the number once here.

The page is sent first and the figures read after (`load`): a read during a database outage waits for the pool's
timeout (5 s), longer than NiceGUI gives a page to build (3 s), which answered a raw 500. While the outage is known
(app/outage.py) the page says so at once.
"""

from __future__ import annotations

from nicegui import ui

from app.context import App
from records.errors import StoreUnavailable
from records.stats import NumberStats, RefusalStats, Stats
from ui.theme import Heading
from ui.widgets.charts import bar_chart

UNAVAILABLE = "Statistics are unavailable: the database cannot be reached. Try again in a minute."


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def per_digit_chart(stats: Stats) -> dict:
    """One bar per true digit; none for a digit without feedback (a 0 bar read as 0% right)."""
    rates = [stats.per_digit[d].rate for d in range(10)]
    options = bar_chart(rates)
    options["xAxis"]["data"] = [f"{d}\n{stats.per_digit[d].labelled}×" for d in range(10)]
    options["xAxis"]["axisLabel"] = {"interval": 0, "lineHeight": 15}
    options["grid"]["bottom"] = 44
    options["yAxis"]["axisLabel"] = {":formatter": "v => Math.round(v * 100) + '%'"}
    described = ", ".join(f"{d}: {_percent(rate)}" for d, rate in enumerate(rates))
    options["aria"] = {"enabled": True, "label": {"description": f"Accuracy per true digit: {described}"}}
    return options


def numbers_text(numbers: NumberStats) -> str:
    """Whole numbers: how many were read, how many a user labelled (typed, confirmed or corrected a digit), and how
    many of those were read exactly."""
    read = "1 number read" if numbers.total == 1 else f"{numbers.total} numbers read"
    if not numbers.labelled:
        return f"{read}, none with feedback yet"
    return f"{read}, {numbers.labelled} with feedback: {numbers.exact} read exactly ({_percent(numbers.rate)})"


def refusals_text(refusals: RefusalStats) -> str:
    """The "not a digit" answers and what the users said of them; and digits the users said were none."""
    answered = "1 drawing" if refusals.answered == 1 else f"{refusals.answered} drawings"
    text = (
        f"{answered} answered \u201cnot a digit\u201d: {refusals.confirmed} confirmed, "
        f"{refusals.overturned} overturned (a digit after all)"
    )
    if refusals.not_digits:
        text += f"; {refusals.not_digits} answered as a digit were not a digit"
    return text


def confusion_chart(stats: Stats) -> dict:
    cells = [[predicted, true, stats.confusion[true][predicted]] for true in range(10) for predicted in range(10)]
    peak = max((count for _, _, count in cells), default=0)
    digits = [str(d) for d in range(10)]
    wrong = [(true, predicted, n) for predicted, true, n in cells if n and true != predicted]
    described = "; ".join(f"{n} times {true} read as {predicted}" for true, predicted, n in wrong) or "no mistakes"
    return {
        "animation": False,
        "tooltip": {"position": "top"},
        "grid": {"left": 44, "right": 8, "top": 10, "bottom": 46},
        "xAxis": {"type": "category", "data": digits, "name": "predicted", "nameLocation": "middle", "nameGap": 28},
        "yAxis": {"type": "category", "data": digits, "name": "true", "nameLocation": "middle", "nameGap": 26},
        "visualMap": {"min": 0, "max": max(1, peak), "show": False, "inRange": {"color": ["#f8fafc", "#1d4ed8"]}},
        "series": [{"type": "heatmap", "data": cells, "label": {"show": True, ":formatter": "p => p.value[2] || ''"}}],
        "aria": {"enabled": True, "label": {"description": f"Confusion matrix of labelled drawings: {described}"}},
    }


class StatsPage:
    """Everyone's accuracy (no browser's drawings: /stats is public)."""

    def __init__(self, context: App):
        self.context = context
        Heading("Statistics", level=1).classes("w-full text-center")
        self.status = ui.label("Reading the statistics …").classes("w-full text-center").mark("stats-status")
        self.status.props('role="status"')
        self.body = ui.row().classes("w-full gap-6 justify-center items-start")

    async def load(self) -> None:
        """Read the figures and draw them, or say that the database cannot be reached."""
        if self.context.history.database_known_down:
            self._unavailable()
            return
        try:
            stats = await self.context.history.stats()
        except StoreUnavailable:
            self._unavailable()
            return
        self.status.set_visibility(False)
        with self.body:
            self._draw(stats)

    def _unavailable(self) -> None:
        self.status.set_text(UNAVAILABLE)
        self.status.classes("text-negative")

    @staticmethod
    def _draw(stats: Stats) -> None:
        with ui.card().classes("w-full sm:w-auto"):
            Heading("All users", level=2)
            ui.label(f"{stats.total} predictions, {stats.overall.labelled} with feedback")
            accuracy = "no feedback yet" if stats.overall.rate is None else f"{stats.overall.rate:.1%}"
            ui.label(f"Accuracy {accuracy}").classes("text-3xl font-bold")
            Heading("Per model version", level=3).classes("mt-4 font-medium text-base")
            rows = [
                {"version": version, "predictions": v.total, "labelled": v.labelled, "accuracy": _percent(v.rate)}
                for version, v in sorted(stats.per_version.items())
            ]
            columns = [{"name": key, "label": key.capitalize(), "field": key} for key in rows[0]] if rows else []
            ui.table(columns=columns, rows=rows, row_key="version").props('no-data-label="No predictions yet"').mark(
                "versions"
            )
            Heading("Not a digit", level=3).classes("mt-4 font-medium text-base")
            ui.label(refusals_text(stats.refusals)).mark("refusal-stats")
            ui.label("A confirmed refusal counts as right, an overturned one as wrong.").classes(
                "text-xs text-gray-600"
            )
            Heading("Whole numbers", level=3).classes("mt-4 font-medium text-base")
            ui.label(numbers_text(stats.numbers)).mark("numbers-stats")
            ui.label("Their digits count among the predictions above.").classes("text-xs text-gray-600")
        with ui.card().classes("w-full sm:w-[460px]"):
            Heading("Accuracy per true digit", level=2)
            ui.label("Under each digit, how many drawings of it have feedback; no bar: none yet.").classes(
                "text-xs text-gray-600"
            )
            ui.echart(per_digit_chart(stats)).classes("w-full h-[230px]")
        with ui.card().classes("w-full sm:w-[460px]"):
            Heading("Confusion matrix (feedback)", level=2)
            ui.echart(confusion_chart(stats)).classes("w-full aspect-square max-h-[420px]")
