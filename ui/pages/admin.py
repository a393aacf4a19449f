"""The admin page /models: loaded versions, workers, live accuracy per version, "make default", and compare mode.

Protected by the admin password (app/admin.py: ADMIN_PASSWORD, else the one `make run` generates in
var/admin_password) and a server-side admin session, checked again before every action (make default, compare,
refresh): after a logout elsewhere, an expiry or a password change, an open page stops working and says so. The buttons
are thereby not protected by the secrecy of NiceGUI's client id alone.
"""

from __future__ import annotations

from nicegui import ui

from app.admin import LoginRefused
from app.context import App
from app.report import ModelReport
from app.versions import Comparison, VersionView
from records.errors import ManagementError, StoreUnavailable
from records.predictions import Prediction
from records.stats import VersionStats
from ui.pages.review import ReviewQueue
from ui.theme import Heading, notify
from ui.widgets.charts import data_url

ENDED = "Your admin session has ended (logged out, idle too long, or the password changed): log in again."
NO_DATABASE = "The database cannot be reached, so admin login is unavailable for now. Try again in a minute."


def _login_form(context: App, client: str, browser_id: str) -> None:
    async def attempt() -> None:
        try:
            ticket = await context.admin.check_login(client, password.value or "", browser_id=browser_id)
        except LoginRefused as exc:
            error.set_text(str(exc))
            return
        except StoreUnavailable:
            error.set_text(NO_DATABASE)
            return
        ui.navigate.to(f"/admin/session?ticket={ticket}")  # an HTTP route sets the session cookie

    with ui.card().classes("mx-auto mt-8 w-80 max-w-full"):
        Heading("Model administration", level=1)
        password = ui.input("Admin password", password=True).props("autofocus").classes("w-full").mark("password")
        password.on("keydown.enter", attempt)
        ui.button("Log in", on_click=attempt).mark("login")
        error = ui.label("").classes("text-negative text-sm").mark("login-error")


def _percent(accuracy: VersionStats | None) -> str:
    if accuracy is None or not accuracy.labelled:
        return "no feedback yet"
    return f"{accuracy.rate:.1%} ({accuracy.correct}/{accuracy.labelled})"


# Plain words, short cells (the details on hover: each cell's title), so that the table fits 1,280 px with
# Make default in view. Each column's `hint` is its header's explanation on hover.
VERSION_COLUMNS = [
    {"name": "version", "label": "Version", "field": "version", "align": "left",
     "hint": "The model version TorchServe serves (hover a version for its archive)"},
    {"name": "default", "label": "Default", "field": "default", "align": "left",
     "hint": "The version that answers the drawing page; Make default switches at once, without a restart"},
    {"name": "workers", "label": "Running", "field": "workers", "align": "left",
     "hint": "TorchServe's workers for this version that are ready, of those started (hover for their state)"},
    {"name": "predictions", "label": "Predictions", "field": "predictions",
     "hint": "How many drawings this version has read for people using the page"},
    {"name": "accuracy", "label": "Right, by feedback", "field": "accuracy",
     "hint": "Of the drawings people confirmed or corrected, how many this version read right"},
    {"name": "offline", "label": "MNIST test", "field": "offline",
     "hint": "Accuracy on the 10,000 digits of the MNIST test set, measured when the version was made"},
    {"name": "gate", "label": "New writers", "field": "gate",
     "hint": "Retrained versions only: accuracy on drawings from browsers it never learned from, beside the default "
             "of the time (a retrained version is offered only when it does better). Hover for the details"},
    {"name": "digits", "label": "Weakest digits", "field": "digits",
     "hint": "Retrained versions only: the digits it reads worst on those new writers' drawings"},
    {"name": "learned", "label": "Learned from", "field": "learned",
     "hint": "Retrained versions only: the drawings people labelled that it learned from"},
]  # fmt: skip
# Every cell shows its row's "<column>_detail" on hover; the Default column holds the Make default button.
VERSION_ROW = """
<q-tr :props="props">
  <q-td v-for="col in props.cols" :key="col.name" :props="props" :title="props.row[col.name + '_detail'] || null">
    <template v-if="col.name === 'default'">
      <span v-if="props.row.is_default" class="text-weight-bold">{{ col.value }}</span>
      <q-btn v-else dense unelevated no-caps color="primary" label="Make default"
             :aria-label="'Make ' + props.row.version + ' the default'"
             @click="() => $parent.$emit('make_default', props.row.version)"/>
    </template>
    <template v-else>{{ col.value }}</template>
  </q-td>
</q-tr>
"""
VERSION_HEADER = """
<q-tr :props="props">
  <q-th v-for="col in props.cols" :key="col.name" :props="props" :title="col.hint">
    {{ col.label }}<q-icon v-if="col.hint" name="info_outline" size="14px" class="q-ml-xs" aria-hidden="true"/>
  </q-th>
</q-tr>
"""


