"""The admin page /models: loaded versions, workers, live accuracy per version, "make default", and compare mode.

Protected by the admin password (ui/admin.py: ADMIN_PASSWORD, else the one `make run` generates in
var/admin_password) and a server-side admin session, checked again before every action (make default, compare,
refresh): after a logout elsewhere, an expiry or a password change, an open page stops working and says so. The buttons
are thereby not protected by the secrecy of NiceGUI's client id alone.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from nicegui import ui

from db import store
from serving.inference import Prediction, PredictorError
from serving.management import ManagementError, Version
from serving.versions import promote
from ui.admin import LoginRefused
from ui.context import AppContext
from ui.widgets.charts import data_url

ENDED = "Your admin session has ended (logged out, idle too long, or the password changed): log in again."
NO_DATABASE = "The database cannot be reached: admin login is unavailable."


async def build(context: AppContext, *, client: str, browser_id: str, session: str | None) -> None:
    """The admin page for a live session (the cookie's token), else the login form. `client`: the client's address."""
    try:
        valid = await context.admin.session_valid(session, browser_id=browser_id)
    except store.StoreUnavailable:
        ui.label(NO_DATABASE).classes("mx-auto mt-8 text-negative").mark("login-error")
        return
    if not valid:
        _login_form(context, client, browser_id)
        return
    ModelsPage(context, session=session, browser_id=browser_id)


def _login_form(context: AppContext, client: str, browser_id: str) -> None:
    async def attempt() -> None:
        try:
            ticket = await context.admin.check_login(client, password.value or "", browser_id=browser_id)
        except LoginRefused as exc:
            error.set_text(str(exc))
            return
        except store.StoreUnavailable:
            error.set_text(NO_DATABASE)
            return
        ui.navigate.to(f"/admin/session?ticket={ticket}")  # an HTTP route sets the session cookie

    with ui.card().classes("mx-auto mt-8 w-80"):
        ui.label("Model administration").classes("text-lg font-medium")
        password = ui.input("Admin password", password=True).props("autofocus").classes("w-full").mark("password")
        password.on("keydown.enter", attempt)
        ui.button("Log in", on_click=attempt).mark("login")
        error = ui.label("").classes("text-negative text-sm").mark("login-error")


def _percent(accuracy: store.VersionStats | None) -> str:
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


def version_rows(
    versions: list[Version], per_version: dict[str, store.VersionStats], offline: dict[str, dict | None]
) -> list[dict]:
    rows = []
    for v in versions:
        stats = per_version.get(v.version)
        statuses = ", ".join(f"{w.status} (pid {w.pid})" for w in v.workers) or "none"
        rows.append(
            {
                "version": v.version,
                "default": "★ default" if v.is_default else "",
                "is_default": v.is_default,
                "workers": f"{v.ready_workers}/{len(v.workers)} ready: {statuses}",
                "batch": f"{v.batch_size} / {v.max_batch_delay} ms",
                "predictions": stats.total if stats else 0,
                "accuracy": _percent(stats),
                "offline": f"{metrics['test_accuracy']:.2%}" if (metrics := offline.get(v.version)) else "",
                "gate": gate_text(offline.get(v.version)),
                "digits": per_digit_text(offline.get(v.version)),
                "learned": learned_text(offline.get(v.version)),
                "archive": v.archive,
            }
        )
    return rows


def gate_text(metrics: dict | None) -> str:
    """A retrained version's gate on the browsers it never saw, beside the default it was measured against."""
    gate = (metrics or {}).get("gate")
    if not gate:
        return ""
    default = gate["default"]
    changed = _changed_confusions(metrics.get("confusions_heldout_browsers", {}))
    ours, theirs = gate["candidate"]["heldout_browsers"], default["heldout_browsers"]
    drawings = gate["counts"]["heldout_browsers"]
    mnist = ""
    if "mnist_test" in gate["candidate"] and "mnist_test" in default:
        mnist = f"; MNIST test {gate['candidate']['mnist_test']:.2%} vs {default['mnist_test']:.2%}"
    return f"{ours:.1%} vs {theirs:.1%} for {default['version']} ({drawings:,} drawings){mnist}{changed}"


def per_digit_text(metrics: dict | None, *, count: int = 3) -> str:
    """A retrained version's weakest digits on the held-out browsers, each beside the default's figure then."""
    ours = (metrics or {}).get("per_digit_heldout_browsers")
    if not ours:
        return ""
    theirs = metrics.get("per_digit_heldout_browsers_default") or {}
    version = metrics.get("gate", {}).get("default", {}).get("version", "default")
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


def learned_text(metrics: dict | None) -> str:
    learned = (metrics or {}).get("learned_from")
    if not learned:
        return ""
    excluded = len(learned.get("excluded_browsers", {}))
    return (f"{learned['labelled_drawings']:,} drawings of {learned['browsers']} browsers"
            + (f", {excluded} left out" if excluded else ""))  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """Every loaded version's answer for one stored drawing."""

    drawing: store.Drawing
    answers: dict[str, Prediction | str]  # version -> prediction, or the error message

    @property
    def digits(self) -> set[int]:
        return {a.digit for a in self.answers.values() if isinstance(a, Prediction)}

    @property
    def disagree(self) -> bool:
        return len(self.digits) > 1 or any(isinstance(a, str) for a in self.answers.values())


async def compare(context: AppContext, versions: list[str], drawings: list[store.Drawing]) -> list[Comparison]:
    """Ask every version about every drawing, 8 requests in flight (TorchServe batches them)."""
    limit = asyncio.Semaphore(8)

    async def ask(png: bytes, version: str) -> Prediction | str:
        async with limit:
            try:
                async with context.recorder.heavy.slot(png):  # as every image sent to TorchServe: large ones in turn
                    return await context.predictor.predict(png, version=version)
            except PredictorError as exc:
                return str(exc)

    answers = await asyncio.gather(*(ask(d.canvas_png, v) for d in drawings for v in versions))
    per_drawing = [answers[i : i + len(versions)] for i in range(0, len(answers), len(versions))]
    return [Comparison(d, dict(zip(versions, a, strict=True))) for d, a in zip(drawings, per_drawing, strict=True)]


def comparison_summary(results: list[Comparison], versions: list[str]) -> str:
    if not results:
        return "No stored drawings to compare yet."
    agree = sum(not r.disagree for r in results)
    labelled = [r for r in results if r.drawing.true_digit is not None]
    parts = [f"The versions agree on {agree} of {len(results)} drawings."]
    if labelled:
        scores = []
        for version in versions:
            correct = sum(
                isinstance(r.answers[version], Prediction) and r.answers[version].digit == r.drawing.true_digit
                for r in labelled
            )
            scores.append(f"{version} {correct}/{len(labelled)}")
        parts.append(f"On the {len(labelled)} with feedback: " + ", ".join(scores) + " correct.")
    return " ".join(parts)


def _answer_text(answer: Prediction | str) -> str:
    if isinstance(answer, str):
        return answer
    if answer.not_a_digit:
        return f"not a digit ({answer.closest_digit}?)"
    return f"{answer.digit} ({answer.confidence:.0%})"


class ModelsPage:
    def __init__(self, context: AppContext, *, session: str, browser_id: str):
        self.context = context
        self.session, self.browser_id = session, browser_id
        self.ended = False
        self.versions: list[Version] = []
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
            except store.StoreUnavailable:
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
            self.versions = await self.context.models.versions()
        except ManagementError as exc:
            self.status.set_text(f"TorchServe's management API is unavailable: {exc}")
            return
        try:
            per_version = (await self.context.store.stats()).per_version
            note = ""
        except store.StoreUnavailable:
            per_version, note = {}, " Live accuracy unavailable: the database cannot be reached."
        offline = {v.version: archive_metrics(self.context, v.version) for v in self.versions}
        self.table.rows = version_rows(self.versions, per_version, offline)
        self.table.update()
        default = next((v.version for v in self.versions if v.is_default), "none")
        self.status.set_text(f"{len(self.versions)} version(s) loaded; the page's predictions use {default}.{note}")

    async def make_default(self, version: str) -> None:
        if not await self.allowed():
            return
        try:
            await promote(self.context.models, self.context.defaults, version, by="admin page")
        except (ManagementError, store.StoreUnavailable) as exc:
            ui.notify(f"Could not make {version} the default: {exc}", type="negative")
            return
        ui.notify(f"{version} is now the default: the next prediction uses it", type="positive")
        await self.refresh()

    async def run_compare(self) -> None:
        if not await self.allowed():
            return
        versions = [v.version for v in self.versions]
        if len(versions) < 2:
            self.compare_summary.set_text("Only one version is loaded: nothing to compare.")
            return
        self.compare_button.disable()
        self.compare_summary.set_text("Comparing ...")
        try:
            drawings = await self.context.store.recent_drawings(
                limit=self.context.settings.compare_drawings,
                labelled_only=self.labelled_only.value,
            )
            results = await compare(self.context, versions, drawings)
        except store.StoreUnavailable:
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
                "thumb": data_url(r.drawing.canvas_png),
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
        except store.StoreUnavailable:
            ui.notify("The database cannot be reached: the session ends when it is idle too long", type="negative")
        ui.navigate.to("/admin/logout")  # an HTTP route removes the cookie


def archive_metrics(context: AppContext, version: str) -> dict | None:
    """The offline metrics shipped with a version (model_store/v<version>/metrics.json), when present here."""
    path = context.settings.model_store / f"v{version}" / "metrics.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
