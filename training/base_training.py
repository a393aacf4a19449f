"""Version 4.0's base training: one DigitNet that reads MNIST and the handwriting of many writers, not 30.

    python -m training.base_training --data-dir MNIST_DIR --pendigits FILE --unipen FILE --out var/v4/base
    python -m training.base_training --data-dir MNIST_DIR --pendigits FILE --unipen FILE \
        --measure model_store/v3.0 var/v4/base

(`make train-v4` runs the first with the Makefile's data paths, then the refusal head.) Why a base training and not
`make retrain`: 3.0 learned the 30 pendigits writers through the feedback loop and read a second population (UNIPEN, ~17
sites) only 0.17 points better than 1.0. What it lacked is the variety of writers and styles, which the loop's feedback
cannot supply yet. So the base version learns, besides MNIST:

- the pendigits *training* writers (pendigits.split_by_writer: writers 5, 10, 15, 20, 25, 30 are never trained on);
- the UNIPEN *training* files (unipen.split_by_file: 60 whole session files are never trained on);
- each of those digits drawn as slate drawings: as written, and with stroke-level augmentation (training/strokes.py:
  slant, rotation, aspect, elastic, speed, tremor; pen width and size from the renderer);
- the styles the data lacks (strokes.styled_digits: slashed zeros, crossed 7s and flagged 1s made from the training
  digits' own strokes, open and closed 4s, 9s with straight and curved tails);

all prepared by the handler's own preprocessing (handler/preprocess.prepare), with MNIST as the handler serves it,
exactly as training/finetune.py does (its training loop: batches mixed from every source, AdamW, cosine decay, the
weights' moving average). The last 5,000 MNIST training digits are kept out, as `make retrain --negatives` keeps
them: the refusal head's threshold is limited on them (training/refusal_head.py).

Measured in-process, every version the same way: MNIST test as served; the held-out pendigits writers drawn in every
export style (the same drawings as training.finetune's "slate" and "stress" checks); the held-out UNIPEN files drawn
in every export style; per digit, per style, per writer or site, and the most frequent confusions.

Rendered and prepared arrays are kept under var/ (`--cache`); a second run with the same data and seeds renders
nothing. Weights go to `--out` (var/, never model_store/: a version ships through the gate).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from handler.model import DigitNet
from training import data, finetune, pendigits, strokes, unipen
from training.train import save_weights, to_input

ROOT = Path(__file__).resolve().parent.parent
# The validation drawings depend only on these seeds, never on the training seed: every model meets the same ones.
EVAL_SEED, STRESS_SEED = 2026, 2027  # training.finetune's "slate" and "stress" checks use the same


@dataclass(frozen=True)
class BaseConfig:
    copies: int = 6  # renderings of each training digit with an augmented trajectory (random export style)
    clean_copies: int = 2  # renderings of each training digit as written
    styled: int = 6000  # digits in the styles the data lacks (strokes.styled_digits), each rendered once
    pen_batch: int = 56  # per step, from the pen drawings (clean and augmented)
    styled_batch: int = 8  # per step, from the styled digits
    mnist_keep_out: int = 5000  # the last MNIST training digits, never trained on (the refusal head's threshold)
    seed: int = 0
    # The loop's settings (training/finetune.py): MNIST as served, 96 digits a step beside the drawings; from 1.0's
    # weights (None: from scratch).
    loop: finetune.FinetuneConfig = field(
        default_factory=lambda: finetune.FinetuneConfig(steps=3000, mnist_batch=96, threads=1, processes=1)
    )


@dataclass(frozen=True)
class Prepared:
    """Drawings as the model sees them, with where each came from."""

    images: np.ndarray  # (N, 28, 28) uint8, the handler's preprocessing
    labels: np.ndarray  # (N,) int64
    groups: np.ndarray  # (N,) str: the writer, the UNIPEN file, or the style
    styles: np.ndarray  # (N,) str: the export style

    def __len__(self) -> int:
        return len(self.labels)


def prepared_renderings(digits, *, count: int, seed: int, all_styles: bool, processes: int = 1, **kwargs) -> Prepared:
    """Slate drawings of pen digits (pendigits.renderings: anything with label, writer and strokes), prepared."""
    drawn = pendigits.renderings(digits, count=count, seed=seed, all_styles=all_styles, processes=processes, **kwargs)
    images, kept = finetune.prepare_all([png for png, *_ in drawn], processes=processes)
    column = np.array([(label, str(writer), style) for _, label, writer, style in drawn], dtype=object)[kept]
    return Prepared(images, column[:, 0].astype(np.int64), column[:, 1].astype(str), column[:, 2].astype(str))


def augmented_renderings(digits, *, copies: int, seed: int, processes: int = 1) -> Prepared:
    """`copies` augmented trajectories of each digit, each drawn once in a random export style."""
    return prepared_renderings(
        strokes.augmented(digits, copies=copies, seed=seed),
        count=1,
        seed=seed + 1,
        all_styles=False,
        processes=processes,
    )


def styled_renderings(digits, *, count: int, seed: int, processes: int = 1) -> Prepared:
    """`count` digits in the missing styles, made from these digits' strokes, augmented, drawn once each."""
    made = strokes.augmented(strokes.styled_digits(digits, count=count, seed=seed), copies=1, seed=seed)
    return prepared_renderings(made, count=1, seed=seed + 1, all_styles=False, processes=processes)


