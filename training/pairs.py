"""Number mode's pair reader: a second network that reads two touching digits as one pair.

    python -m training.pairs data --out var/pairs/data-1.npz --count 16000 --seed 1     # (and --seed 2: 32,000)
    python -m training.pairs data --out var/pairs/data-4.npz --seed 4 --heights 40 140  # a thicker relative pen
    python -m training.pairs train --data var/pairs/data-1.npz var/pairs/data-2.npz --out var/pairs/weights.pt
    python -m training.pairs measure --weights var/pairs/weights.pt --set heldout|training|unipen|unipen-heldout \
        [--half a|b] [--numbers-seed N]
    python -m training.pairs export --weights var/pairs/weights.pt --out model_store/v4.0/pairs.pt

Why: on numbers composed from the held-out pendigits writers, most segmentation errors are touching pairs that no cut
separates (one digit's stroke runs deep into the other's box); 4.0 reads such a pair as one digit, or the cut halves
each keep a piece of the neighbour. Reading the whole part as a *pair* needs no cut.

- **data**: drawings composed from the *training* writers (pendigits training writers and UNIPEN's training files,
  as training/segmentation_eval.py composes numbers on the 840x280 slate: the page's pen widths, slant, wavering
  baseline):
  70% two digits (70% of them touching), 15% one digit and 15% three digits with every pair touching with p = 0.7;
  the drawing goes through the handler's own decoding and ink map, and its whole ink becomes a 28x56 pair field
  (handler/segmentation.py `pair_field`). Label: the pair (10 * first + second), or NOT_PAIR for one or three digits.
- **train**: handler/model.py `pair_net` (DigitNet's two stages of convolutions on the 28x56 field, 256 hidden units,
  101 outputs), AdamW with a one-cycle schedule, label smoothing 0.05, shifts of up to 2 px.
- **measure**: numbers read as the handler reads them (the same segmentation, 4.0's logits, the shipped costs),
  without the pair reader and with it for each setting of the costs' pair_width, pair_min and pair_bonus
  (handler/segmentation.py `choose`); printed: exact numbers for each, and the numbers that changed.
- **export**: the weights as float16 (half the size; the handler reads them back as float32) beside a version's
  weights, where training/archive.py puts them into the archive.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from handler import segmentation
from handler.model import pair_net
from handler.preprocess import decode, ink_map, normalise
from handler.segmentation import NOT_PAIR, pair_field
from training import canvas, pendigits, segmentation_eval

ROOT = Path(__file__).resolve().parent.parent


def drawing_spec(
    rng: np.random.Generator, heights: tuple[int, int] = segmentation_eval.SPEC.heights
) -> segmentation_eval.NumberSpec:
    """What the next training drawing is: two digits (70%), one (15%) or three (15%), `heights` px high (lower
    heights draw with a thicker pen relative to the digit: the page's pen widths are in px)."""
    kind = rng.random()
    if kind < 0.7:
        return segmentation_eval.NumberSpec(lengths=(2, 2), touching=0.7, heights=heights)
    if kind < 0.85:
        return segmentation_eval.NumberSpec(lengths=(1, 1), touching=0.0, heights=heights)
    return segmentation_eval.NumberSpec(lengths=(3, 3), touching=0.7, per_pair=True, heights=heights)


def label_of(number: str) -> int:
    return int(number) if len(number) == 2 else NOT_PAIR


def data(
    pool, *, count: int, seed: int, heights: tuple[int, int] = segmentation_eval.SPEC.heights
) -> tuple[np.ndarray, np.ndarray]:
    """(count, 28, 56) uint8 pair fields and their labels, from drawings composed out of pool's writers."""
    rng = np.random.default_rng(seed)
    fields, labels = [], []
    for _ in range(count):
        number = segmentation_eval.compose(pool, rng=rng, spec=drawing_spec(rng, heights))
        png = canvas.to_png(number.image(str(rng.choice(canvas.STYLES))))
        ink, _ = ink_map(decode(png))
        fields.append((pair_field(ink) * 255).astype(np.uint8))
        labels.append(label_of(number.label))
    return np.stack(fields), np.array(labels, dtype=np.int64)


def train(fields: np.ndarray, labels: np.ndarray, *, epochs: int, seed: int = 0, batch: int = 128, lr: float = 2e-3,
          log=print):  # fmt: skip
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = torch.from_numpy(normalise(fields.astype(np.float32) / 255)).unsqueeze(1)
    targets = torch.from_numpy(labels).long()
    net = pair_net()
    steps_per_epoch = len(targets) // batch
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=epochs * steps_per_epoch)
    net.train()
    started = time.perf_counter()
    for epoch in range(epochs):
        order = torch.from_numpy(rng.permutation(len(targets)))
        right = 0
        for step in range(steps_per_epoch):
            index = order[step * batch : (step + 1) * batch]
            shift = (int(rng.integers(-1, 2)), int(rng.integers(-2, 3)))  # rows, columns
            x = torch.roll(inputs[index], shifts=shift, dims=(2, 3))
            logits = net(x)
            loss = F.cross_entropy(logits, targets[index], label_smoothing=0.05)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            right += int((logits.argmax(1) == targets[index]).sum())
        log(f"epoch {epoch}: training accuracy {right / (steps_per_epoch * batch):.4f}, "
            f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    return net.eval()


def measure(cases, reader: segmentation_eval.InProcessReader, *, settings: list[tuple[float, float, float]]) -> dict:
    """Exact numbers without the pair reader ("base") and with it for each (pair_width, pair_min, pair_bonus)
    setting of the shipped costs; the numbers each setting changed."""
    smallest = min(width for width, _, _ in settings)
    prepared = []
    for case in cases:
        plan = segmentation.prepare_number(case.png)
        logits = reader.logits(plan.tensors()) if plan.candidates else np.zeros((0, 10))
        prepared.append((case.number.label, plan, logits, reader.pair_log_probs(plan, width=smallest)))
    base = [segmentation.reading(plan, logits)["number"] for _, plan, logits, _ in prepared]
    result: dict = {"numbers": len(cases), "base": sum(r == p[0] for r, p in zip(base, prepared, strict=True))}
    for width, minimum, bonus in settings:
        costs = dataclasses.replace(segmentation.COSTS, pair_width=width, pair_min=minimum, pair_bonus=bonus)
        got = [segmentation.reading(plan, logits, pairs=pairs, costs=costs)["number"]
               for _, plan, logits, pairs in prepared]  # fmt: skip
        key = f"pair_width {width}, pair_min {minimum}, pair_bonus {bonus}"
        result[key] = sum(g == p[0] for g, p in zip(got, prepared, strict=True))
        result[key + ": changed"] = [
            f"{p[0]}: {b} -> {g}" for g, b, p in zip(got, base, prepared, strict=True) if g != b
        ]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("data", "train", "measure", "export"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--count", type=int, default=16000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--heights",
        type=int,
        nargs=2,
        default=list(segmentation_eval.SPEC.heights),
        help="data: the digits' height on the slate, px (lower: a thicker pen relative to the digit)",
    )
    parser.add_argument("--data", type=Path, nargs="+")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--weights", type=Path, default=ROOT / "var" / "pairs" / "weights.pt")
    parser.add_argument("--set", default="heldout", choices=segmentation_eval.SETS)
    parser.add_argument("--half", choices=("a", "b"), default=None)
    parser.add_argument("--numbers-seed", type=int, default=2026, help="measure: the composed numbers' seed")
    parser.add_argument("--pair-width", type=float, nargs="+", default=[0.7, 0.8])
    parser.add_argument("--pair-min", type=float, nargs="+", default=[0.0, 0.8])
    parser.add_argument("--bonus", type=float, nargs="+", default=[-1.0, -0.5, 0.0])
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.command == "data":
        training, _ = pendigits.split_by_writer(pendigits.load())
        fields, labels = data(
            training + segmentation_eval.load_unipen_digits(),
            count=args.count,
            seed=args.seed,
            heights=tuple(args.heights),
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.out, fields=fields, labels=labels)
        print(f"wrote {len(labels)} fields ({int((labels == NOT_PAIR).sum())} not a pair) to {args.out}")
    elif args.command == "train":
        loaded = [np.load(path) for path in args.data]
        fields = np.concatenate([z["fields"] for z in loaded])
        labels = np.concatenate([z["labels"] for z in loaded])
        net = train(fields, labels, epochs=args.epochs)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), args.out)
        print(f"wrote {args.out}")
    elif args.command == "export":
        state = torch.load(args.weights, map_location="cpu", weights_only=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        torch.save({name: value.half() if value.is_floating_point() else value for name, value in state.items()},
                   args.out)  # fmt: skip
        print(f"wrote {args.out}")
    else:
        from handler.model import for_inference, load_pair_net

        net = load_pair_net(args.weights)
        if net is None:
            parser.exit(2, f"error: no pair reader's weights at {args.weights}\n")
        cases = segmentation_eval._cases(
            argparse.Namespace(set=args.set, half=args.half, pendigits=None, unipen_digits=None,
                               unipen_numbers=None, count=500, seed=args.numbers_seed),
            spec=segmentation_eval.SPEC,
        )  # fmt: skip
        weights = ROOT / "model_store" / "v4.0" / "weights.pt"
        reader = dataclasses.replace(segmentation_eval.InProcessReader.load(weights), pairs=for_inference(net))
        settings = [(w, m, b) for w in args.pair_width for m in args.pair_min for b in args.bonus]
        for key, value in measure(cases, reader, settings=settings).items():
            print(f"{key}: {value}" if not isinstance(value, list) else f"{key}: {', '.join(value) or '-'}")


if __name__ == "__main__":
    main()
