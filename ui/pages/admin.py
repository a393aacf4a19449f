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
from app.records import ManagementError, Prediction, StoreUnavailable, VersionStats
from app.report import ModelReport
from app.versions import Comparison, VersionView
from ui.widgets.charts import data_url

ENDED = "Your admin session has ended (logged out, idle too long, or the password changed): log in again."
NO_DATABASE = "The database cannot be reached: admin login is unavailable."


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

    with ui.card().classes("mx-auto mt-8 w-80"):
        ui.label("Model administration").classes("text-lg font-medium")
        password = ui.input("Admin password", password=True).props("autofocus").classes("w-full").mark("password")
        password.on("keydown.enter", attempt)
        ui.button("Log in", on_click=attempt).mark("login")
        error = ui.label("").classes("text-negative text-sm").mark("login-error")


def _percent(accuracy: VersionStats | None) -> str:
    if accuracy is None or not accuracy.labelled:
        return "no feedback yet"
    return f"{accuracy.rate:.1%} ({accuracy.correct}/{accuracy.labelled})"


WRAP = "white-space: normal; min-width: 9rem; max-width: 16rem"  # long texts wrap: Make default stays in view
VERSION_COLUMNS = [
    {"name": "version", "label": "Version", "field": "version"},
    {"name": "default", "label": "Default", "field": "default"},
    {"name": "workers", "label": "Workers", "field": "workers", "style": WRAP},
    {"name": "batch", "label": "Batch / delay", "field": "batch"},
    {"name": "predictions", "label": "Predictions", "field": "predictions"},
    {"name": "accuracy", "label": "Live accuracy (feedback)", "field": "accuracy"},
    {"name": "offline", "label": "MNIST test (offline)", "field": "offline"},
    {"name": "gate", "label": "Held-out browsers (gate)", "field": "gate", "style": WRAP, "headerStyle": WRAP},
    {"name": "digits", "label": "Weakest digits (held-out)", "field": "digits", "style": WRAP, "headerStyle": WRAP},
    {"name": "learned", "label": "Learned from", "field": "learned", "style": WRAP, "headerStyle": WRAP},
    {"name": "archive", "label": "Archive", "field": "archive"},
    {"name": "action", "label": "", "field": "action"},
]


def version_rows(views: list[VersionView]) -> list[dict]:
    rows = []
    for view in views:
        v, report = view.version, view.report
        statuses = ", ".join(f"{w.status} (pid {w.pid})" for w in v.workers) or "none"
        rows.append(
            {
                "version": v.version,
                "default": "★ default" if v.is_default else "",
                "is_default": v.is_default,
                "workers": f"{v.ready_workers}/{len(v.workers)} ready: {statuses}",
                "batch": f"{v.batch_size} / {v.max_batch_delay} ms",
                "predictions": view.live.total if view.live else 0,
                "accuracy": _percent(view.live),
                "offline": f"{report.test_accuracy:.2%}" if report and report.test_accuracy is not None else "",
                "gate": gate_text(report),
                "digits": per_digit_text(report),
                "learned": learned_text(report),
                "archive": v.archive,
            }
        )
    return rows


def gate_text(report: ModelReport | None) -> str:
    """A retrained version's gate on the browsers it never saw, beside the default it was measured against."""
    gate = report.gate if report else None
    if report is None or gate is None:
        return ""
    changed = _changed_confusions(report.confusions_heldout or {})
    ours, theirs = gate.candidate["heldout_browsers"], gate.default["heldout_browsers"]
    drawings = gate.counts["heldout_browsers"]
    mnist = ""
    if "mnist_test" in gate.candidate and "mnist_test" in gate.default:
        mnist = f"; MNIST test {gate.candidate['mnist_test']:.2%} vs {gate.default['mnist_test']:.2%}"
    return f"{ours:.1%} vs {theirs:.1%} for {gate.default_version} ({drawings:,} drawings){mnist}{changed}"


def per_digit_text(report: ModelReport | None, *, count: int = 3) -> str:
    """A retrained version's weakest digits on the held-out browsers, each beside the default's figure then."""
    ours = report.per_digit_heldout if report else None
    if report is None or not ours:
        return ""
    theirs = report.per_digit_heldout_default or {}
    version = report.gate.default_version if report.gate else "default"
    weakest = sorted(ours, key=lambda digit: (ours[digit], digit))[:count]
    return ", ".join(
        f"{digit}: {ours[digit]:.1%}" + (f" vs {theirs[digit]:.1%} for {version}" if digit in theirs else "")
        for digit in weakest
    )


def _changed_confusions(confusions: dict) -> str:
    """The default's three most frequent errors and how often this version makes them."""
    ours, theirs = confusions.get("candidate", {}), confusions.get("default", {})
    top = sorted(theirs, key=lambda pair: -theirs[pair])[:3]
    pairs = [f"{pair.replace('->', '→')} {theirs[pair]} vs {ours.get(pair, 0)}" for pair in top]
    return "; errors " + ", ".join(pairs) if pairs else ""


def learned_text(report: ModelReport | None) -> str:
    learned = report.learned_from if report else None
    if not learned:
        return ""
    excluded = len(learned.get("excluded_browsers", {}))
    return (f"{learned['labelled_drawings']:,} drawings of {learned['browsers']} browsers"
            + (f", {excluded} left out" if excluded else ""))  # fmt: skip


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
            ui.label(NO_DATABASE).classes("mx-auto mt-8 text-negative").mark("login-error")
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
                ui.label("Model versions").classes("text-xl font-medium")
                with ui.row():
                    ui.button("Refresh", icon="refresh", on_click=self.refresh).props("flat").mark("refresh")
                    ui.button("Log out", on_click=self.logout).props("flat").mark("logout")
            self.status = ui.label("").classes("text-sm").mark("status")
            self.table = ui.table(columns=VERSION_COLUMNS, rows=[], row_key="version").classes("w-full")
            self.table.mark("versions")
            self.table.add_slot(
                "body-cell-action",
                '<q-td :props="props"><q-btn v-if="!props.row.is_default" dense color="primary" label="Make default"'
                " @click=\"() => $parent.$emit('make_default', props.row.version)\"/></q-td>",
            )
            self.table.on("make_default", lambda e: self.make_default(str(e.args)))
            with ui.card().classes("w-full"):
                ui.label("Compare mode").classes("text-lg font-medium")
                ui.label(
                    f"Runs the newest {context.settings.compare_drawings} stored drawings (all users) through every "
                    "loaded version and lists where they disagree."
                ).classes("text-sm text-gray-600")
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
                    '<q-td :props="props"><img :src="props.value" style="width:40px;height:40px;border:1px solid #ddd"'
                    "/></q-td>",
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
            ui.notify(ENDED, type="warning")
            ui.navigate.to("/models")
        return not self.ended

    async def refresh_status(self) -> None:
        """The periodic refresh: checks the session without keeping it alive (an open tab still expires)."""
        await self.refresh(touch=False)

    async def refresh(self, *, touch: bool = True) -> None:
        if not await self.allowed(touch=touch):
            return
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
            ui.notify(f"Could not make {version} the default: {exc}", type="negative")
            return
        ui.notify(f"{version} is now the default: the next prediction uses it", type="positive")
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
            ui.notify("The database cannot be reached: the session ends when it is idle too long", type="negative")
        ui.navigate.to("/admin/logout")  # an HTTP route removes the cookie
