"""Connected parts by union-find (handler/components.py): the union-find itself, and the runs-based labelling the
number reader uses."""

import numpy as np

from handler.components import connected_runs, linked_roots


def _smallest_of_each_part(count: int, links: list[tuple[int, int]]) -> list[int]:
    """A plain union-find, one link at a time: each item's part, named by its smallest item."""
    parent = list(range(count))

    def find(a: int) -> int:
        while parent[a] != a:
            a = parent[a]
        return a

    for a, b in links:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    return [find(a) for a in range(count)]


def test_linked_roots_names_each_part_by_its_smallest_item():
    rng = np.random.default_rng(0)
    for _ in range(200):
        count = int(rng.integers(1, 60))
        links = [(int(a), int(b)) for a, b in rng.integers(0, count, (int(rng.integers(0, 80)), 2))]
        first, second = np.array([a for a, _ in links], dtype=np.intp), np.array([b for _, b in links], dtype=np.intp)
        assert linked_roots(count, first, second).tolist() == _smallest_of_each_part(count, links)
    # a long path whose items alternate high and low: every round hooks only some roots, it still ends joined
    order = np.array([i // 2 if i % 2 == 0 else 999 - i // 2 for i in range(1000)])
    roots = linked_roots(1000, order[:-1], order[1:])
    assert set(roots.tolist()) == {0}


def test_connected_runs_join_diagonal_neighbours_and_keep_parts_apart():
    mask = np.zeros((6, 8), dtype=bool)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = True  # a diagonal line: one part (8-connected)
    mask[0:3, 6:8] = True  # a block
    mask[5, 0:8] = True  # a row under everything, touching nothing
    runs = connected_runs(mask)
    assert len(set(runs.part.tolist())) == 3
    diagonal = {int(runs.part[i]) for i in range(len(runs.row)) if runs.start[i] <= 2 and runs.row[i] <= 2}
    assert len(diagonal) == 1
