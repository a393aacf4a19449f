"""Why the model reads a drawing as it does: Integrated Gradients maps over the 28x28 image it saw, with where that
image sits over the drawing (serving/inference.py asks TorchServe's /explanations)."""

from __future__ import annotations

from dataclasses import dataclass

from records.predictions import Prediction


@dataclass(frozen=True)
class FieldBox:
    """Where the 28x28 image the model saw sits over the drawing, in the drawing's pixels (may reach past its edges)."""

    left: float
    top: float
    right: float
    bottom: float


@dataclass(frozen=True)
class Explanation:
    """Why the model scores `target` as it does: Integrated Gradients over the 28x28 image it saw."""

    prediction: Prediction
    target: int
    attributions: list[list[float]]  # 28 rows of 28; > 0: evidence for target, < 0: against it
    field_box: FieldBox
    method: str


@dataclass(frozen=True)
class AllExplanations:
    """The maps of all ten digits for one drawing, from one pass (POST /explanations with "target": "all")."""

    prediction: Prediction
    by_target: list[list[list[float]]]  # 10 maps of 28 rows of 28, index = digit
    field_box: FieldBox
    method: str

    def for_target(self, target: int) -> Explanation:
        return Explanation(self.prediction, target, self.by_target[target], self.field_box, self.method)
