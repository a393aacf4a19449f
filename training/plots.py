"""PNG plots of a training run (learning curve, confusion matrix), used by the README's model card."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np


def learning_curve(metrics: dict, path: Path) -> None:
    curve = metrics["curve"]
    epochs = [row["epoch"] for row in curve]
    fig, loss_axis = plt.subplots(figsize=(6, 3.5), dpi=100)
    loss_axis.plot(epochs, [row["train_loss"] for row in curve], "o-", color="tab:blue", label="train loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("train loss (augmented, label-smoothed)", color="tab:blue")
    accuracy_axis = loss_axis.twinx()
    accuracy_axis.plot(epochs, [100 * row["test_accuracy"] for row in curve], "s-", color="tab:green")
    accuracy_axis.set_ylabel("MNIST test accuracy (%)", color="tab:green")
    loss_axis.set_xticks(epochs)
    fig.suptitle(f"Learning curve: {100 * metrics['test_accuracy']:.2f}% test accuracy")
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
