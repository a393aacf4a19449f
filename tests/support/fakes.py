"""Stand-ins for the page's servers, for page tests that are about the page: an in-memory Store (the same methods
as db.store.Store), a scripted TorchServe client, and the management client. `fake_context` builds the AppContext
the pages get, with these inside and no Java or PostgreSQL anywhere. What the real servers do is tested where it
matters (tests/db, tests/integration, the page tests that use the real stack)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from db import store
from db.journal import Journal
from serving.inference import AllExplanations, Explanation, FieldBox, ModelUnavailable, Prediction
from serving.management import Version, Worker
from settings import Settings
from ui.admin import AdminLogin
from ui.context import AppContext, explainer
from ui.limits import InFlight
from ui.recorder import Recorder


@dataclass
class Row:
    id: int
    new: store.NewPrediction
    created_at: datetime
    true_digit: int | None = None
    feedback_network: str | None = None


class FakeStore:
    """The predictions table in memory, answering like db.store.Store (its SQL is tested in tests/db)."""

    def __init__(self):
        self.rows: list[Row] = []
        self.pool = None

    async def insert_prediction(self, prediction: store.NewPrediction) -> int:
        for row in self.rows:
            if row.new.request_id == prediction.request_id:
                if row.new.browser_id != prediction.browser_id:
                    raise store.RequestIdTaken(f"request_id {prediction.request_id} belongs to another browser")
                return row.id
        self.rows.append(Row(len(self.rows) + 1, prediction, datetime.now(UTC)))
        return len(self.rows)

    def _own(self, browser_id: str) -> list[Row]:
        return [row for row in self.rows if row.new.browser_id == browser_id]

    async def set_feedback(
        self, *, prediction_id: int, browser_id: str, true_digit: int, network: str | None = None
    ) -> bool:
        store.check_digit(true_digit, name="true_digit")
        for row in self._own(browser_id):
            if row.id == prediction_id:
                row.true_digit, row.feedback_network = true_digit, network
                return True
        return False

    async def set_feedback_by_request_id(
        self, *, request_id: uuid.UUID, browser_id: str, true_digit: int, network: str | None = None
    ) -> bool:
        row = next((r for r in self._own(browser_id) if r.new.request_id == request_id), None)
        return row is not None and await self.set_feedback(
            prediction_id=row.id, browser_id=browser_id, true_digit=true_digit, network=network
        )

    async def history(self, *, browser_id: str, limit: int, offset: int = 0) -> list[store.HistoryRow]:
        newest = sorted(self._own(browser_id), key=lambda r: (r.created_at, r.id), reverse=True)
        return [
            store.HistoryRow(r.id, r.new.request_id, r.created_at, r.new.predicted_digit, r.new.confidence,
                             r.true_digit, r.new.model_version, r.new.canvas_png, r.new.not_a_digit)
            for r in newest[offset : offset + limit]
        ]  # fmt: skip

    async def history_count(self, *, browser_id: str) -> int:
        return len(self._own(browser_id))

    async def browser_accuracy_by_version(self, *, browser_id: str) -> dict[str, store.Accuracy]:
        by_version: dict[str, list[int]] = {}
        for row in self._own(browser_id):
            if row.true_digit is not None:
                counts = by_version.setdefault(row.new.model_version, [0, 0])
                counts[0] += row.true_digit == row.new.predicted_digit
                counts[1] += 1
        return {version: store.Accuracy(*counts) for version, counts in sorted(by_version.items())}

    async def stats(self) -> store.Stats:
        pairs: dict[tuple[int, int], int] = {}
        versions: dict[str, list[int]] = {}
        for row in self.rows:
            counts = versions.setdefault(row.new.model_version, [0, 0, 0])
            counts[2] += 1
            if row.true_digit is not None:
                key = (row.true_digit, row.new.predicted_digit)
                pairs[key] = pairs.get(key, 0) + 1
                counts[0] += row.true_digit == row.new.predicted_digit
                counts[1] += 1
        return store._summarize(
            [(t, p, n) for (t, p), n in pairs.items()], [(v, *c) for v, c in sorted(versions.items())]
        )

    async def recent_drawings(self, *, limit: int, labelled_only: bool = False) -> list[store.Drawing]:
        rows = [r for r in reversed(self.rows) if not labelled_only or r.true_digit is not None]
        return [
            store.Drawing(r.id, r.new.canvas_png, r.true_digit, r.new.predicted_digit, r.new.model_version)
            for r in rows[:limit]
        ]


@dataclass
class FakePredictor:
    """Answers like TorchServe would, from a script: `digits` maps a drawing's bytes to the digit to answer (others
    get `otherwise`); `down` makes every call fail as when TorchServe cannot be reached."""

    digits: dict[bytes, int] = field(default_factory=dict)
    otherwise: int = 0
    version: str = "1.0"
    down: bool = False
    refuse: set[bytes] = field(default_factory=set)
    url: str = "fake://torchserve/predictions/mnist"
    explanations: int = 0  # passes asked for (explain_all)

    async def predict(self, png: bytes, *, version: str | None = None) -> Prediction:
        if self.down:
            raise ModelUnavailable("the model server is unavailable; your drawing is kept, try again")
        digit = self.digits.get(png, self.otherwise)
        probabilities = [0.1 / 9] * 10
        probabilities[digit] = 0.9
        refused = png in self.refuse
        return Prediction(
            digit=None if refused else digit, confidence=0.9, probabilities=probabilities, model_name="mnist",
            model_version=version or self.version, preview_png=None, latency_ms=1.0, not_a_digit=refused,
            reason="doesn't look like a digit" if refused else None, closest_digit=digit,
        )  # fmt: skip

    async def explain(self, png: bytes, *, target: int | None = None, version: str | None = None) -> Explanation:
        """A map with evidence along the middle column, for the answered digit or `target`."""
        prediction = await self.predict(png, version=version)
        target = prediction.closest_digit if target is None else target
        attributions = [[0.1 if col == 14 else 0.0 for col in range(28)] for _ in range(28)]
        return Explanation(prediction, target, attributions, FieldBox(0, 0, 280, 280), "fake")

    async def explain_all(self, png: bytes, *, version: str | None = None) -> AllExplanations:
        """Every digit's map: evidence along column 14 + digit (so that maps of different digits differ)."""
        self.explanations += 1
        prediction = await self.predict(png, version=version)
        maps = [[[0.1 if col == 14 + d - 5 else 0.0 for col in range(28)] for _ in range(28)] for d in range(10)]
        return AllExplanations(prediction, maps, FieldBox(0, 0, 280, 280), "fake")

    async def close(self) -> None:
        return None


