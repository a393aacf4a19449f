"""The digit CNN: the one model definition, used by training and by the TorchServe archives.

TorchServe's BaseHandler imports this file from the .mar and requires it to define exactly one class (any class, so no
config dataclass here). The keyword defaults are version 1.0's architecture; an archive whose version needs other
arguments carries them in `architecture.json`, which the handler passes to the constructor.

`classes=11` adds an output "not a digit" at index 10 (trained by the retraining loop on
training/nondigits.py): the handler then reads digit probabilities as the softmax over the first 10 outputs.

`refusal_head=H` adds "not a digit" as a small head of H hidden units on the convolutional features (both
stages), beside the digit classifier, trained with the rest of the network frozen (training/refusal_head.py), so the
digit outputs and MNIST stay exactly the base network's. Its output r is the 11th logit as r + logsumexp(the 10
digit logits): the handler's reading gives softmax over the first 10 = the digits' probabilities, unchanged, and
softmax over all 11 at index 10 = sigmoid(r) = P(not a digit). Weights without the head load as before (the keyword
defaults to 0).

Version 2.0 is an ensemble in one module: `members=3` holds three independently trained 1.0-style networks and
averages their log-probabilities. Each member is itself a `DigitNet`, so a member's weights are exactly a 1.0
state dict and an ensemble can be assembled from separately trained members (`DigitNet.assemble`).
"""

import copy
import itertools
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

# The constructor's keyword arguments when a version's are not the defaults: written by training, read by the handler
# from the archive. Here, not in the handler, so that training reads it without TorchServe's `ts` package.
ARCHITECTURE_FILE = "architecture.json"
STAGE_ONE_LAYERS = 7  # conv-bn-relu twice and the pooling: the first stage's modules in DigitNet.features
# Number mode's pair reader (training/pairs.py): an archive that carries this file reads two touching digits as one
# pair (handler/segmentation.py: its input field, its outputs).
PAIRS_FILE = "pairs.pt"


