"""Connected parts of a boolean image (8-connected), by union-find: pure numpy.

The photo path labels the ink pixels of a small copy (photos.py); the number reader links horizontal runs of ink
with the same union-find (linked_roots, segmentation.py). A module of its own so that neither path imports the other.
"""

from __future__ import annotations

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