def version_rows(views: list[VersionView]) -> list[dict]:
    rows = []
    for view in views:
        v, report = view.version, view.report
        statuses = ", ".join(f"{w.status} (pid {w.pid})" for w in v.workers) or "none"
        rows.append(
            {
                "version": v.version,
                "version_detail": f"archive {v.archive}",
                "default": "★ default" if v.is_default else "",
                "is_default": v.is_default,
                "workers": f"{v.ready_workers} of {len(v.workers)} ready",
                "workers_detail": f"{statuses}; batches of up to {v.batch_size}, {v.max_batch_delay} ms at most",
                "predictions": view.live.total if view.live else 0,
                "accuracy": _percent(view.live),
                "offline": f"{report.test_accuracy:.2%}" if report and report.test_accuracy is not None else "",
                "gate": gate_text(report),
                "gate_detail": gate_detail(report),
                "digits": per_digit_text(report),
                "digits_detail": per_digit_detail(report),
                "learned": learned_text(report),
                "learned_detail": learned_detail(report),
            }
        )
    return rows


def gate_text(report: ModelReport | None) -> str:
    """A retrained version on browsers it never saw, beside the default then: "98.4% (1.0: 93.8%)"."""
    gate = report.gate if report else None
    if gate is None:
        return ""
    ours, theirs = gate.candidate["heldout_browsers"], gate.default["heldout_browsers"]
    return f"{ours:.1%} ({gate.default_version}: {theirs:.1%})"


def gate_detail(report: ModelReport | None) -> str:
    """gate_text in words, with MNIST test and the default's most frequent mistakes, then and now."""
    gate = report.gate if report else None
    if report is None or gate is None:
        return ""
    ours, theirs = gate.candidate["heldout_browsers"], gate.default["heldout_browsers"]
    parts = [
        f"On {gate.counts['heldout_browsers']:,} drawings from browsers it never learned from: {ours:.1%}, against "
        f"{theirs:.1%} for {gate.default_version}, the default when it was made."
    ]
    if "mnist_test" in gate.candidate and "mnist_test" in gate.default:
        parts.append(f"MNIST test: {gate.candidate['mnist_test']:.2%} against {gate.default['mnist_test']:.2%}.")
    if mistakes := _changed_confusions(report.confusions_heldout or {}):
        parts.append(
            f"{gate.default_version}'s most frequent mistakes there (its count, then this version's): {mistakes}."
        )
    return " ".join(parts)


def _weakest(report: ModelReport | None, count: int) -> list[str]:
    ours = report.per_digit_heldout if report else None
    return sorted(ours, key=lambda digit: (ours[digit], digit))[:count] if ours else []


def per_digit_text(report: ModelReport | None, *, count: int = 3) -> str:
    """A retrained version's weakest digits on the held-out browsers: "9: 92.3%, 8: 93.7%, 6: 98.6%"."""
    ours = report.per_digit_heldout if report else None
    return ", ".join(f"{digit}: {ours[digit]:.1%}" for digit in _weakest(report, count)) if ours else ""


def per_digit_detail(report: ModelReport | None, *, count: int = 3) -> str:
    """Each of them beside the default's figure then: "9: 92.3% vs 80.4% for 1.0, ..."."""
    ours = report.per_digit_heldout if report else None
    if report is None or not ours:
        return ""
    theirs = report.per_digit_heldout_default or {}
    version = report.gate.default_version if report.gate else "default"
    return ", ".join(
        f"{digit}: {ours[digit]:.1%}" + (f" vs {theirs[digit]:.1%} for {version}" if digit in theirs else "")
        for digit in _weakest(report, count)
    )


