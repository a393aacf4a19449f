"""Stand-ins for the services, for tests that are about the pages and the use cases: each implements one Protocol of
app/ports.py in memory, with no Java or PostgreSQL. `fake_app` wires the application on them exactly as
app/context.py `create_app` wires it on the real ones.

A stand-in is only as good as its contract: tests/db/test_contract.py runs the same tests against the real stores
(PostgreSQL) and these, tests/serving/test_contract.py against the real TorchServe clients, the remembered default and
create_app, so they cannot drift apart. What the real servers do beyond that is tested where it matters
(tests/db, tests/integration, the page tests on the real stack)."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from app.context import App, wire
from db.journal import Journal
from db.numbers import NumberIds
from db.review import DECISIONS, Decision, QueueSize, Suggestion
from records.errors import ManagementError, ModelUnavailable, PredictionRejected, RequestIdReused, RequestIdTaken
from records.explanations import AllExplanations, FieldBox
from records.numbers import DigitReading, NumberDigit, NumberReading, StoredNumber, check_number
from records.predictions import Prediction, StoredPrediction, check_digit, check_label
from records.stats import Accuracy, NumberStats, RefusalStats, Stats
from records.versions import Version, Worker
from serving.inference import NOT_ANSWERING
from settings import Settings


class FakePredictionStore:
    """The predictions table in memory (app.ports.PredictionRecords), answering like db.predictions.PredictionStore."""

    def __init__(self) -> None:
        self.rows: list[StoredPrediction] = []
        self.feedback_at: dict[int, datetime] = {}

    async def insert(self, row: StoredPrediction) -> int:
        if row.canvas_png is None:
            raise ValueError("a prediction is stored with its drawing")
        for stored in self.rows:
            if stored.request_id == row.request_id:
                if stored.browser_id != row.browser_id:
                    raise RequestIdTaken(f"request_id {row.request_id} belongs to another browser's prediction")
                if hashlib.sha256(stored.canvas_png or b"").digest() != hashlib.sha256(row.canvas_png).digest():
                    raise RequestIdReused(f"request_id {row.request_id} was used for another image (row {stored.id})")
                return int(stored.id or 0)
        self.rows.append(replace(row, id=len(self.rows) + 1, created_at=row.created_at or datetime.now(UTC)))
        return len(self.rows)

    def _own(self, browser_id: str) -> list[StoredPrediction]:
        return [row for row in self.rows if row.browser_id == browser_id]

    def _label(
        self,
        index: int,
        true_digit: int | None,
        network: str | None,
        at: datetime | None = None,
        *,
        not_a_digit: bool = False,
    ) -> None:
        self.rows[index] = replace(
            self.rows[index], true_digit=true_digit, labelled_not_a_digit=not_a_digit, feedback_network=network
        )
        self.feedback_at[index] = at or datetime.now(UTC)

    async def set_feedback(
        self,
        *,
        prediction_id: int,
        browser_id: str,
        true_digit: int | None = None,
        not_a_digit: bool = False,
        network: str | None = None,
    ) -> bool:
        check_label(true_digit, not_a_digit)
        for index, row in enumerate(self.rows):
            if row.id == prediction_id and row.browser_id == browser_id:
                self._label(index, true_digit, network, not_a_digit=not_a_digit)
                return True
        return False

    async def set_feedback_by_request_id(
        self,
        *,
        request_id: uuid.UUID,
        browser_id: str,
        true_digit: int | None = None,
        not_a_digit: bool = False,
        at: datetime | None = None,
        network: str | None = None,
    ) -> bool:
        check_label(true_digit, not_a_digit)
        for index, row in enumerate(self.rows):
            if row.request_id == request_id and row.browser_id == browser_id:
                if at is not None and index in self.feedback_at and self.feedback_at[index] > at:
                    return False  # a later label was recorded since
                self._label(index, true_digit, network, at, not_a_digit=not_a_digit)
                return True
        return False

    async def history(self, *, browser_id: str, limit: int, offset: int = 0) -> list[StoredPrediction]:
        if limit < 1 or offset < 0:
            raise ValueError(f"need limit >= 1 and offset >= 0, got limit={limit}, offset={offset}")
        newest = sorted(self._own(browser_id), key=lambda r: (r.created_at, r.id), reverse=True)
        return [replace(row, canvas_png=None) for row in newest[offset : offset + limit]]

    async def history_count(self, *, browser_id: str) -> int:
        return len(self._own(browser_id))

    async def drawing(self, *, browser_id: str, prediction_id: int) -> bytes | None:
        return next((r.canvas_png for r in self._own(browser_id) if r.id == prediction_id), None)

    async def accuracy_by_version(self, *, browser_id: str) -> dict[str, Accuracy]:
        by_version: dict[str, list[int]] = {}
        for row in self._own(browser_id):
            if row.labelled:
                counts = by_version.setdefault(row.answer.model_version, [0, 0])
                counts[0] += bool(row.right)
                counts[1] += 1
        return {version: Accuracy(*counts) for version, counts in sorted(by_version.items())}

    async def stats(self) -> Stats:
        pairs: dict[tuple[int, int], int] = {}
        versions: dict[str, list[int]] = {}
        for row in self.rows:
            counts = versions.setdefault(row.answer.model_version, [0, 0, 0])
            counts[2] += 1
            if row.true_digit is not None:
                key = (row.true_digit, row.predicted_digit)
                pairs[key] = pairs.get(key, 0) + 1
            if row.labelled:
                counts[0] += bool(row.right)
                counts[1] += 1
        refused = [r for r in self.rows if r.answer.not_a_digit]
        refusals = RefusalStats(
            answered=len(refused),
            confirmed=sum(r.labelled_not_a_digit for r in refused),
            overturned=sum(r.true_digit is not None for r in refused),
            not_digits=sum(r.labelled_not_a_digit and not r.answer.not_a_digit for r in self.rows),
        )
        return Stats.from_counts(
            [(t, p, n) for (t, p), n in pairs.items()],
            [(v, c[0], c[1], c[2]) for v, c in sorted(versions.items())],
            refusals,
        )

    async def recent_drawings(self, *, limit: int, labelled_only: bool = False) -> list[StoredPrediction]:
        if limit < 1:
            raise ValueError(f"need limit >= 1, got {limit}")
        return [r for r in reversed(self.rows) if not labelled_only or r.labelled][:limit]


class FakeNumberStore:
    """The numbers table in memory (app.ports.NumberRecords), answering like db.numbers.NumberStore. Its digits are rows
    of the FakePredictionStore it is given, as they are rows of `predictions` in PostgreSQL."""

    def __init__(self, predictions: FakePredictionStore) -> None:
        self.predictions = predictions
        self.numbers: list[StoredNumber] = []  # digits=() here: the digits live in predictions.rows
        self.digit_ids: dict[int, list[int]] = {}  # number id -> its digits' row ids, left to right
        self.boxes: dict[int, list[tuple[float, float, float, float]]] = {}  # number id -> its digits' boxes
        self.feedback_at: dict[int, datetime] = {}

    async def insert(self, row: StoredNumber) -> NumberIds:
        if row.canvas_png is None or any(digit.prediction.canvas_png is None for digit in row.digits):
            raise ValueError("a number is stored with its drawing and each digit with its crop")
        for stored in self.numbers:
            if stored.request_id == row.request_id:
                if stored.browser_id != row.browser_id:
                    raise RequestIdTaken(f"request_id {row.request_id} belongs to another browser's number")
                if stored.canvas_png != row.canvas_png:
                    raise RequestIdReused(f"request_id {row.request_id} was used for another drawing")
                return NumberIds(int(stored.id or 0), tuple(self.digit_ids[int(stored.id or 0)]))
        number_id = len(self.numbers) + 1
        created_at = row.created_at or datetime.now(UTC)
        ids = []
        for digit in row.digits:
            if any(r.request_id == digit.prediction.request_id for r in self.predictions.rows):
                raise RequestIdTaken(f"request_id {digit.prediction.request_id} of digit {digit.position} is taken")
            ids.append(await self.predictions.insert(replace(digit.prediction, created_at=created_at)))
        self.numbers.append(replace(row, id=number_id, created_at=created_at, digits=()))
        self.digit_ids[number_id] = ids
        self.boxes[number_id] = [digit.box for digit in row.digits]
        return NumberIds(number_id, tuple(ids))

    def _find(self, request_id: uuid.UUID, browser_id: str) -> int | None:
        found = (i for i, n in enumerate(self.numbers) if (n.request_id, n.browser_id) == (request_id, browser_id))
        return next(found, None)

    def _digit_index(self, number_id: int, position: int) -> int | None:
        ids = self.digit_ids[number_id]
        return ids[position] - 1 if 0 <= position < len(ids) else None  # row ids are 1-based indexes

    async def set_feedback_by_request_id(
        self,
        *,
        request_id: uuid.UUID,
        browser_id: str,
        true_number: str,
        at: datetime | None = None,
        network: str | None = None,
    ) -> int | None:
        check_number(true_number, name="true_number")
        index = self._find(request_id, browser_id)
        if index is None or (at is not None and index in self.feedback_at and self.feedback_at[index] > at):
            return None
        labelled_at = at or datetime.now(UTC)
        self.numbers[index] = replace(self.numbers[index], true_number=true_number, feedback_network=network)
        self.feedback_at[index] = labelled_at
        ids = self.digit_ids[int(self.numbers[index].id or 0)]
        if len(ids) != len(true_number):  # another count: the digits' labels (unless newer) are taken back
            for row_index in (row_id - 1 for row_id in ids):
                if self.predictions.feedback_at.get(row_index, labelled_at) <= labelled_at:
                    self.predictions.rows[row_index] = replace(
                        self.predictions.rows[row_index],
                        true_digit=None,
                        labelled_not_a_digit=False,
                        feedback_network=None,
                    )
                    self.predictions.feedback_at.pop(row_index, None)
            return 0
        labelled = 0
        for row_id, digit in zip(ids, true_number, strict=True):
            row_index = row_id - 1
            if self.predictions.feedback_at.get(row_index, labelled_at) <= labelled_at:
                self.predictions._label(row_index, int(digit), network, labelled_at)
                labelled += 1
        return labelled

    async def set_digit_feedback_by_request_id(
        self,
        *,
        request_id: uuid.UUID,
        browser_id: str,
        position: int,
        true_digit: int,
        at: datetime | None = None,
        network: str | None = None,
    ) -> bool:
        check_digit(true_digit, name="true_digit")
        index = self._find(request_id, browser_id)
        if index is None:
            return False
        number = self.numbers[index]
        row_index = self._digit_index(int(number.id or 0), position)
        if row_index is None or (at is not None and self.predictions.feedback_at.get(row_index, at) > at):
            return False
        labelled_at = at or datetime.now(UTC)
        self.predictions._label(row_index, true_digit, network, labelled_at)
        base = number.true_number or self._with_digits(number).reading  # the label so far, else the reading
        typed_another_length = len(base) != len(self.digit_ids[int(number.id or 0)])
        newer = self.feedback_at.get(index, labelled_at) > labelled_at
        if not typed_another_length and len(base) <= 10 and not newer:
            corrected = base[:position] + str(true_digit) + base[position + 1 :]
            self.numbers[index] = replace(number, true_number=corrected, feedback_network=network)
            self.feedback_at[index] = labelled_at
        return True

    def _with_digits(self, number: StoredNumber) -> StoredNumber:
        number_id = int(number.id or 0)
        rows = [self.predictions.rows[row_id - 1] for row_id in self.digit_ids[number_id]]
        digits = (NumberDigit(position, box, replace(r, canvas_png=None))
                  for position, (box, r) in enumerate(zip(self.boxes[number_id], rows, strict=True)))  # fmt: skip
        return replace(number, canvas_png=None, digits=tuple(digits))

    def digit_row_ids(self) -> set[int]:
        return {row_id for ids in self.digit_ids.values() for row_id in ids}

    async def timeline(self, *, browser_id: str, limit: int, offset: int = 0) -> list[StoredPrediction | StoredNumber]:
        if limit < 1 or offset < 0:
            raise ValueError(f"need limit >= 1 and offset >= 0, got limit={limit}, offset={offset}")
        entries: list[StoredPrediction | StoredNumber] = [
            replace(r, canvas_png=None) for r in self.predictions._own(browser_id) if r.id not in self.digit_row_ids()
        ]
        entries += [self._with_digits(n) for n in self.numbers if n.browser_id == browser_id]
        kind = {StoredPrediction: "drawing", StoredNumber: "number"}
        # newest first, then the larger id, then "drawing" before "number" (PostgreSQL's ORDER BY ... DESC, DESC, kind)
        entries.sort(key=lambda e: (e.created_at, e.id, kind[type(e)] == "drawing"), reverse=True)
        return entries[offset : offset + limit]

    async def timeline_count(self, *, browser_id: str) -> int:
        drawings = [r for r in self.predictions._own(browser_id) if r.id not in self.digit_row_ids()]
        return len(drawings) + sum(n.browser_id == browser_id for n in self.numbers)

    async def drawing(self, *, browser_id: str, number_id: int) -> bytes | None:
        return next((n.canvas_png for n in self.numbers if n.id == number_id and n.browser_id == browser_id), None)

    async def stats(self) -> NumberStats:
        labelled = [n for n in self.numbers if n.true_number is not None]
        return NumberStats(len(self.numbers), len(labelled), sum(n.true_number == n.number for n in labelled))


class FakeAdminStore:
    """Login attempts and admin sessions in memory (app.ports.AdminRecords), like db.admin.AdminStore; time is the
    store's own clock, `now`, which a test moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.failures: dict[str, tuple[int, float]] = {}  # address -> (failures, last failure)
        self.tokens: dict[bytes, dict[str, Any]] = {}

    async def count_login_attempt(
        self, *, address: str, forget: float, delay: Callable[[int], float], network: str | None = None
    ) -> tuple[float, int]:
        keys = [address] if network is None else [address, network]  # a network's count is a row like an address's
        counts = {key: self._recent(key, forget) for key in keys}
        wait = max(delay(failures) - (self.now - last if failures else 0.0) for failures, last in counts.values())
        if wait > 0:
            return wait, max(failures for failures, _ in counts.values())
        for key, (failures, _) in counts.items():
            self.failures[key] = (failures + 1, self.now)
        return 0.0, max(failures for failures, _ in counts.values()) + 1

    def _recent(self, key: str, forget: float) -> tuple[int, float]:
        failures, last = self.failures.get(key, (0, self.now))
        return (0, self.now) if self.now - last >= forget else (failures, last)

    async def clear_login_failures(self, *, address: str, network: str | None = None) -> None:
        for key in filter(None, (address, network)):
            self.failures.pop(key, None)

    async def add_token(
        self, *, token_sha256: bytes, kind: str, browser_id: str, fingerprint: str, idle: float
    ) -> None:
        self.tokens = {k: t for k, t in self.tokens.items() if self.now - t["last_seen"] <= idle}
        self.tokens[token_sha256] = {"kind": kind, "browser_id": browser_id, "fingerprint": fingerprint,
                                     "created": self.now, "last_seen": self.now}  # fmt: skip

    async def redeem_ticket(self, *, token_sha256: bytes, browser_id: str, max_age: float) -> str | None:
        token = self.tokens.get(token_sha256)
        if not token or token["kind"] != "ticket" or token["browser_id"] != browser_id:
            return None
        del self.tokens[token_sha256]
        return token["fingerprint"] if self.now - token["created"] < max_age else None

    async def session_valid(
        self, *, token_sha256: bytes, browser_id: str, fingerprint: str, idle: float, touch: bool
    ) -> bool:
        token = self.tokens.get(token_sha256)
        live = (
            token is not None
            and token["kind"] == "session"
            and token["browser_id"] == browser_id
            and token["fingerprint"] == fingerprint
            and self.now - token["last_seen"] < idle
        )
        if live and touch and token is not None:
            token["last_seen"] = self.now
        return bool(live)

    async def delete_session(self, *, token_sha256: bytes) -> None:
        self.tokens.pop(token_sha256, None)


