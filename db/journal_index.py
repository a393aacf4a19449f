"""What the journal (db/journal.py) keeps in memory of its file: each line's size, what it is about, whose it is and
from where, and the sums its caps are checked against; never the drawings themselves."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from db.journal_entries import Waiting, waiting_of

ENTRY_WEIGHT = 4096  # an entry counts for at least this many bytes against the caps (Held.weight)


class Held(NamedTuple):
    """What the index keeps of one line: what it is about, its size in the file, whose it is and from where."""

    waiting: Waiting
    size: int
    browser_id: str | None = None
    network: str | None = None

    @property
    def weight(self) -> int:
        """What it counts for against the caps: its size, and at least ENTRY_WEIGHT (a label's few hundred bytes
        cost a replay as much time as a drawing's few thousand: a cap in bytes alone would let labels in by the
        hundred thousand)."""
        return max(self.size, ENTRY_WEIGHT)

    @classmethod
    def of(cls, entry: dict, *, size: int) -> Held:
        row = entry.get("prediction") or entry.get("number")
        owner = row if isinstance(row, dict) else entry  # a label carries its browser and network itself
        browser, network = owner.get("browser_id"), owner.get("client_network" if owner is row else "network")
        return cls(waiting_of(entry), size, _text(browser), _text(network))

    @classmethod
    def of_line(cls, line: bytes) -> Held:
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            return cls(Waiting(None), len(line))
        return cls.of(entry, size=len(line)) if isinstance(entry, dict) else cls(Waiting(None), len(line))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass
class Index:
    """The journal's lines in order (Held), and what the caps and the lookups need, kept up to date as lines are
    added; rebuilt when the first lines leave the file."""

    lines: list[Held] = field(default_factory=list)
    total: int = 0  # bytes in the file
    weight: int = 0  # what they count for against the caps (Held.weight)
    by_client: Counter[str] = field(default_factory=Counter)
    by_network: Counter[str] = field(default_factory=Counter)
    request_ids: Counter[uuid.UUID] = field(default_factory=Counter)
    first: dict[tuple[uuid.UUID, str], Waiting] = field(default_factory=dict)

    @classmethod
    def of(cls, lines: Iterable[Held]) -> Index:
        index = cls()
        for held in lines:
            index.add(held)
        return index

    @classmethod
    def of_file(cls, path: Path) -> Index:
        """Each non-blank line of the file, read line by line (never the whole file at once)."""
        try:
            with path.open("rb") as file:
                return cls.of(Held.of_line(line) for line in file if line.strip())
        except FileNotFoundError:
            return cls()

    def add(self, held: Held) -> None:
        self.lines.append(held)
        self.total += held.size
        self.weight += held.weight
        if held.browser_id is not None:
            self.by_client[held.browser_id] += held.weight
        if held.network is not None:
            self.by_network[held.network] += held.weight
        waiting = held.waiting
        if waiting.request_id is not None:
            self.request_ids[waiting.request_id] += 1
            if waiting.kind is not None:
                self.first.setdefault((waiting.request_id, waiting.kind), waiting)

    def without_first(self, count: int) -> Index:
        return Index.of(self.lines[count:])