def _changed_confusions(confusions: dict) -> str:
    """The default's three most frequent errors and how often this version makes them: "9 read as 3: 23 → 10"."""
    ours, theirs = confusions.get("candidate", {}), confusions.get("default", {})
    top = sorted(theirs, key=lambda pair: -theirs[pair])[:3]
    return ", ".join(f"{pair.replace('->', ' read as ')}: {theirs[pair]} → {ours.get(pair, 0)}" for pair in top)


def learned_text(report: ModelReport | None) -> str:
    learned = report.learned_from if report else None
    if not learned:
        return ""
    return f"{learned['labelled_drawings']:,} drawings"


def learned_detail(report: ModelReport | None) -> str:
    learned = report.learned_from if report else None
    if not learned:
        return ""
    excluded = len(learned.get("excluded_browsers", {}))
    return (f"{learned['labelled_drawings']:,} drawings labelled by people in {learned['browsers']} browsers"
            + (f"; {excluded} browser(s) left out (their labels looked poisoned)" if excluded else ""))  # fmt: skip


def comparison_summary(results: list[Comparison], versions: list[str]) -> str:
    if not results:
        return "No stored drawings to compare yet."
    agree = sum(not r.disagree for r in results)
    labelled = [r for r in results if r.drawing.true_digit is not None]
    parts = [f"The versions agree on {agree} of {len(results)} drawings."]
    if labelled:
        scores = []
        for version in versions:
            correct = sum(_right(r.answers[version], r.drawing.true_digit) for r in labelled)
            scores.append(f"{version} {correct}/{len(labelled)}")
        parts.append(f"On the {len(labelled)} with feedback: " + ", ".join(scores) + " correct.")
    return " ".join(parts)


def _right(answer: Prediction | str, true_digit: int | None) -> bool:
    return isinstance(answer, Prediction) and answer.digit == true_digit


def _answer_text(answer: Prediction | str) -> str:
    if isinstance(answer, str):
        return answer
    if answer.not_a_digit:
        return f"not a digit ({answer.closest_digit}?)"
    return f"{answer.digit} ({answer.confidence:.0%})"