def _preview() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (28, 28)).save(buffer, format="PNG")
    return buffer.getvalue()


PREVIEW = _preview()  # what each digit of a number was seen as: a 28x28 PNG, as the handler sends


@dataclass
class FakePredictor:
    """Answers like TorchServe would (app.ports.ModelServer), from a script: `digits` maps a drawing's bytes to the
    digit to answer (others get `otherwise`); `down` makes every call fail as when TorchServe cannot be reached.
    It serves the versions in `loaded`, `version` the default (FakeVersionControl switches it); asking another version
    fails as TorchServe's 404 does."""

    digits: dict[bytes, int] = field(default_factory=dict)
    otherwise: int = 0
    version: str = "1.0"
    loaded: list[str] = field(default_factory=lambda: ["1.0", "2.0"])
    down: bool = False
    refuse: set[bytes] = field(default_factory=set)
    numbers: dict[bytes, str] = field(default_factory=dict)  # a drawing's bytes -> the number to read (else "0")
    unreadable: dict[bytes, str] = field(default_factory=dict)  # a drawing's bytes -> the handler's 422 for a number
    url: str = "fake://torchserve/predictions/mnist"
    explanations: int = 0  # passes asked for (explain_all)

    def _answering(self, version: str | None) -> str:
        """The version that answers; ModelUnavailable as Predictor raises it (down, or a version not loaded)."""
        if self.down:
            raise ModelUnavailable(NOT_ANSWERING)
        if (version or self.version) not in self.loaded:
            raise ModelUnavailable("the model server answered 404; your drawing is kept, try again")
        return version or self.version

    async def predict(self, png: bytes, *, version: str | None = None) -> Prediction:
        answering = self._answering(version)
        digit = self.digits.get(png, self.otherwise)
        probabilities = [0.1 / 9] * 10
        probabilities[digit] = 0.9
        refused = png in self.refuse
        return Prediction(
            digit=None if refused else digit,
            confidence=0.9,
            probabilities=probabilities,
            model_name="mnist",
            model_version=answering,
            preview_png=None,
            latency_ms=1.0,
            not_a_digit=refused,
            reason="doesn't look like a digit" if refused else None,
            closest_digit=digit,
        )

    async def read_number(self, png: bytes, *, version: str | None = None) -> NumberReading:
        """The scripted number for this drawing (a real PNG: the digits' boxes split its width evenly); a drawing in
        `refuse` is refused as the handler refuses one (number None, each digit marked)."""
        answering = self._answering(version)
        if png in self.unreadable:  # e.g. too complex to read (handler/segmentation.py's work budget)
            raise PredictionRejected(self.unreadable[png], status=422)
        with Image.open(io.BytesIO(png)) as image:
            width, height = image.size
        text, refused = self.numbers.get(png, "0"), png in self.refuse
        step = width / len(text)
        digits = []
        for position, character in enumerate(text):
            probabilities = [0.1 / 9] * 10
            probabilities[int(character)] = 0.9
            box = (position * step, 0.0, (position + 1) * step, float(height))
            digits.append(DigitReading(int(character), 0.9, probabilities, box, PREVIEW, not_a_digit=refused))
        return NumberReading(
            number=None if refused else text,
            digits=digits,
            model_name="mnist",
            model_version=answering,
            latency_ms=1.0,
            not_a_digit=refused,
            reason="doesn't look like a digit" if refused else None,
        )

    async def explain_all(self, png: bytes, *, version: str | None = None) -> AllExplanations:
        """Every digit's map: evidence along column 14 + digit - 5 (so that maps of different digits differ)."""
        self.explanations += 1
        prediction = await self.predict(png, version=version)
        maps = [[[0.1 if col == 14 + d - 5 else 0.0 for col in range(28)] for _ in range(28)] for d in range(10)]
        return AllExplanations(prediction, maps, FieldBox(0, 0, 280, 280), "fake")

    async def close(self) -> None:
        return None


