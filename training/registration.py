"""Where a candidate that passed the gate goes (`make retrain`'s last step): its folder in model_store/ (weights,
metrics, architecture and refusal files), its registration in the running TorchServe as a candidate, the next version
number, and which version is the default now.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from db.defaults import DefaultVersions
from records.errors import ManagementError
from serving.endpoints import endpoints
from serving.management import ModelManager
from settings import Settings
from training.train import save_weights

if TYPE_CHECKING:  # only the annotation: retrain.py imports this module to write the Result it made
    from training.retrain import Result


def write_version(folder: Path, result: Result) -> None:
    """model_store/v<version>/: weights.pt, metrics.json, and architecture.json / refusal.json when needed."""
    folder.mkdir(parents=True, exist_ok=False)
    save_weights(result.model, folder / "weights.pt")
    classes = result.model.classifier[-1].out_features
    if result.model.refusal is not None:  # a base's head kept (finetune.with_frozen_head)
        head = result.model.refusal[-3].out_features
        (folder / "architecture.json").write_text(json.dumps({"refusal_head": head}) + "\n")
    elif classes != 10:
        (folder / "architecture.json").write_text(json.dumps({"classes": classes}) + "\n")
    if result.refusal:
        (folder / "refusal.json").write_text(json.dumps(result.refusal, indent=2) + "\n")
    result.report.write(folder)


async def register(settings: Settings, archive_file: str) -> str:
    """Load the new archive into the running TorchServe as a candidate (not the default)."""
    manager = ModelManager(
        management_url=endpoints(settings).management, key_file=settings.key_file, model_name=settings.model_name
    )
    async with manager:
        return await manager.register(archive_file, workers=1)


def next_version(model_store: Path) -> str:
    """One major version above the newest folder of model_store (v2.0 -> 3.0)."""
    majors = [int(p.name[1:].split(".")[0]) for p in model_store.glob("v*") if p.name[1:].split(".")[0].isdigit()]
    return f"{max(majors, default=0) + 1}.0"


async def current_default(settings: Settings, pool) -> str:
    """The version TorchServe answers with now; else the operator's remembered choice; else 1.0."""
    manager = ModelManager(
        management_url=endpoints(settings).management, key_file=settings.key_file, model_name=settings.model_name
    )
    async with manager:
        try:
            if version := await manager.default_version():
                return version
        except ManagementError:
            pass  # TorchServe is not running: the remembered choice, or the configured default
    return await DefaultVersions(pool).chosen(settings.model_name) or "1.0"
