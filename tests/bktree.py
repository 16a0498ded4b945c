"""A Burkhard-Keller tree: the readable reference search the design started from (as in
pybktree). Simple and right, but at threshold 10 over 64-bit hashes it visits most of the tree
for every query (pybktree needs hours for 100,000 hashes): the package searches by multi-index
hashing (``dedupdb.search.MultiIndex``), and the tests compare the two."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from dedupdb.hashes import hamming


@dataclass
class _Node:
    value: int
    items: list[int]  # payloads stored at exactly this hash
    children: dict[int, _Node] = field(default_factory=dict)


class BKTree:
    """A Burkhard-Keller tree over integer hashes with the Hamming metric (see pybktree).

    ``add(hash, item)`` stores a payload; ``find(hash, threshold)`` returns ``(distance, item)``
    for every payload within the threshold, sorted. Exact, but slow at large thresholds.
    """

    def __init__(self, entries: Iterable[tuple[int, int]] = ()) -> None:
        self._root: _Node | None = None
        self._size = 0
        for value, item in entries:
            self.add(value, item)

    def __len__(self) -> int:
        return self._size

    def add(self, value: int, item: int) -> None:
        self._size += 1
        if self._root is None:
            self._root = _Node(value, [item])
            return
        node = self._root
        while True:
            d = hamming(value, node.value)
            if d == 0:
                node.items.append(item)
                return
            child = node.children.get(d)
            if child is None:
                node.children[d] = _Node(value, [item])
                return
            node = child

    def find(self, value: int, threshold: int) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        stack = [self._root] if self._root is not None else []
        while stack:
            node = stack.pop()
            d = hamming(value, node.value)
            if d <= threshold:
                found.extend((d, item) for item in node.items)
            # Triangle inequality: only subtrees at distance d +- threshold can hold matches.
            for edge, child in node.children.items():
                if d - threshold <= edge <= d + threshold:
                    stack.append(child)
        return sorted(found)