class FakeVersionControl:
    """The management API (app.ports.VersionControl) of a FakePredictor, as TorchServe's two APIs are one server's:
    the versions it serves, and its default, which set_default switches for the predictions that follow."""

    model_name = "mnist"

    def __init__(self, server: FakePredictor | None = None) -> None:
        self.server = server or FakePredictor()

    @property
    def loaded(self) -> list[str]:
        return self.server.loaded

    @property
    def default(self) -> str:
        return self.server.version

    async def versions(self) -> list[Version]:
        worker = (Worker(id="9000", pid=1, status="READY", memory=None),)
        return [Version(v, v == self.default, f"mnist-v{v}.mar", 1, 1, 16, 2, worker) for v in self.loaded]

    async def default_version(self) -> str | None:
        return self.default

    async def require(self, version: str) -> list[Version]:
        if version not in self.loaded:
            raise ManagementError(f"version {version} of {self.model_name} is not loaded")
        return await self.versions()

    async def set_default(self, version: str) -> None:
        await self.require(version)
        self.server.version = version

    async def close(self) -> None:
        return None


class FakeDefaults:
    """The operator's remembered default (serving.versions.RememberedDefault) in memory."""

    def __init__(self) -> None:
        self.remembered: dict[str, str] = {}

    async def chosen(self, model_name: str) -> str | None:
        return self.remembered.get(model_name)

    async def remember(self, model_name: str, version: str, *, by: str) -> None:
        self.remembered[model_name] = version