def concat(*parts: Prepared) -> Prepared:
    return Prepared(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("images", "labels", "groups", "styles")))


@dataclass(frozen=True)
class Writers:
    """The real pen digits, split once: training writers and files, and the held-out ones."""

    pendigits_train: list
    pendigits_heldout: list
    unipen_train: list
    unipen_heldout: list

    @classmethod
    def load(cls, *, pendigits_file: Path | None, unipen_file: Path | None) -> Writers:
        pen_train, pen_held = pendigits.split_by_writer(pendigits.load(pendigits_file))
        uni_train, uni_held = unipen.split_by_file(unipen.load(unipen_file))
        return cls(pen_train, pen_held, uni_train, uni_held)

    @property
    def train(self) -> list:
        return self.pendigits_train + self.unipen_train


def training_drawings(writers: Writers, cfg: BaseConfig, *, cache: Path) -> dict[str, Prepared]:
    """The "pen" drawings: the training digits as written and augmented; "styled": the missing styles. Cached."""
    processes = cfg.loop.processes
    clean = cached(
        cache,
        prepared_renderings,
        writers.train,
        count=cfg.clean_copies,
        seed=cfg.seed + 1,
        all_styles=False,
        processes=processes,
    )
    varied = cached(
        cache, augmented_renderings, writers.train, copies=cfg.copies, seed=cfg.seed + 2, processes=processes
    )
    styled = cached(cache, styled_renderings, writers.train, count=cfg.styled, seed=cfg.seed + 3, processes=processes)
    return {"pen": concat(clean, varied), "styled": styled}


def evaluation_drawings(writers: Writers, *, cache: Path, processes: int = 1) -> dict[str, Prepared]:
    """The held-out writers' digits in every export style: pendigits (2 drawings per digit and style, and 1 under
    the stress spec: any pen width on any size) and UNIPEN (1 per digit and style). Cached."""
    draw = dict(all_styles=True, processes=processes)
    pen, uni = writers.pendigits_heldout, writers.unipen_heldout
    return {
        "pendigits": cached(cache, prepared_renderings, pen, count=2, seed=EVAL_SEED, **draw),
        "pendigits_stress": cached(
            cache, prepared_renderings, pen, count=1, seed=STRESS_SEED, spec=pendigits.STRESS, **draw
        ),
        "unipen": cached(cache, prepared_renderings, uni, count=1, seed=EVAL_SEED, **draw),
    }


