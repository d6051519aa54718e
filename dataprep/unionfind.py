"""Connected components for near-duplicate grouping (both dataset builds use it)."""

from __future__ import annotations


class UnionFind:
    """Disjoint sets over ``0 .. n - 1``; ``union(a, b)`` puts ``a``'s set under ``b``'s root."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        """The root of ``i``'s set (with path halving)."""
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)
