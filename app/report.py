"""A model version's report: the typed form of model_store/v<version>/metrics.json.

`make train` writes a trained version's figures (test accuracy, curve, ...); `make retrain` writes a retrained
version's gate (its figures beside the default's on the same sets), what it learned from, and its weakest digits. The
retraining builds a ModelReport (training/retrain.py) and writes it (training/registration.py); the admin page reads
one (app/versions.py). Both go through this class, so a key is spelled once. Keys this class does not model are kept
in `extra`, and written back as they were.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

REPORT_FILE = "metrics.json"


@dataclass(frozen=True)
class Gate:
    """The retraining gate: the candidate's accuracy per set beside the default's, on the same drawings."""

    passed: bool
    failures: list[str]
    candidate: dict[str, float]  # set name -> accuracy (a refusal counts as wrong)
    default: dict[str, float]
    default_version: str
    counts: dict[str, int]
    config: dict[str, Any] = field(default_factory=dict)
    golden: dict[str, Any] | None = None  # training/golden.py: version, candidate / default / counts per digit
    # What the refusal rules read beside the accuracy (docs/model-card.md): {"candidate": {set: value}, "default": ...}
    answered: dict[str, dict[str, float]] | None = None  # accuracy over the digits answered
    refused: dict[str, dict[str, float]] | None = None  # the share refused
    nondigits: dict[str, float] | None = None  # each held-out kind of non-digit: the share refused
    nondigits_default: dict[str, float] | None = None  # the same drawings, the default (when it refuses)

    def to_json(self) -> dict:
        data = asdict(self)
        data["default"] = {"version": data.pop("default_version"), **self.default}
        return {key: value for key, value in data.items() if value is not None}

    @classmethod
    def from_json(cls, data: dict) -> Gate:
        default = dict(data.get("default", {}))
        version = str(default.pop("version", "default"))
        return cls(
            passed=bool(data.get("passed")),
            failures=list(data.get("failures", [])),
            candidate=dict(data.get("candidate", {})),
            default=default,
            default_version=version,
            counts=dict(data.get("counts", {})),
            config=dict(data.get("config", {})),
            golden=data.get("golden"),
            answered=data.get("answered"),
            refused=data.get("refused"),
            nondigits=data.get("nondigits"),
            nondigits_default=data.get("nondigits_default"),
        )


@dataclass(frozen=True)
class ModelReport:
    """What is known of a version beside its weights. Every field may be missing from an older report."""

    test_accuracy: float | None = None  # MNIST test (offline), the admin page's "MNIST test" column
    created_at: str | None = None
    learned_from: dict[str, Any] | None = None  # a retrained version's feedback: browsers, drawings, left out
    gate: Gate | None = None
    per_digit_heldout: dict[str, float] | None = None  # held-out browsers, per digit, this version
    per_digit_heldout_default: dict[str, float] | None = None  # the same drawings, the default it was measured against
    confusions_heldout: dict[str, dict[str, int]] | None = None  # {"candidate": {"9->4": 12, ...}, "default": ...}
    refusal: dict[str, Any] | None = None  # a refusing version's figures: threshold, refused per kind, AUROC
    extra: dict[str, Any] = field(default_factory=dict)  # everything else metrics.json holds (training figures, ...)

    _NAMES: ClassVar[dict[str, str]] = {  # attribute -> its key in metrics.json
        "per_digit_heldout": "per_digit_heldout_browsers",
        "per_digit_heldout_default": "per_digit_heldout_browsers_default",
        "confusions_heldout": "confusions_heldout_browsers",
    }

    def to_json(self) -> dict:
        data: dict[str, Any] = {}
        for name in ("test_accuracy", "created_at", "learned_from", "gate", "per_digit_heldout",
                     "per_digit_heldout_default", "confusions_heldout", "refusal"):  # fmt: skip
            value = getattr(self, name)
            if value is not None:
                data[self._NAMES.get(name, name)] = value.to_json() if isinstance(value, Gate) else value
        return {**data, **self.extra}

    @classmethod
    def from_json(cls, data: dict) -> ModelReport:
        known = {"test_accuracy", "created_at", "learned_from", "gate", "refusal", *cls._NAMES.values()}
        gate = data.get("gate")
        return cls(
            test_accuracy=data.get("test_accuracy"),
            created_at=data.get("created_at"),
            learned_from=data.get("learned_from"),
            gate=Gate.from_json(gate) if isinstance(gate, dict) else None,
            per_digit_heldout=data.get("per_digit_heldout_browsers"),
            per_digit_heldout_default=data.get("per_digit_heldout_browsers_default"),
            confusions_heldout=data.get("confusions_heldout_browsers"),
            refusal=data.get("refusal"),
            extra={key: value for key, value in data.items() if key not in known},
        )

    @classmethod
    def load(cls, folder: Path) -> ModelReport | None:
        """The report in a version's folder (model_store/v<version>/metrics.json); None when there is none here."""
        try:
            return cls.from_json(json.loads((Path(folder) / REPORT_FILE).read_text()))
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def write(self, folder: Path) -> None:
        (Path(folder) / REPORT_FILE).write_text(json.dumps(self.to_json(), indent=2, default=float) + "\n")
