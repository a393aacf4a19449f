"""Train the digit CNN on MNIST and write weights, metrics and plots.

    python -m training.train --data-dir DIR --out model_store/v1.0 [--epochs 4] [--seed 0]
    python -m training.train --data-dir DIR --out model_store/v2.0 --members 3 --pen-images 20000

Augmentation makes the model robust to canvas drawings, which after preprocessing still differ from MNIST in stroke
thickness, crispness and slant: per image we thin or thicken the stroke, sometimes binarise it, and apply a small
random rotation / scale / shear / shift. All of it runs batched on tensors at 2x resolution (56x56), so it costs
little next to the forward/backward pass on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from handler.model import ARCHITECTURE_FILE, DigitNet
from handler.preprocess import MNIST_MEAN, MNIST_STD, PreprocessError, prepare, prepare_image
from training import canvas, data


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 4
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    seed: int = 0
    threads: int = 2
    max_rotation_deg: float = 12.0
    scale_range: tuple[float, float] = (0.85, 1.15)
    max_shear: float = 0.15
    max_shift: float = 0.08  # fraction of the half-width (0.08 -> about 1 px at 28)
    binarise_p: float = 0.3
    # Pen-style copies (skeleton redrawn with a uniform round pen, then the real preprocessing) of this many training
    # digits, each used instead of its original with probability pen_p. Off for the shipped 1.0: 20,000 copies at
    # pen_p 0.5 gave 98.87% pen-style accuracy against 98.73% without (1,500 drawings, within noise) for +96 s.
    pen_images: int = 0
    pen_p: float = 0.5
    canvas_eval_count: int = 500  # test digits per style for the canvas-style evaluations
    # Independently trained networks averaged in one module (2.0: 3); member i uses seed + i.
    members: int = 1


def augment(x: torch.Tensor, *, generator: torch.Generator, cfg: TrainConfig) -> torch.Tensor:
    """(N, 1, 28, 28) in [0, 1] -> augmented (N, 1, 28, 28) in [0, 1]."""
    n = x.shape[0]
    big = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)  # (N, 1, 56, 56)
    crisp = (big > 0.35).float()
    binarise = torch.rand(n, 1, 1, 1, generator=generator) < cfg.binarise_p
    big = torch.where(binarise, crisp, big)
    # Stroke thickness: erode 1, keep, dilate 1 or 2 (at 56 px; half that at 28 px).
    variants = torch.stack(
        [
            -F.max_pool2d(-big, 3, stride=1, padding=1),
            big,
            F.max_pool2d(big, 3, stride=1, padding=1),
            F.max_pool2d(big, 5, stride=1, padding=2),
        ]
    )  # fmt: skip  (4, N, 1, 56, 56)
    choice = torch.multinomial(torch.tensor([0.2, 0.35, 0.3, 0.15]), n, replacement=True, generator=generator)
    big = variants[choice, torch.arange(n)]
    big = F.grid_sample(big, _affine_grid(n, generator=generator, cfg=cfg, size=big.shape), align_corners=False)
    small = F.avg_pool2d(big, 2).clamp(0, 1)  # area downsampling = anti-aliasing, back to 28x28
    # Preprocessing scales every drawing's darkest ink to 1; do the same here (thinning dims the strokes).
    return small / small.amax(dim=(2, 3), keepdim=True).clamp_min(1e-3)


def _affine_grid(n: int, *, generator: torch.Generator, cfg: TrainConfig, size: torch.Size) -> torch.Tensor:
    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    angle = uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg) * math.pi / 180
    scale = uniform(*cfg.scale_range)
    shear = uniform(-cfg.max_shear, cfg.max_shear)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale  # grid maps output -> input, hence 1/scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin + shear, uniform(-cfg.max_shift, cfg.max_shift)], dim=1),
            torch.stack([sin, cos, uniform(-cfg.max_shift, cfg.max_shift)], dim=1),
        ],
        dim=1,
    )  # fmt: skip  (N, 2, 3)
    return F.affine_grid(theta, list(size), align_corners=False)


def _pen_version(task: tuple[np.ndarray, int]) -> np.ndarray:
    digit, seed = task
    drawn = canvas.render_pen(digit, rng=np.random.default_rng(seed), style="white_on_black")
    return np.round(prepare_image(drawn).ink * 255).astype(np.uint8)


def pen_versions(images: np.ndarray, *, count: int, seed: int, processes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(indices, (count, 28, 28) uint8): pen-style redrawings of `count` random training digits, prepared for the model
    exactly as a canvas drawing would be."""
    indices = np.random.default_rng(seed).choice(len(images), size=min(count, len(images)), replace=False)
    tasks = [(images[i], seed * 1_000_003 + int(i)) for i in indices]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        drawn = pool.map(_pen_version, tasks, chunksize=256)
    return indices, np.stack(drawn)


