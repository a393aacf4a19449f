"""PNG plots of a training run (learning curve, confusion matrix), used by docs/model-card.md."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np


def learning_curve(metrics: dict, path: Path) -> None:
    """Train loss and test accuracy per epoch; one pair of lines per trained member of an ensemble."""
    curve = metrics["curve"]
    seeds = list(dict.fromkeys(row.get("seed", 0) for row in curve))
    fig, loss_axis = plt.subplots(figsize=(6, 3.5), dpi=100)
    accuracy_axis = loss_axis.twinx()
    markers = ["o", "^", "D", "v"]
    for index, seed in enumerate(seeds):
        rows = [row for row in curve if row.get("seed", 0) == seed]
        epochs = list(range(1, len(rows) + 1))
        marker = markers[index % len(markers)]
        label = f"seed {seed}" if len(seeds) > 1 else None
        loss_axis.plot(epochs, [row["train_loss"] for row in rows], f"{marker}-", color="tab:blue", label=label)
        accuracy_axis.plot(epochs, [100 * row["test_accuracy"] for row in rows], f"{marker}--", color="tab:green")
        loss_axis.set_xticks(epochs)
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("train loss (augmented, label-smoothed)", color="tab:blue")
    accuracy_axis.set_ylabel("MNIST test accuracy (%)", color="tab:green")
    if len(seeds) > 1:
        loss_axis.legend(loc="center right", fontsize=8, title="trained member", title_fontsize=8)
    title = f"Learning curve: {100 * metrics['test_accuracy']:.2f}% test accuracy"
    if "members" in metrics:
        title += f" (ensemble of {len(metrics['members'])})"
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def confusion_matrix(metrics: dict, path: Path) -> None:
    matrix = np.array(metrics["confusion_matrix"])
    off_diagonal = matrix - np.diag(np.diag(matrix))
    fig, axis = plt.subplots(figsize=(5.5, 5), dpi=100)
    axis.imshow(off_diagonal, cmap="Reds")
    for true in range(10):
        for guess in range(10):
            if matrix[true, guess]:
                color = "black" if true != guess else "tab:green"
                axis.text(guess, true, str(matrix[true, guess]), ha="center", va="center", fontsize=7, color=color)
    axis.set_xticks(range(10))
    axis.set_yticks(range(10))
    axis.set_xlabel("predicted digit")
    axis.set_ylabel("true digit")
    axis.set_title(f"MNIST test confusion matrix ({metrics['test_errors']} errors in {matrix.sum():,})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write(metrics: dict, folder: Path) -> None:
    """learning_curve.png and confusion_matrix.png in folder."""
    learning_curve(metrics, folder / "learning_curve.png")
    confusion_matrix(metrics, folder / "confusion_matrix.png")
