"""A loaded model version as TorchServe's management API describes it (serving/management.py asks), with its
workers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Worker:
    id: str
    pid: int | None
    status: str
    memory: int | None

    @property
    def ready(self) -> bool:
        """Taking requests (not starting, restarting after a crash or unloading)."""
        return self.status == "READY"


@dataclass(frozen=True)
class Version:
    """One loaded version of a model, as TorchServe describes it."""

    version: str
    is_default: bool
    archive: str
    min_workers: int
    max_workers: int
    batch_size: int
    max_batch_delay: int
    workers: tuple[Worker, ...]

    @property
    def ready_workers(self) -> int:
        return sum(worker.ready for worker in self.workers)

    @property
    def ready(self) -> bool:
        """Can answer: at least one READY worker."""
        return self.ready_workers > 0
