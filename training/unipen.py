"""A second population of real pen-drawn digits (UNIPEN train_r01_v07, category 1a): a loader, a fixed split of
whole session files, and the slate renderings training/pendigits.py makes.

    python -m training.unipen --unipen FILE --out var/unipen-sample     # counts, the split, a few renderings

Why: 3.0 learned the 30 pendigits writers' habits; on writers of about 17 other sites it gained almost nothing
(issue 24). These are 6,887 digits by people outside pendigits and MNIST, with styles pendigits lacks (slashed zeros,
ones with a long flag).

Data: I. Guyon, L. Schomaker, R. Plamondon, M. Liberman, S. Janet, "UNIPEN project of on-line data exchange and
recognizer benchmarks", ICPR 1994; the Zenodo copy of train_r01_v07 (doi 10.5281/zenodo.1195803), CC BY 4.0. For
training and validation only: the running product never reads it, and it never enters the repository (except the
few strokes of the golden set, training/golden.py). The file's path comes from `--unipen` or UNIPEN_FILE.

Format (its README): one JSON object per line, `label` ("0".."9"), `strokes` (lists of [x, y] tablet points, y
pointing *up*, each site's own scale), `contributor` (the site) and `file` (the session file, about one writer).

The validation split, fixed on 2026-12-04 before any model was measured on it: a file is held out when the first
8 hex digits of sha256(file name) are divisible by 5 (VALIDATION_MODULUS). That holds out 60 of the 314 files,
1,576 of 6,887 digits, from 12 of the 16 sites, whole files only, so validation measures people the model has
never seen. Nothing trains on them.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training import pendigits

ROOT = Path(__file__).resolve().parent.parent
ENV_VAR = "UNIPEN_FILE"
NUMBERS_ENV_VAR = "UNIPEN_NUMBERS_FILE"  # unipen-numbers-train.jsonl.gz: numbers of 2-10 digits, same format
LETTERS_ENV_VAR = "UNIPEN_LETTERS_FILE"  # unipen-letters-train.jsonl.gz: letters (categories 1b, 1c), same format
# Letters that people write exactly as a digit: O and o as 0, I and l as 1, Z and z as 2, S and s as 5, b as 6, B as 8,
# g and q as 9. They are never used as "not a digit" examples: a head taught to refuse them would refuse the digits they
# look like (the rule is that real digits are answered). They are measured apart ("digit-like letters"), not counted in
# the letters figure. Decided on 2026-12-07, before any head was measured on them.
DIGIT_LIKE_LETTERS = frozenset("OoIlZzSsbBgq")
VALIDATION_MODULUS = 5  # about 1 file in 5 held out


class UnipenError(RuntimeError):
    """The UNIPEN file is missing or a record is not in the expected format; the message says which."""


@dataclass(frozen=True)
class UnipenDigit:
    """One digit; the same fields pendigits.render and pendigits.renderings read from a PenDigit."""

    label: int
    writer: str  # the session file: about one writer's session
    contributor: str  # the collecting site's code
    strokes: tuple[np.ndarray, ...]  # each (n, 2) float32 x, y in tablet units, y grows *downwards* (image order)


@dataclass(frozen=True)
class UnipenNumber:
    """A number of several digits written in one go (the "several digits" kind, in real handwriting)."""

    label: str  # the number, e.g. "2026"
    writer: str
    contributor: str
    strokes: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class UnipenLetter:
    """A handwritten letter: what a "not a digit" answer should learn from. label is 10 (not a digit) so that the
    slate renderer, which reads label, writer and strokes, draws it like a digit; `letter` keeps which one it is."""

    letter: str
    writer: str
    contributor: str
    strokes: tuple[np.ndarray, ...]
    label: int = 10

    @property
    def digit_like(self) -> bool:
        return self.letter in DIGIT_LIKE_LETTERS


def default_path(env_var: str = ENV_VAR) -> Path | None:
    """UNIPEN_FILE (or the numbers' variable), when set: there is no built-in location, the data is never part of
    the project."""
    return Path(os.environ[env_var]) if os.environ.get(env_var) else None


def _strokes(strokes, *, line: int) -> tuple[np.ndarray, ...]:
    """A record's strokes as (n, 2) float32 arrays, y flipped so that it grows downwards; empty strokes dropped."""
    arrays = []
    for stroke in strokes:
        xy = np.asarray(stroke, dtype=np.float32).reshape(-1, 2)
        if len(xy):
            xy[:, 1] = -xy[:, 1]  # UNIPEN's y grows upwards; images' grows downwards
            arrays.append(xy)
    if not arrays:
        raise UnipenError(f"line {line}: a record without a single point")
    return tuple(arrays)


def _fields(record: dict, *, line: int) -> tuple:
    try:
        return record["label"], record["strokes"], str(record["contributor"]), str(record["file"])
    except KeyError as exc:
        raise UnipenError(f"line {line}: no {exc.args[0]!r} field") from None


def parse_record(record: dict, *, line: int = 0, numbers: bool = False) -> UnipenDigit | UnipenNumber:
    """One JSON record -> a digit (numbers: a number), y flipped so that it grows downwards. Empty strokes are
    dropped."""
    label, strokes, contributor, file = _fields(record, line=line)
    if not (isinstance(label, str) and label.isdigit() and (len(label) > 1 if numbers else len(label) == 1)):
        raise UnipenError(f"line {line}: label {label!r} is not {'a number' if numbers else 'one digit'}")
    arrays = _strokes(strokes, line=line)
    if numbers:
        return UnipenNumber(label=label, writer=file, contributor=contributor, strokes=arrays)
    return UnipenDigit(label=int(label), writer=file, contributor=contributor, strokes=arrays)


def parse_letter(record: dict, *, line: int = 0) -> UnipenLetter:
    """One JSON record of the letters file -> a letter, y flipped as for digits."""
    label, strokes, contributor, file = _fields(record, line=line)
    if not (isinstance(label, str) and len(label) == 1 and label.isalpha()):
        raise UnipenError(f"line {line}: label {label!r} is not one letter")
    return UnipenLetter(letter=label, writer=file, contributor=contributor, strokes=_strokes(strokes, line=line))


def _records(path: Path | None, *, env_var: str, option: str) -> Iterator[tuple[int, dict]]:
    """(line number, JSON object) of each non-empty line of the file (gzip or plain)."""
    path = path or default_path(env_var)
    if path is None:
        raise UnipenError(f"no UNIPEN file given: pass {option} FILE or set {env_var}")
    path = Path(path)
    if not path.exists():
        raise UnipenError(f"{path} not found: pass {option} FILE or set {env_var}")
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise UnipenError(f"line {number}: not JSON ({exc.msg})") from None


def load(path: Path | None = None, *, numbers: bool = False) -> list[UnipenDigit] | list[UnipenNumber]:
    """All digits of the file (JSON lines, gzip or plain); numbers=True: the numbers file's numbers."""
    env_var, option = (NUMBERS_ENV_VAR, "--unipen-numbers") if numbers else (ENV_VAR, "--unipen")
    return [  # type: ignore[return-value]
        parse_record(record, line=number, numbers=numbers)
        for number, record in _records(path, env_var=env_var, option=option)
    ]


def load_letters(path: Path | None = None) -> list[UnipenLetter]:
    """All letters of the letters file (JSON lines, gzip or plain)."""
    return [
        parse_letter(record, line=number)
        for number, record in _records(path, env_var=LETTERS_ENV_VAR, option="--unipen-letters")
    ]


def held_out(file: str) -> bool:
    """Whether this session file belongs to the fixed validation split (see the module docstring)."""
    return int(hashlib.sha256(file.encode("utf-8")).hexdigest()[:8], 16) % VALIDATION_MODULUS == 0


def split_by_file(digits: Sequence) -> tuple[list, list]:
    """(training, validation): whole session files on one side only (digits or numbers: the same rule)."""
    return [d for d in digits if not held_out(d.writer)], [d for d in digits if held_out(d.writer)]


def renderings(digits: Sequence[UnipenDigit], **kwargs) -> list[tuple[bytes, int, str, str]]:
    """(png, label, file, style) per drawing: pendigits.renderings, which draws any digit with label, writer and
    strokes the way the slate does (normalised by the bounding box, so each site's scale does not matter)."""
    return pendigits.renderings(digits, **kwargs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--unipen", type=Path, default=None, help=f"the JSON-lines file (default: ${ENV_VAR})")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "unipen-sample")
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        digits = load(args.unipen)
    except UnipenError as exc:
        parser.exit(2, f"error: {exc}\n")
    training, validation = split_by_file(digits)
    files = {d.writer for d in digits}
    held = {d.writer for d in validation}
    print(f"{len(digits)} digits in {len(files)} files: {len(training)} training, {len(validation)} validation "
          f"({len(held)} files, sites {dict(Counter(d.contributor for d in validation))})")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    picks = np.random.default_rng(0).choice(len(digits), size=min(args.count, len(digits)), replace=False)
    for index, (png, label, _, style) in enumerate(renderings([digits[i] for i in picks], all_styles=False)):
        (args.out / f"{index:03d}-digit{label}-{style}.png").write_bytes(png)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