NOT_A_DIGIT_LABEL = -1  # how the stand-in keeps a "not a digit" label beside digit labels (db: labelled_not_a_digit)


def _label_of(row: StoredPrediction) -> int | None:
    return NOT_A_DIGIT_LABEL if row.labelled_not_a_digit else row.true_digit


def _disagrees(row: StoredPrediction) -> bool:
    """db/init.sql predictions_label_contradicts: for an answered digit, another digit or "not a digit"; for a
    refusal, any digit (its closest one too)."""
    if row.labelled_not_a_digit:
        return not row.answer.not_a_digit
    return row.true_digit is not None and (row.answer.not_a_digit or row.true_digit != row.predicted_digit)


class FakeReviewStore:
    """The review queue over FakePredictionStore's rows (app.ports.ReviewRecords), like db.review.ReviewStore: a
    review holds for the label it was given to (a changed label waits again)."""

    def __init__(self, store: FakePredictionStore) -> None:
        self.store = store
        self.reviews: dict[int, tuple[str, int | None]] = {}  # row id -> (decision, the label it was given to)

    def _review(self, row: StoredPrediction) -> str | None:
        decision, label = self.reviews.get(int(row.id or 0), (None, None))
        return decision if label == _label_of(row) else None

    def _unreviewed(self) -> list[StoredPrediction]:
        return [r for r in self.store.rows if r.labelled and self._review(r) is None]

    def _pending(self) -> list[StoredPrediction]:
        return [r for r in self._unreviewed() if _disagrees(r)]

    @staticmethod
    def _network(row: StoredPrediction) -> str | None:
        return row.feedback_network or row.client_network

    async def size(self) -> QueueSize:
        pending = self._pending()
        return QueueSize(len(pending), len({r.browser_id for r in pending}), len({self._network(r) for r in pending}))

    async def queue(self, *, limit: int, offset: int = 0) -> list[Suggestion]:
        pending = self._pending()
        return [self._suggestion(r, pending) for r in pending[offset : offset + limit]]

    def _suggestion(self, r: StoredPrediction, pending: list[StoredPrediction]) -> Suggestion:
        return Suggestion(
            id=int(r.id or 0),
            created_at=r.created_at or datetime.now(UTC),
            feedback_at=self.store.feedback_at[int(r.id or 0) - 1],
            browser_id=r.browser_id,
            network=self._network(r),
            model_version=r.answer.model_version,
            predicted_digit=r.predicted_digit,
            confidence=r.answer.confidence,
            not_a_digit=r.answer.not_a_digit,
            true_digit=r.true_digit,
            labelled_not_a_digit=r.labelled_not_a_digit,
            canvas_png=r.canvas_png or b"",
            browser_pending=sum(p.browser_id == r.browser_id for p in pending),
            network_pending=sum(self._network(p) == self._network(r) for p in pending),
        )

    def _apply(self, rows: list[StoredPrediction], decision: Decision) -> int:
        if decision not in DECISIONS:
            raise ValueError(f"a review decision is one of {', '.join(DECISIONS)}, got {decision!r}")
        for row in rows:
            self.reviews[int(row.id or 0)] = (decision, _label_of(row))
        return len(rows)

    async def decide(self, ids: list[int], decision: Decision, *, by: str) -> int:
        return self._apply([r for r in self.store.rows if r.id in ids and r.labelled], decision)

    async def decide_browsers(self, browsers: list[str], decision: Decision, *, by: str) -> int:
        return self._apply([r for r in self._unreviewed() if r.browser_id in browsers], decision)

    async def decide_networks(self, networks: list[str], decision: Decision, *, by: str) -> int:
        return self._apply([r for r in self._unreviewed() if self._network(r) in networks], decision)


@dataclass
class FakeServices:
    """The stand-ins an App was wired on, for a test to script and read."""

    store: FakePredictionStore
    numbers: FakeNumberStore
    admin: FakeAdminStore
    review: FakeReviewStore
    predictor: FakePredictor
    control: FakeVersionControl
    defaults: FakeDefaults
    journal: Journal


def fake_app(settings: Settings, journal_dir: Path) -> tuple[App, FakeServices]:
    """The App create_app builds, wired on the stand-ins above instead of TorchServe and PostgreSQL."""
    store, predictor = FakePredictionStore(), FakePredictor()
    services = FakeServices(
        store=store,
        numbers=FakeNumberStore(store),
        admin=FakeAdminStore(),
        review=FakeReviewStore(store),
        predictor=predictor,
        control=FakeVersionControl(predictor),
        defaults=FakeDefaults(),
        journal=Journal(journal_dir / "pending.jsonl"),
    )
    app = wire(
        settings,
        records=services.store,
        number_records=services.numbers,
        admin_records=services.admin,
        review_records=services.review,
        defaults=services.defaults,
        server=services.predictor,
        control=services.control,
        journal=services.journal,
    )
    return app, services
