"""The digit CNN: the one model definition, used by training and by the TorchServe archive.

TorchServe's BaseHandler imports this file from the .mar, requires it to define exactly one class (any class, so no
config dataclass here) and builds it with no arguments: the keyword defaults are the shipped architecture.
"""

import torch
from torch import nn


def _conv(cin: int, cout: int) -> list[nn.Module]:
    # bias is redundant before batch norm
    return [nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DigitNet(nn.Module):
    """Two stages of two 3x3 convolutions with batch norm, each followed by 2x2 max pooling, then two linear layers."""

    def __init__(self, *, channels: tuple[int, int] = (32, 64), hidden: int = 128, dropout: float = 0.3):
        super().__init__()
        c1, c2 = channels  # conv widths of the two stages
        self.features = nn.Sequential(
            *_conv(1, c1), *_conv(c1, c1), nn.MaxPool2d(2),  # (N, c1, 14, 14)
            *_conv(c1, c2), *_conv(c2, c2), nn.MaxPool2d(2),  # (N, c2, 7, 7)
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) normalised images -> (N, 10) logits."""
        return self.classifier(self.features(x))
