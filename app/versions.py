"""The admin page's use cases: the loaded versions with what is known of each, make one the default, compare them on
the newest stored drawings, and keep TorchServe on the operator's chosen default.

The version policy itself (promote, reconcile) is serving/versions.py's; the reports are app/report.py's.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from app.ports import PredictionRecords, VersionControl
from app.predictions import Predictions
from app.report import ModelReport
from records.errors import ManagementError, PredictorError, StoreUnavailable
from records.predictions import Prediction, StoredPrediction
from records.stats import VersionStats
from records.versions import Version
from serving.versions import RememberedDefault, promote, reconcile

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionView:
    """One loaded version: TorchServe's description, its live accuracy from users' feedback, its report."""

    version: Version
    live: VersionStats | None  # None: no prediction of it stored (or the database is unavailable)
    report: ModelReport | None


@dataclass(frozen=True)
class Overview:
    versions: list[VersionView]
    live_available: bool  # False: the database could not be reached for live accuracy

    @property
    def default(self) -> str | None:
        return next((v.version.version for v in self.versions if v.version.is_default), None)


@dataclass(frozen=True)
class Comparison:
    """Every loaded version's answer for one stored drawing."""

    drawing: StoredPrediction
    answers: dict[str, Prediction | str]  # version -> prediction, or the error message

    @property
    def digits(self) -> set[int | None]:
        return {a.digit for a in self.answers.values() if isinstance(a, Prediction)}

    @property
    def disagree(self) -> bool:
        return len(self.digits) > 1 or any(isinstance(a, str) for a in self.answers.values())


class Versions:
    """One per app."""

    def __init__(
        self,
        *,
        control: VersionControl,
        defaults: RememberedDefault,
        store: PredictionRecords,
        predictions: Predictions,
        model_store: Path,
        compare_drawings: int,
    ):
        self.control = control
        self.defaults = defaults
        self.store = store
        self.predictions = predictions
        self.model_store = model_store
        self.compare_drawings = compare_drawings

    async def overview(self) -> Overview:
        """The loaded versions (ManagementError when TorchServe's management API cannot answer)."""
        versions = await self.control.versions()
        try:
            live = (await self.store.stats()).per_version
            available = True
        except StoreUnavailable:
            live, available = {}, False
        views = [
            VersionView(v, live.get(v.version), ModelReport.load(self.model_store / f"v{v.version}")) for v in versions
        ]
        return Overview(views, available)

    async def make_default(self, version: str, *, by: str) -> None:
        """Promote a version now and after restarts (ManagementError, StoreUnavailable)."""
        await promote(self.control, self.defaults, version, by=by)

    async def apply_default(self) -> None:
        """Re-apply the operator's chosen default version if TorchServe lost it (restart); never raises."""
        try:
            applied = await reconcile(self.control, self.defaults)
        except (ManagementError, StoreUnavailable) as exc:
            logger.debug("default version not checked: %s", exc)  # TorchServe or Postgres down: the page says so
            return
        if applied:
            logger.info("TorchServe's default version of %s set back to %s", self.control.model_name, applied)

    async def apply_default_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.apply_default()

    async def compare(self, versions: list[str], *, labelled_only: bool) -> list[Comparison]:
        """Ask every version about the newest stored drawings, 8 requests in flight (TorchServe batches them), each
        through the large-image lane like any image sent to TorchServe (StoreUnavailable: no drawings to read)."""
        drawings = await self.store.recent_drawings(limit=self.compare_drawings, labelled_only=labelled_only)
        limit = asyncio.Semaphore(8)

        async def ask(png: bytes, version: str) -> Prediction | str:
            async with limit:
                try:
                    return await self.predictions.ask(png, version=version)
                except PredictorError as exc:
                    return str(exc)

        answers = await asyncio.gather(*(ask(d.canvas_png or b"", v) for d in drawings for v in versions))
        per_drawing = [answers[i : i + len(versions)] for i in range(0, len(answers), len(versions))]
        return [Comparison(d, dict(zip(versions, a, strict=True))) for d, a in zip(drawings, per_drawing, strict=True)]