def cached(folder: Path, make, digits, **kwargs) -> Prepared:
    """make(digits, **kwargs), kept in `folder` (var/, never committed). The key: the function, the digits' count
    and writers (pendigits' are numbers, UNIPEN's file names) and every argument but the process count."""
    key = {k: v for k, v in kwargs.items() if k != "processes"}
    writers = sorted({str(d.writer) for d in digits})
    name = hashlib.sha256(repr((make.__name__, len(digits), writers, sorted(key.items()))).encode()).hexdigest()
    path = folder / f"{make.__name__}-{name[:16]}.npz"
    if path.exists():
        with np.load(path) as saved:
            return Prepared(**{f: saved[f] for f in Prepared.__dataclass_fields__})
    result = make(digits, **kwargs)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **asdict(result))
    return result


def mnist_served(mnist: dict[str, data.Split], *, cache: Path, processes: int = 1) -> dict[str, np.ndarray]:
    """MNIST training and test digits as the handler serves them (finetune.mnist_as_served), cached: a minute each."""
    path = cache / "mnist-as-served.npz"
    if path.exists():
        with np.load(path) as saved:
            return {"train": saved["train"], "test": saved["test"]}
    served = {name: finetune.mnist_as_served(mnist[name], processes=processes) for name in ("train", "test")}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **served)
    return served


# ---- measuring ------------------------------------------------------------------------------------------------------


def measure(model: DigitNet, sets: dict[str, Prepared]) -> dict:
    """Per set: accuracy, per digit, per export style, the five weakest writers (or files), per UNIPEN site, and the
    most frequent confusions."""
    report = {}
    for name, drawn in sets.items():
        figures = finetune.evaluate(model, drawn.images, drawn.labels)
        predicted = figures.pop("predicted")
        if len(set(drawn.styles.tolist())) > 1:
            figures["per_style"] = finetune.accuracy_by(predicted, drawn.labels, drawn.styles)
        if len(set(drawn.groups.tolist())) > 1:
            groups = finetune.accuracy_by(predicted, drawn.labels, drawn.groups)
            figures["weakest_groups"] = dict(sorted(groups.items(), key=lambda kv: kv[1])[:5])
            figures["groups"] = len(groups)
        if name == "unipen":
            sites = np.array([group.split("/")[2] for group in drawn.groups])  # data/1a/<site>/...
            figures["per_site"] = finetune.accuracy_by(predicted, drawn.labels, sites)
        report[name] = figures
    return report


def checks(writers: Writers, mnist: dict[str, data.Split], *, cache: Path, processes: int = 1) -> dict[str, Prepared]:
    """Every set a version is measured on, MNIST test as served first."""
    test = mnist_served(mnist, cache=cache, processes=processes)["test"]
    labels = mnist["test"].labels
    none = np.full(len(labels), "", dtype=str)
    return {
        "mnist_test_as_served": Prepared(test, labels, none, none),
        **evaluation_drawings(writers, cache=cache, processes=processes),
    }


def summary(report: dict) -> str:
    parts = []
    for name, figures in report.items():
        text = f"{name} {figures['accuracy']:.2%} ({figures['errors']}/{figures['count']})"
        if name != "mnist_test_as_served":
            text += f" [{', '.join(figures['top_confusions'][:4])}]"
        parts.append(text)
    return "; ".join(parts)


# ---- training -------------------------------------------------------------------------------------------------------