class AdminPage:
    """The page for a live admin session: every action checks the session again first."""

    @staticmethod
    async def show(context: App, *, address: str, browser_id: str, session: str | None) -> None:
        """The admin page for a live session (the cookie's token), else the login form. `address`: the client's."""
        try:
            valid = await context.admin.session_valid(session, browser_id=browser_id)
        except StoreUnavailable:
            with ui.card().classes("mx-auto mt-8 w-96 max-w-full"):
                Heading("Model administration", level=1)
                ui.label(NO_DATABASE).classes("text-negative").props('role="status"').mark("login-error")
            return
        if not valid or session is None:
            _login_form(context, address, browser_id)
            return
        AdminPage(context, session=session, browser_id=browser_id)

    def __init__(self, context: App, *, session: str, browser_id: str):
        self.context = context
        self.session, self.browser_id = session, browser_id
        self.ended = False
        self.versions: list[str] = []
        with ui.column().classes("w-full max-w-screen-2xl mx-auto px-2"):
            with ui.row().classes("w-full items-center justify-between"):
                Heading("Model versions", level=1)
                with ui.row():
                    ui.button("Refresh", icon="refresh", on_click=self.refresh).props("flat").mark("refresh")
                    ui.button("Log out", on_click=self.logout).props("flat").mark("logout")
            self.status = ui.label("").classes("text-sm").mark("status")
            self.table = ui.table(columns=VERSION_COLUMNS, rows=[], row_key="version").classes("w-full")
            self.table.props("wrap-cells").mark("versions")
            self.table.add_slot("header", VERSION_HEADER)
            self.table.add_slot("body", VERSION_ROW)
            self.table.on("make_default", lambda e: self.make_default(str(e.args)))
            self.review = ReviewQueue(context, allowed=self.allowed)
            with ui.card().classes("w-full"):
                Heading("Compare mode", level=2)
                ui.label(
                    f"Runs the newest {context.settings.compare_drawings} stored drawings (all users) through every "
                    "loaded version and lists where they disagree."
                ).classes("text-sm text-gray-700")
                with ui.row().classes("items-center"):
                    self.labelled_only = ui.checkbox("only drawings with feedback")
                    self.compare_button = ui.button("Compare", on_click=self.run_compare).mark("compare")
                self.compare_summary = ui.label("").mark("compare-summary")
                self.compare_table = (
                    ui.table(columns=[], rows=[], row_key="id")
                    .classes("w-full")
                    .props('no-data-label="No disagreements (or no comparison yet)"')
                )
                self.compare_table.mark("disagreements")
                self.compare_table.add_slot(
                    "body-cell-thumb",
                    '<q-td :props="props"><img :src="props.value" :alt="\'drawing #\' + props.row.id"'
                    ' style="width:40px;height:40px;border:1px solid #9ca3af"/></q-td>',
                )
        ui.timer(0.1, self.refresh, once=True)
        self.timer = ui.timer(5.0, self.refresh_status)  # worker status changes (scaling, respawns)

    async def allowed(self, *, touch: bool = True) -> bool:
        """Whether the session is still live (checked before every action; `touch`: the action keeps it alive).
        When it has ended, the page stops and sends the browser to the login form."""
        if not self.ended:
            try:
                live = await self.context.admin.session_valid(self.session, browser_id=self.browser_id, touch=touch)
            except StoreUnavailable:
                live = False  # no session check without the database: refuse, like the login does
            self.ended = not live
        if self.ended:
            self.timer.deactivate()
            notify(ENDED, type="warning")
            ui.navigate.to("/models")
        return not self.ended

    async def refresh_status(self) -> None:
        """The periodic refresh: checks the session without keeping it alive (an open tab still expires). The review
        queue is left as it is: rows moving under the operator's selection would lose their place."""
        await self.refresh(touch=False, queue=False)

    async def refresh(self, *, touch: bool = True, queue: bool = True) -> None:
        if not await self.allowed(touch=touch):
            return
        if queue:
            await self.review.refresh()
        try:
            overview = await self.context.versions.overview()
        except ManagementError as exc:
            self.status.set_text(f"TorchServe's management API is unavailable: {exc}")
            return
        note = "" if overview.live_available else " Live accuracy unavailable: the database cannot be reached."
        self.versions = [view.version.version for view in overview.versions]
        self.table.rows = version_rows(overview.versions)
        self.table.update()
        self.status.set_text(
            f"{len(self.versions)} version(s) loaded; the page's predictions use {overview.default or 'none'}.{note}"
        )

    async def make_default(self, version: str) -> None:
        if not await self.allowed():
            return
        try:
            await self.context.versions.make_default(version, by="admin page")
        except (ManagementError, StoreUnavailable) as exc:
            notify(f"Could not make {version} the default: {exc}", type="negative")
            return
        notify(f"{version} is now the default: the next prediction uses it", type="positive")
        await self.refresh()

    async def run_compare(self) -> None:
        if not await self.allowed():
            return
        versions = list(self.versions)
        if len(versions) < 2:
            self.compare_summary.set_text("Only one version is loaded: nothing to compare.")
            return
        self.compare_button.disable()
        self.compare_summary.set_text("Comparing ...")
        try:
            results = await self.context.versions.compare(versions, labelled_only=bool(self.labelled_only.value))
        except StoreUnavailable:
            self.compare_summary.set_text("The database cannot be reached: no drawings to compare.")
            return
        finally:
            self.compare_button.enable()
        self.compare_summary.set_text(comparison_summary(results, versions))
        columns = [
            {"name": "id", "label": "#", "field": "id"},
            {"name": "thumb", "label": "Drawing", "field": "thumb"},
            {"name": "true", "label": "True", "field": "true"},
        ] + [{"name": f"v{v}", "label": v, "field": f"v{v}"} for v in versions]
        self.compare_table.columns = columns
        self.compare_table.rows = [
            {
                "id": r.drawing.id,
                "thumb": data_url(r.drawing.canvas_png),  # another browser's drawing: not served by URL
                "true": "" if r.drawing.true_digit is None else r.drawing.true_digit,
                **{f"v{v}": _answer_text(r.answers[v]) for v in versions},
            }
            for r in results
            if r.disagree
        ]
        self.compare_table.update()

    async def logout(self) -> None:
        self.ended = True
        self.timer.deactivate()
        try:
            await self.context.admin.end_session(self.session)
        except StoreUnavailable:
            notify("The database cannot be reached: the session ends when it is idle too long", type="negative")
        ui.navigate.to("/admin/logout")  # an HTTP route removes the cookie