def to_input(images: np.ndarray) -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N, 1, 28, 28) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images).copy()).float().div_(255).unsqueeze(1)


def normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - MNIST_MEAN) / MNIST_STD


@torch.inference_mode()
def predict(model: DigitNet, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """Class predictions for already normalised inputs (N, 1, 28, 28)."""
    model.eval()
    return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def confusion(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(10, 10) counts: row = true digit, column = predicted digit."""
    matrix = np.zeros((10, 10), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def canvas_accuracy(
    model: DigitNet, split: data.Split, *, count: int, seed: int, pen: bool = False
) -> dict[str, float]:
    """Accuracy per canvas style on MNIST test digits rendered as 280x280 drawings and run through preprocessing
    (pen=True: redrawn pen-style from their skeletons)."""
    results: dict[str, list[bool]] = {style: [] for style in canvas.STYLES}
    inputs, labels, styles = [], [], []
    drawings = canvas.pen_set if pen else canvas.canvas_set
    for png, label, style in drawings(split.images, split.labels, count=count, seed=seed):
        try:
            inputs.append(prepare(png).tensor())
        except PreprocessError:
            results[style].append(False)
            continue
        labels.append(label)
        styles.append(style)
    predicted = predict(model, torch.stack(inputs)).numpy()
    for style, label, guess in zip(styles, labels, predicted, strict=True):
        results[style].append(bool(label == guess))
    per_style = {style: float(np.mean(hits)) for style, hits in results.items()}
    per_style["all"] = float(np.mean([hit for hits in results.values() for hit in hits]))
    return per_style


def train(
    splits: dict[str, data.Split], cfg: TrainConfig, *, reuse: list[Path] = (), log=print
) -> tuple[DigitNet, dict]:
    """Train from scratch (cfg.members networks with seeds seed, seed+1, ...; member i < len(reuse) is loaded from
    reuse[i] instead of trained); return the model (an ensemble when members > 1) and its metrics."""
    torch.set_num_threads(cfg.threads)
    train_x, train_y = to_input(splits["train"].images), torch.from_numpy(splits["train"].labels)
    pen_row = torch.full((len(train_x),), -1, dtype=torch.long)  # training index -> row of its pen-style copy
    pen_x = torch.empty(0, 1, 28, 28)
    if cfg.pen_images and len(reuse) < cfg.members:
        started_pen = time.perf_counter()
        indices, drawn = pen_versions(splits["train"].images, count=cfg.pen_images, seed=cfg.seed)
        pen_row[torch.from_numpy(indices)] = torch.arange(len(indices))
        pen_x = to_input(drawn)
        log(f"{len(indices)} pen-style training copies in {time.perf_counter() - started_pen:.0f} s")
    test_x, test_y = normalise(to_input(splits["test"].images)), splits["test"].labels
    started = time.perf_counter()
    states, members, curve = [], [], []
    for index in range(cfg.members):
        seed = cfg.seed + index
        if index < len(reuse):
            state = torch.load(reuse[index], map_location="cpu", weights_only=True)
            member, member_curve, source = DigitNet(), [], str(reuse[index])
            member.load_state_dict(state)
            log(f"member {index}: weights reused from {source}")
        else:
            member, member_curve = _train_one(
                (train_x, train_y, pen_row, pen_x), test_x, test_y, cfg, seed=seed, log=log, offset=curve
            )
            state, source = member.state_dict(), None
        states.append(state)
        accuracy = float((predict(member, test_x).numpy() == test_y).mean())
        members.append({"seed": seed, "test_accuracy": accuracy, "reused_from": source})
        curve.extend(member_curve)
    model = DigitNet.assemble(states)
    metrics = _metrics(model, splits["test"], test_x, cfg, curve, train_seconds=time.perf_counter() - started)
    if cfg.members > 1:
        metrics["members"] = members
    return model, metrics


def _train_one(train_set, test_x, test_y, cfg: TrainConfig, *, seed: int, log, offset: list) -> tuple[DigitNet, list]:
    """One network trained with `seed`; its learning curve continues the time axis of the members before it."""
    train_x, train_y, pen_row, pen_x = train_set
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = DigitNet()
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(train_x) / cfg.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=cfg.lr, total_steps=steps)
    curve, started = [], time.perf_counter()
    base_seconds = offset[-1]["seconds"] if offset else 0.0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(len(train_x), generator=generator)
        losses = []
        bar = tqdm(range(0, len(order), cfg.batch_size), desc=f"seed {seed} epoch {epoch}/{cfg.epochs}", unit="batch")
        for start in bar:
            index = order[start : start + cfg.batch_size]
            x = train_x[index]
            rows = pen_row[index]
            use_pen = (rows >= 0) & (torch.rand(len(index), generator=generator) < cfg.pen_p)
            if use_pen.any():
                x = x.clone()
                x[use_pen] = pen_x[rows[use_pen]]
            x = normalise(augment(x, generator=generator, cfg=cfg))
            loss = F.cross_entropy(model(x), train_y[index], label_smoothing=cfg.label_smoothing)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        accuracy = float((predict(model, test_x).numpy() == test_y).mean())
        elapsed = base_seconds + time.perf_counter() - started
        curve.append(
            {
                "epoch": len(offset) + epoch,
                "seed": seed,
                "train_loss": float(np.mean(losses)),
                "test_accuracy": accuracy,
                "seconds": elapsed,
            }
        )
        mean_loss = np.mean(losses)
        log(f"seed {seed} epoch {epoch}: train loss {mean_loss:.4f}, test accuracy {accuracy:.4%}, {elapsed:.0f} s")
    return model, curve


def _metrics(model: DigitNet, test: data.Split, test_x: torch.Tensor, cfg: TrainConfig, curve: list, *, train_seconds):
    predicted = predict(model, test_x).numpy()
    matrix = confusion(test.labels, predicted)
    return {
        "test_accuracy": float((predicted == test.labels).mean()),
        "test_errors": int((predicted != test.labels).sum()),
        "per_digit_accuracy": {str(d): float(matrix[d, d] / matrix[d].sum()) for d in range(10)},
        "confusion_matrix": matrix.tolist(),
        "canvas_accuracy": canvas_accuracy(model, test, count=cfg.canvas_eval_count, seed=cfg.seed + 1),
        "pen_accuracy": canvas_accuracy(model, test, count=cfg.canvas_eval_count, seed=cfg.seed + 2, pen=True),
        "canvas_eval_images": cfg.canvas_eval_count * len(canvas.STYLES),
        "train_seconds": round(train_seconds, 1),
        "seconds_to_99_5": next((row["seconds"] for row in curve if row["test_accuracy"] >= 0.995), None),
        "parameters": sum(p.numel() for p in model.parameters()),
        "curve": curve,
        "config": asdict(cfg),
        "torch": torch.__version__,
    }


def save_weights(model: DigitNet, path: Path, *, half: bool = False) -> None:
    """The state dict, its float tensors as float16 when `half` (load_state_dict casts them back to the model's
    float32 parameters, so the handler needs nothing special). 2.0 is stored so: 2.8 MB instead of 5.6 MB, with the
    same predictions on 37,000 test images and drawings (docs/model-card.md)."""
    state = model.state_dict()
    if half:
        state = {key: value.half() if value.is_floating_point() else value for key, value in state.items()}
    torch.save(state, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="folder with the four MNIST IDX files (gz or raw)")
    parser.add_argument("--out", type=Path, required=True, help="folder for weights.pt, metrics.json and plots")
    parser.add_argument("--no-download", action="store_true", help="fail instead of downloading missing files")
    for field, default in asdict(TrainConfig()).items():
        if isinstance(default, int | float) and not isinstance(default, bool):
            parser.add_argument(f"--{field.replace('_', '-')}", type=type(default), default=default)
    parser.add_argument(
        "--half-weights",
        action="store_true",
        help="store the weights as float16 (half the size; they are float32 again once loaded)",
    )
    parser.add_argument(
        "--reuse-member",
        type=Path,
        action="append",
        default=[],
        metavar="WEIGHTS",
        help="use these single-network weights as the next member instead of training it (repeatable)",
    )
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}
    cfg = TrainConfig(**overrides)
    try:
        splits = data.load(args.data_dir, allow_download=not args.no_download)
    except data.DataError as exc:
        parser.exit(2, f"error: {exc}\n")
    if len(args.reuse_member) > cfg.members:
        parser.exit(2, f"error: {len(args.reuse_member)} --reuse-member for {cfg.members} member(s)\n")
    model, metrics = train(splits, cfg, reuse=args.reuse_member)
    args.out.mkdir(parents=True, exist_ok=True)
    save_weights(model, args.out / "weights.pt", half=args.half_weights)
    metrics["weights_dtype"] = "float16" if args.half_weights else "float32"
    architecture = args.out / ARCHITECTURE_FILE
    if cfg.members > 1:  # the handler passes these to DigitNet(); 1.0's architecture is the defaults
        architecture.write_text(json.dumps({"members": cfg.members}) + "\n")
    else:
        architecture.unlink(missing_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    from training import plots  # matplotlib only when writing plots

    plots.write(metrics, args.out)
    print(
        f"test accuracy {metrics['test_accuracy']:.4%} ({metrics['test_errors']} errors); "
        f"canvas-style accuracy {metrics['canvas_accuracy']['all']:.2%}; "
        f"pen-style accuracy {metrics['pen_accuracy']['all']:.2%}; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
