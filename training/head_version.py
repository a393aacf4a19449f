"""A shippable version from a refusal head (training/refusal_head.py) and the version whose digit network it sits on.

    python -m training.head_version --head var/v5/candidate --base model_store/v4.0 --out model_store/v5.0

The head's folder holds the network (the base's weights, frozen, plus the head), architecture.json and refusal.json.
The new version's folder gets those, the base's Number-mode pair reader (pairs.pt) and its UNIPEN file split
(unipen_files.json: the gate's held-out files stay the same, the digits being the base's), and one metrics.json:
the base's report (its digits are the new version's: the head changes no digit logit), with MNIST test over the
digits answered, the head's refusal table, and what the head was trained on and against under "head".
"""

from __future__ import annotations

import argparse
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

COPIED_FROM_HEAD = ("weights.pt", "architecture.json", "refusal.json")
COPIED_FROM_BASE = ("pairs.pt", "unipen_files.json")


class HeadVersionError(Exception):
    """A head's or a base's folder lacks what a version needs."""


def report(head: dict, base: dict, *, base_version: str, created_at: str) -> dict:
    """metrics.json of the new version: the base's figures, MNIST test as the head answers it, the refusal table and
    the head's training under "head"."""
    at = head["digits_at_threshold"]["mnist_test_as_served"]
    return {
        **base,
        "test_accuracy": round(at["answered_accuracy"], 4),  # over the digits answered, as the gate's rule reads it
        "created_at": created_at,
        "refusal": head["refusal"],
        "head": {
            "base_version": base_version,
            "digits_at_threshold": head["digits_at_threshold"],
            "training_negatives": head.get("training_negatives"),
            "config": head.get("config"),
            "head_train_seconds": head.get("head_train_seconds"),
            "total_seconds": head.get("total_seconds"),
            "curve": head.get("curve"),
        },
    }


def compose(*, head: Path, base: Path, out: Path, now: datetime | None = None) -> Path:
    """Write `out` (a version's folder) from a trained head and its base version's folder."""
    missing = [head / name for name in (*COPIED_FROM_HEAD, "metrics.json") if not (head / name).is_file()]
    missing += [base / "metrics.json"] if not (base / "metrics.json").is_file() else []
    if missing:
        raise HeadVersionError("missing: " + ", ".join(str(path) for path in missing))
    head_metrics = json.loads((head / "metrics.json").read_text())
    base_metrics = json.loads((base / "metrics.json").read_text())
    if "refusal" not in head_metrics or "digits_at_threshold" not in head_metrics:
        raise HeadVersionError(f"{head / 'metrics.json'} is not a refusal head's report (no refusal table)")
    out.mkdir(parents=True, exist_ok=True)
    for name in COPIED_FROM_HEAD:
        shutil.copyfile(head / name, out / name)
    for name in COPIED_FROM_BASE:
        if (base / name).is_file():
            shutil.copyfile(base / name, out / name)
    created = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    figures = report(head_metrics, base_metrics, base_version=base.name.removeprefix("v"), created_at=created)
    (out / "metrics.json").write_text(json.dumps(figures, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--head", type=Path, required=True, help="training/refusal_head.py's --out folder")
    parser.add_argument("--base", type=Path, required=True, help="the version the head was trained on")
    parser.add_argument("--out", type=Path, required=True, help="the new version's folder (model_store/v<version>)")
    args = parser.parse_args(argv)
    try:
        compose(head=args.head, base=args.base, out=args.out)
    except HeadVersionError as exc:
        parser.exit(2, f"error: {exc}\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