def train(
    mnist: dict[str, data.Split], writers: Writers, cfg: BaseConfig, *, cache: Path, log=print
) -> tuple[DigitNet, dict]:
    """The base network and its training figures (what it learned from, time)."""
    torch.set_num_threads(cfg.loop.threads)
    started = time.perf_counter()
    drawings = training_drawings(writers, cfg, cache=cache)
    served = mnist_served(mnist, cache=cache, processes=cfg.loop.processes)["train"]
    cut = len(served) - cfg.mnist_keep_out
    log(
        f"data ready in {time.perf_counter() - started:.0f} s: {cut} MNIST digits, {len(drawings['pen'])} pen "
        f"drawings, {len(drawings['styled'])} styled"
    )
    sources = [
        (to_input(served[:cut]), torch.from_numpy(mnist["train"].labels[:cut]), cfg.loop.mnist_batch),
        (to_input(drawings["pen"].images), torch.from_numpy(drawings["pen"].labels), cfg.pen_batch),
    ]
    if cfg.styled_batch and len(drawings["styled"]):
        styled = drawings["styled"]
        sources.append((to_input(styled.images), torch.from_numpy(styled.labels), cfg.styled_batch))
    model = finetune.start_model(cfg.loop, classes=10)
    trained = time.perf_counter()
    # finetune's loop, not a copy of it: the same batches-from-every-source recipe that made 3.0
    model, curve = finetune._train_loop(model, sources, cfg.loop, log=log)
    figures = {
        "train_seconds": round(time.perf_counter() - trained, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "learned_from": {
            "mnist": cut,
            "pendigits_writers": sorted({d.writer for d in writers.pendigits_train}),
            "unipen_files": len({d.writer for d in writers.unipen_train}),
            "pen_digits": len(writers.train),
            "pen_drawings": len(drawings["pen"]),
            "styled_drawings": len(drawings["styled"]),
        },
        "curve": curve,
        "config": asdict(cfg),
        "torch": torch.__version__,
    }
    return model, figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="the four MNIST IDX files")
    parser.add_argument("--pendigits", type=Path, default=None, help="the pendigits file (default: $PENDIGITS_FILE)")
    parser.add_argument("--unipen", type=Path, default=None, help="the UNIPEN digits file (default: $UNIPEN_FILE)")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "v4" / "base")
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "v4-cache", help="rendered drawings kept here")
    parser.add_argument("--measure", type=Path, nargs="*", help="only measure these version folders")
    for name in ("copies", "clean_copies", "styled", "pen_batch", "styled_batch", "seed"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(BaseConfig(), name))
    for name in ("steps", "mnist_batch", "threads", "processes", "warmup_steps"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(BaseConfig().loop, name))
    parser.add_argument("--lr", type=float, default=BaseConfig().loop.lr)
    parser.add_argument("--base-weights", default=BaseConfig().loop.base_weights, help="'none': from scratch")
    args = parser.parse_args(argv)
    base = None if str(args.base_weights).lower() == "none" else args.base_weights
    loop = replace(
        BaseConfig().loop,
        steps=args.steps,
        mnist_batch=args.mnist_batch,
        threads=args.threads,
        processes=args.processes,
        warmup_steps=args.warmup_steps,
        lr=args.lr,
        base_weights=base,
        seed=args.seed,
    )
    cfg = BaseConfig(
        copies=args.copies,
        clean_copies=args.clean_copies,
        styled=args.styled,
        pen_batch=args.pen_batch,
        styled_batch=args.styled_batch,
        seed=args.seed,
        loop=loop,
    )
    torch.set_num_threads(cfg.loop.threads)
    try:
        mnist = data.load(args.data_dir, allow_download=False)
        writers = Writers.load(pendigits_file=args.pendigits, unipen_file=args.unipen)
    except (data.DataError, pendigits.PendigitsError, unipen.UnipenError) as exc:
        parser.exit(2, f"error: {exc}\n")
    sets = checks(writers, mnist, cache=args.cache, processes=cfg.loop.processes)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.measure:
        reports = {}
        for folder in args.measure:
            reports[str(folder)] = report = measure(finetune.load_model(folder), sets)
            print(f"{folder}: {summary(report)}")
        (args.out / "measure.json").write_text(json.dumps(reports, indent=2) + "\n")
        return
    model, figures = train(mnist, writers, cfg, cache=args.cache)
    figures["validation"] = measure(model, sets)
    save_weights(model, args.out / "weights.pt")
    (args.out / "metrics.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{summary(figures['validation'])}; trained in {figures['train_seconds']:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