class FakeModels:
    """The management client for two loaded versions, 1.0 the default."""

    model_name = "mnist"

    def __init__(self):
        self.default = "1.0"

    async def versions(self) -> list[Version]:
        worker = (Worker(id="9000", pid=1, status="READY", memory=None),)
        return [Version(v, v == self.default, f"mnist-v{v}.mar", 1, 1, 16, 2, worker) for v in ("1.0", "2.0")]

    async def default_version(self) -> str:
        return self.default

    async def set_default(self, version: str) -> None:
        self.default = version

    async def close(self) -> None:
        return None


class FakeDefaults:
    def __init__(self):
        self.remembered: dict[str, str] = {}

    async def chosen(self, model_name: str) -> str | None:
        return self.remembered.get(model_name)

    async def remember(self, model_name: str, version: str, *, by: str) -> None:
        self.remembered[model_name] = version


def fake_context(settings: Settings, journal_dir: Path) -> AppContext:
    """The AppContext ui/context.py builds, with the stand-ins above instead of TorchServe and PostgreSQL."""
    fake_store, predictor = FakeStore(), FakePredictor()
    journal = Journal(journal_dir / "pending.jsonl")
    return AppContext(
        settings=settings,
        pool=None,
        store=fake_store,
        predictor=predictor,
        models=FakeModels(),
        defaults=FakeDefaults(),
        journal=journal,
        recorder=Recorder(predictor=predictor, store=fake_store, journal=journal),
        admin=AdminLogin(settings, None),
        in_flight=InFlight(settings.api_max_in_flight),
        explainer=explainer(settings, predictor),
    )
