"""The errors the services raise and the pages (or the JSON API) turn into what the user reads. Defined here, not in
the service that raises them, so that a page catches them without importing the service (records/__init__.py)."""

from __future__ import annotations

import errno


class PredictorError(RuntimeError):
    """The model server could not answer a drawing (serving/inference.py); the message is meant for the user."""


class ModelUnavailable(PredictorError):
    """TorchServe cannot be reached, is not ready, or timed out."""


class PredictionRejected(PredictorError):
    """TorchServe refused this image (blank, not an image, too large): the message says why."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.status = status


class ManagementError(RuntimeError):
    """A management request failed or was refused (serving/management.py); the message says why and what to do."""


class StoreUnavailable(RuntimeError):
    """The database cannot be reached (down, unreachable, or every pooled connection busy for too long)."""


class RequestIdTaken(ValueError):
    """A request_id already belongs to another browser's prediction (a client bug or a forged id)."""


class RequestIdReused(RequestIdTaken):
    """A request_id already names this browser's prediction of another image: a retry must send the same image."""


JOURNAL_FULL = (
    "The database is unavailable and this server's store for drawings waiting for it is full: your {what} was NOT "
    "saved; try again later"
)


class JournalWriteError(OSError):
    """A journal entry (db/journal.py) could not be written whole (a full disk, a read-only folder): nothing of it is
    in the file."""


class JournalFull(JournalWriteError):
    """The journal holds as much as it may (`cap`: in all, for this client, for this network): nothing of the entry
    was written."""

    def __init__(self, what: str, *, cap: str):
        super().__init__(errno.ENOSPC, JOURNAL_FULL.format(what=what))
        self.cap = cap

    def __str__(self) -> str:
        return str(self.strerror)
