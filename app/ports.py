"""The seams of the application layer: what each use case needs from the services, as Protocols.

The running product wires the real ones (db/ for PostgreSQL and the journal, serving/ for TorchServe) in
app/context.py `create_app`; page tests wire the stand-ins of tests/support/fakes.py, which type-check against these.
"""

from __future__ import annotations

import uuid
from collections.abc import Set as AbstractSet
from datetime import datetime
from pathlib import Path
from typing import Protocol

from db.journal import Waiting
from db.numbers import NumberIds
from db.review import Decision, QueueSize, Suggestion
from records.explanations import AllExplanations
from records.numbers import NumberReading, StoredNumber
from records.predictions import Prediction, StoredPrediction
from records.stats import Accuracy, NumberStats, Stats
from records.versions import Version


class PredictionRecords(Protocol):
    """The predictions table (db.predictions.PredictionStore)."""

    async def insert(self, row: StoredPrediction) -> int: ...

    async def set_feedback(
        self,
        *,
        prediction_id: int,
        browser_id: str,
        true_digit: int | None = None,
        not_a_digit: bool = False,
        network: str | None = None,
    ) -> bool: ...

    async def set_feedback_by_request_id(
        self,
        *,
        request_id: uuid.UUID,
        browser_id: str,
        true_digit: int | None = None,
        not_a_digit: bool = False,
        at: datetime | None = None,
        network: str | None = None,
    ) -> bool: ...

    async def history(self, *, browser_id: str, limit: int, offset: int = 0) -> list[StoredPrediction]: ...

    async def history_count(self, *, browser_id: str) -> int: ...

    async def drawing(self, *, browser_id: str, prediction_id: int) -> bytes | None: ...

    async def accuracy_by_version(self, *, browser_id: str) -> dict[str, Accuracy]: ...

    async def stats(self) -> Stats: ...

    async def recent_drawings(self, *, limit: int, labelled_only: bool = False) -> list[StoredPrediction]: ...


class NumberRecords(Protocol):
    """The numbers table and its digits' rows of predictions (db.numbers.NumberStore)."""

    async def insert(self, row: StoredNumber) -> NumberIds: ...

    async def set_feedback_by_request_id(
        self,
        *,
        request_id: uuid.UUID,
        browser_id: str,
        true_number: str,
        at: datetime | None = None,
        network: str | None = None,
    ) -> int | None: ...

    async def set_digit_feedback_by_request_id(
        self,
        *,
        request_id: uuid.UUID,
        browser_id: str,
        position: int,
        true_digit: int,
        at: datetime | None = None,
        network: str | None = None,
    ) -> bool: ...

    async def timeline(
        self, *, browser_id: str, limit: int, offset: int = 0
    ) -> list[StoredPrediction | StoredNumber]: ...

    async def timeline_count(self, *, browser_id: str) -> int: ...

    async def drawing(self, *, browser_id: str, number_id: int) -> bytes | None: ...

    async def stats(self) -> NumberStats: ...


class AdminRecords(Protocol):
    """Login attempts and admin sessions (db.admin.AdminStore)."""

    async def count_login_attempt(
        self, *, address: str, forget: float, delay, network: str | None = None
    ) -> tuple[float, int]: ...

    async def clear_login_failures(self, *, address: str, network: str | None = None) -> None: ...

    async def add_token(
        self, *, token_sha256: bytes, kind: str, browser_id: str, fingerprint: str, idle: float
    ) -> None: ...

    async def redeem_ticket(self, *, token_sha256: bytes, browser_id: str, max_age: float) -> str | None: ...

    async def session_valid(
        self, *, token_sha256: bytes, browser_id: str, fingerprint: str, idle: float, touch: bool
    ) -> bool: ...

    async def delete_session(self, *, token_sha256: bytes) -> None: ...


class ReviewRecords(Protocol):
    """The review queue (db.review.ReviewStore)."""

    async def size(self) -> QueueSize: ...

    async def queue(self, *, limit: int, offset: int = 0) -> list[Suggestion]: ...

    async def decide(self, ids: list[int], decision: Decision, *, by: str) -> int: ...

    async def decide_browsers(self, browsers: list[str], decision: Decision, *, by: str) -> int: ...

    async def decide_networks(self, networks: list[str], decision: Decision, *, by: str) -> int: ...


class PendingWrites(Protocol):
    """What waits for the database during an outage (db.journal.Journal)."""

    @property
    def pending(self) -> int: ...

    @property
    def set_aside(self) -> int: ...

    @property
    def rejected_path(self) -> Path: ...

    def pending_request_ids(self) -> AbstractSet[uuid.UUID]: ...

    def waiting(self, request_id: uuid.UUID, *, kind: str) -> Waiting | None: ...

    def check_room(self, *, browser_id: str, network: str | None, size: int) -> None: ...

    async def add_prediction(self, prediction: StoredPrediction) -> None: ...

    async def add_label(
        self,
        *,
        request_id: uuid.UUID,
        browser_id: str,
        true_digit: int | None = None,
        not_a_digit: bool = False,
        network: str | None = None,
    ) -> None: ...

    async def add_number(self, number: StoredNumber) -> None: ...

    async def add_number_label(
        self, *, request_id: uuid.UUID, browser_id: str, true_number: str, network: str | None = None
    ) -> None: ...

    async def add_digit_label(
        self, *, request_id: uuid.UUID, browser_id: str, position: int, true_digit: int, network: str | None = None
    ) -> None: ...

    async def replay(self, store, *, numbers=None, batches=None) -> int: ...


class ModelServer(Protocol):
    """TorchServe's inference API (serving.inference.Predictor)."""

    url: str

    async def predict(self, png: bytes, *, version: str | None = None) -> Prediction: ...

    async def read_number(self, png: bytes, *, version: str | None = None) -> NumberReading: ...

    async def explain_all(self, png: bytes, *, version: str | None = None) -> AllExplanations: ...

    async def close(self) -> None: ...


class VersionControl(Protocol):
    """TorchServe's management API for one model's versions (serving.management.ModelManager)."""

    model_name: str

    async def versions(self) -> list[Version]: ...

    async def default_version(self) -> str | None: ...

    async def set_default(self, version: str) -> None: ...

    async def require(self, version: str) -> list[Version]: ...

    async def close(self) -> None: ...
