"""Connected parts of a boolean image (8-connected), by union-find: pure numpy.

Two labellings share one union-find (linked_roots): the photo path's, over the ink pixels of a small copy
(photos.py), and the number reader's, over horizontal runs of ink at the working resolution (far fewer than pixels;
segmentation.py). A module of its own so that neither path imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def linked_roots(count: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Union-find over items 0..count-1 linked in pairs (first[i], second[i]), all links at once: each link hooks the
    larger of its two roots under the smaller, then every item follows its parent's parent until nothing moves
    (pointer jumping). Returns each item's root: the smallest item of its part. A few rounds whatever the shapes
    (each round hooks at least one root, so it ends)."""
    parent = np.arange(count)
    while True:
        one, two = parent[first], parent[second]
        apart = one != two
        if not apart.any():
            return parent
        one, two = one[apart], two[apart]
        np.minimum.at(parent, np.maximum(one, two), np.minimum(one, two))
        while not np.array_equal(grand := parent[parent], parent):
            parent = grand


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected parts of a small (h, w) bool mask: labels (0 background, 1..n) and n. Union-find over the ink
    pixels (linked_roots)."""
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    labels = np.zeros(mask.shape, dtype=np.int32)
    if len(ys) == 0:
        return labels, 0
    index = np.full((height + 2, width + 2), -1, dtype=np.intp)  # each ink pixel's number, -1 around and between
    index[ys + 1, xs + 1] = np.arange(len(ys))
    links = [index[ys + 1 + dy, xs + 1 + dx] for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1))]  # each neighbour once
    first = np.concatenate([np.flatnonzero(other >= 0) for other in links])
    second = np.concatenate([other[other >= 0] for other in links])
    roots, dense = np.unique(linked_roots(len(ys), first, second), return_inverse=True)
    labels[ys, xs] = dense + 1
    return labels, len(roots)


@dataclass(frozen=True)
class Runs:
    """Horizontal runs of ink: row, [start, stop) columns, and the connected part each belongs to."""

    row: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    part: np.ndarray


def connected_runs(mask: np.ndarray) -> Runs:
    """8-connected parts of a boolean image, by union-find over its horizontal runs (far fewer than pixels;
    linked_roots). A part's number is the order of its first run (top to bottom, left to right)."""
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    row, start = np.nonzero(edges == 1)
    _, stop = np.nonzero(edges == -1)
    # The runs of the next row that touch run i (8-connected: start_j <= stop_i and start_i <= stop_j) are a range of
    # run numbers: runs are sorted by row, then column, and a row's runs do not overlap.
    line = mask.shape[1] + 2
    low = np.searchsorted(row * line + stop, (row + 1) * line + start, side="left")
    high = np.searchsorted(row * line + start, (row + 1) * line + stop, side="right")
    count = np.maximum(high - low, 0)
    first = np.repeat(np.arange(len(row)), count)
    second = np.repeat(low - np.concatenate([[0], np.cumsum(count)[:-1]]), count) + np.arange(int(count.sum()))
    _, part = np.unique(linked_roots(len(row), first, second), return_inverse=True)
    return Runs(row=row, start=start, stop=stop, part=part.reshape(-1))


def paint(runs: Runs, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) int32 image: each run's pixels set to values[run], -1 elsewhere."""
    image = np.full(shape, -1, dtype=np.int32)
    lengths = runs.stop - runs.start
    first = runs.row * shape[1] + runs.start
    offsets = np.repeat(first - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    image.reshape(-1)[offsets + np.arange(int(lengths.sum()))] = np.repeat(values, lengths)
    return image
