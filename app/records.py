"""The application's vocabulary for the pages and the JSON API: the records the use cases return and the errors they
raise. The services define them (db/ the stored rows and outages, serving/ the model's answers); they are named here
so that the pages depend on the application layer alone (tests/test_layers.py)."""

from db.journal import JournalFull, JournalWriteError
from db.numbers import NumberRow
from db.pool import StoreUnavailable
from db.predictions import Accuracy, NumberStats, PredictionRow, RequestIdReused, RequestIdTaken, Stats, VersionStats
from serving.inference import (
    AllExplanations,
    DigitReading,
    Explanation,
    FieldBox,
    ModelUnavailable,
    NumberReading,
    Prediction,
    PredictionRejected,
    PredictorError,
)
from serving.management import ManagementError, Version

__all__ = [
    "Accuracy",
    "AllExplanations",
    "DigitReading",
    "Explanation",
    "FieldBox",
    "JournalFull",
    "JournalWriteError",
    "ManagementError",
    "ModelUnavailable",
    "NumberReading",
    "NumberRow",
    "NumberStats",
    "Prediction",
    "PredictionRejected",
    "PredictionRow",
    "PredictorError",
    "RequestIdReused",
    "RequestIdTaken",
    "Stats",
    "StoreUnavailable",
    "Version",
    "VersionStats",
]
