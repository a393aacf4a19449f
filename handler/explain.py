"""Why the model reads a drawing as a digit: Integrated Gradients over the 28x28 image it saw. Pure torch.

Integrated Gradients (Sundararajan et al., 2017) attributes the model's score for one class to each input pixel:
(x - baseline) times the gradient averaged along the straight path from the baseline to x. The attributions add up
to score(x) - score(baseline) (completeness), so a map says how each pixel moved the score away from what the model
says about an empty slate. The baseline is that empty slate: a black field, normalised like every input. It is the
method TorchServe's own Captum path uses; written here in plain torch (a few lines) so the archive needs no Captum.

The score is the model's output for the target class: logits for a single DigitNet, the mean log-probability for an
ensemble (DigitNet's forward averages its members), so an ensemble's averaged output is what gets explained.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

# Decided by how this file was imported, not by whether `handler` imports: an editable install of another checkout
# makes `handler` importable inside a TorchServe worker, and classes from two copies (PreprocessError) do not match.
if TYPE_CHECKING or __package__:  # the repository layout (tests, UI; and what mypy checks)
    from .preprocess import normalise
else:  # inside the .mar, every file sits flat in the model directory
    from preprocess import normalise

# Gauss-Legendre nodes on the path (as Captum's default). Measured 2026-12-04 on 20 canvas drawings against a 128-node
# reference (the same map, up to quadrature error): 24 nodes keep each map's correlation with it >= 0.993 (1.0, 2.0,
# 3.0) and the attributions add up to the score difference within ~2% (median); 32 nodes cost a third more for
# >= 0.997, and 16 let 2.0's error reach 7% (median). tests/handler/test_explain.py checks completeness.
STEPS = 24
DIGITS = 10  # targets an "all" explanation covers (an 11-output model's "not a digit" is not explained)
BLANK = float(normalise(np.zeros(1, dtype=np.float32))[0])  # an empty (black) pixel on the model's input scale


def _nodes(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points in [0, 1] along the path and their quadrature weights (summing to 1)."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)  # on [-1, 1]
    return torch.tensor((nodes + 1) / 2, dtype=torch.float32), torch.tensor(weights / 2, dtype=torch.float32)


def integrated_gradients(
    model: nn.Module, inputs: torch.Tensor, *, targets: torch.Tensor, steps: int = STEPS
) -> torch.Tensor:
    """Attributions of model(inputs)[i, targets[i]] to each pixel of inputs[i], against the blank-slate baseline.

    inputs: (N, 1, 28, 28) normalised images; targets: (N,) class indices. Returns (N, 1, 28, 28) float32.
    The model must be in eval mode (batch norm with running statistics: the path points do not interact).
    """
    # One image's whole path per forward/backward: all N paths in one batch keep N * steps sets of activations
    # for the backward pass and measured twice as slow per image for N = 16 (memory-bound) as one image at a time.
    return torch.cat([_one(model, image, target, steps) for image, target in zip(inputs, targets, strict=True)])


def _one(model: nn.Module, image: torch.Tensor, target: torch.Tensor, steps: int) -> torch.Tensor:
    """(1, 28, 28) image -> (1, 1, 28, 28) attributions for class target."""
    alphas, weights = _nodes(steps)
    baseline = torch.full_like(image, BLANK)
    path = (baseline + alphas.view(-1, 1, 1, 1) * (image - baseline)).requires_grad_(True)  # (steps, 1, 28, 28)
    with torch.enable_grad():
        scores = model(path).float()[:, int(target)]  # (steps,)
        (gradients,) = torch.autograd.grad(scores.sum(), path)
    mean_gradient = (gradients * weights.view(-1, 1, 1, 1)).sum(0)  # (1, 28, 28)
    return ((image - baseline) * mean_gradient).detach().unsqueeze(0)


def integrated_gradients_all(model: nn.Module, image: torch.Tensor, *, steps: int = STEPS) -> torch.Tensor:
    """Attributions of every digit's score for one (1, 28, 28) image -> (10, 1, 28, 28) float32, in one pass: the path's
    forward is shared and each digit costs one backward through it: ~6x one target's cost, not 10x (measured
    2026-12-04, 24 steps); the same maps as integrated_gradients gives target by target."""
    alphas, weights = _nodes(steps)
    baseline = torch.full_like(image, BLANK)
    path = (baseline + alphas.view(-1, 1, 1, 1) * (image - baseline)).requires_grad_(True)  # (steps, 1, 28, 28)
    maps = []
    with torch.enable_grad():
        scores = model(path).float()[:, :DIGITS]  # (steps, 10)
        for digit in range(DIGITS):
            (gradients,) = torch.autograd.grad(scores[:, digit].sum(), path, retain_graph=digit < DIGITS - 1)
            maps.append((image - baseline) * (gradients * weights.view(-1, 1, 1, 1)).sum(0))  # (1, 28, 28)
    return torch.stack(maps).detach()


def scores_at(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """score(x) - score(baseline) for each image: what the attributions of integrated_gradients add up to."""
    with torch.inference_mode():
        stacked = torch.cat([inputs, torch.full_like(inputs, BLANK)])
        scores = model(stacked).float().gather(1, targets.repeat(2).view(-1, 1)).view(2, -1)
    return scores[0] - scores[1]


def as_rows(attributions: torch.Tensor, *, digits: int = 5) -> list[list[float]]:
    """One (1, 28, 28) or (28, 28) map -> 28 lists of 28 floats, rounded to `digits` significant digits (the JSON
    answer is ~4x smaller than with full float reprs; the map's use is a picture)."""
    return [[float(f"{value:.{digits}g}") for value in row] for row in attributions.reshape(28, 28).tolist()]