def _conv(cin: int, cout: int) -> list[nn.Module]:
    # bias is redundant before batch norm
    return [nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DigitNet(nn.Module):
    """Two stages of two 3x3 convolutions with batch norm, each followed by 2x2 max pooling, then two linear layers;
    or (members > 1) the average of that many such networks."""

    def __init__(
        self,
        *,
        channels: tuple[int, int] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.3,
        members: int = 1,
        classes: int = 10,
        refusal_head: int = 0,
    ):
        super().__init__()
        if members < 1:
            raise ValueError(f"members must be >= 1, not {members}")
        if refusal_head and (members > 1 or classes != 10):
            raise ValueError("a refusal head sits on one 10-digit network (members=1, classes=10)")
        self.members = None
        self.refusal = None
        if members > 1:
            c1, c2 = channels
            self.members = nn.ModuleList(
                DigitNet(channels=(c1, c2), hidden=hidden, dropout=dropout, classes=classes) for _ in range(members)
            )
            return
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
            nn.Linear(hidden, classes),
        )
        if refusal_head:
            # On both stages' features: the first stage's (local strokes, pooled to 7x7) still tell a smiley's eyes
            # or a spiral's inner turns from a 0's plain loop, which the second stage, trained to read digits, has
            # learned to ignore.
            self.refusal = nn.Sequential(
                # two 3x3 convolutions of its own: what sets a shape apart from a digit (a mark inside a loop, a
                # zigzag's corners) is a local pattern the digit features were never asked to name
                nn.Conv2d(c1 + c2, 48, kernel_size=3, padding=1),  # (N, 48, 7, 7)
                nn.ReLU(),
                nn.Conv2d(48, 32, kernel_size=3, padding=1),  # (N, 32, 7, 7)
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(32 * 7 * 7, refusal_head),
                nn.ReLU(),
                nn.Linear(refusal_head, 1),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) normalised images -> (N, classes) logits, (N, 11) with a refusal head (an ensemble: mean
        log-probabilities, which softmax turns into the normalised geometric mean of the members' probabilities)."""
        if self.members is not None:
            return torch.stack([torch.log_softmax(member(x), dim=1) for member in self.members]).mean(0)
        if self.refusal is None:
            return self.classifier(self.features(x))
        first, second = self.stages(x)
        logits = self.classifier(second)  # (N, 10)
        r = self.refusal(self.refusal_input(first, second))  # (N, 1): the log-odds of "not a digit"
        return torch.cat([logits, r + torch.logsumexp(logits, dim=1, keepdim=True)], dim=1)  # (N, 11)

    def stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two stages' feature maps: (N, c1, 14, 14) and (N, c2, 7, 7) (self.features is both in a row)."""
        split = STAGE_ONE_LAYERS
        first = self.features[:split](x)
        return first, self.features[split:](first)

    @staticmethod
    def refusal_input(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """What the refusal head reads: both stages at 7x7, (N, c1 + c2, 7, 7)."""
        return torch.cat([F.max_pool2d(first, 2), second], dim=1)

    @staticmethod
    def digit_logits(logits: torch.Tensor) -> torch.Tensor:
        """(N, classes) -> (N, 10): the digits' logits, whose softmax is the digit probabilities renormalised without
        "not a digit" (a no-op for a 10-output network)."""
        return logits[:, :10]

    @staticmethod
    def assemble(member_states: list[dict], **kwargs) -> "DigitNet":
        """An ensemble whose members carry the given single-network state dicts."""
        model = DigitNet(members=len(member_states), **kwargs)
        if model.members is None:
            model.load_state_dict(member_states[0])
        else:
            for member, state in zip(model.members, member_states, strict=True):
                member.load_state_dict(state)
        return model


def for_inference(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """A forward pass for inference only, on a copy of `model` in eval mode: each batch norm folded into the
    convolution before it, and the weights and inputs in channels-last layout (oneDNN's fast convolutions). ~40% less
    time per batch on one CPU core (docs/performance.md); the same logits to ~1e-5. The model itself is untouched
    (explanations need its gradients)."""
    model.eval()
    fast = copy.deepcopy(model)
    for module in fast.modules():
        if isinstance(module, nn.Sequential):
            layers = list(module)
            for index, (layer, after) in enumerate(itertools.pairwise(layers)):
                if isinstance(layer, nn.Conv2d) and isinstance(after, nn.BatchNorm2d):
                    module[index] = fuse_conv_bn_eval(layer, after)
                    module[index + 1] = nn.Identity()  # the indices stay (DigitNet.stages slices features)
    fast = fast.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # (torch documents it; its stubs lack it)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return fast(x.contiguous(memory_format=torch.channels_last))

    return forward


def pair_net(*, channels: tuple[int, int] = (32, 64), hidden: int = 256, outputs: int = 101) -> nn.Sequential:
    """The pair reader: DigitNet's two stages of convolutions on a (N, 1, 28, 56) field, then `hidden` units and
    `outputs` logits: the pair 10 * first + second, or segmentation.NOT_PAIR (a function, not a class: TorchServe
    wants one class in this file)."""
    c1, c2 = channels
    return nn.Sequential(
        *_conv(1, c1), *_conv(c1, c1), nn.MaxPool2d(2), *_conv(c1, c2), *_conv(c2, c2), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * 7 * 14, hidden), nn.ReLU(inplace=True), nn.Dropout(0.3),
        nn.Linear(hidden, outputs),
    )  # fmt: skip


def load_pair_net(path: Path) -> nn.Sequential | None:
    """The pair reader whose weights are at `path` (kept as float16), in eval mode; None when there is no file."""
    if not path.exists():
        return None
    net = pair_net()
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict({name: value.float() if value.is_floating_point() else value for name, value in state.items()})
    return net.eval()
