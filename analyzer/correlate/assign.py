"""Choose session pairs as one global minimum-cost assignment, not greedily.

Given scored candidate pairs (client-side index, server-side index, score), `assign` picks the
one-to-one set with the greatest total score; a session may stay unpaired. Taking the best
candidate first, as a greedy pass does, can steal the only good partner of another session
(two look-alike sessions of a list run, each a little closer in time to the other's partner).

The candidates split into connected components (sessions linked by a candidate); each is solved
on its own: small ones as a dense matrix with `scipy.optimize.linear_sum_assignment`, large ones
(thousands of concurrent look-alike sessions) as a sparse graph with
`scipy.sparse.csgraph.min_weight_full_bipartite_matching`, made always solvable by one
"unpaired" node per session. Both give the optimum. Scores and margins are `match`'s business.

numpy and scipy are imported by the solvers that use them, when a component has more than one
candidate: a one-sided analysis, or one whose pairs are all unambiguous, never loads them (they
are most of the resident memory of a small run).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

DENSE_CELLS = 250_000
"""Components with at most this many rows x columns are solved as a dense matrix."""

Edge = tuple[int, int, float]
"""(client-side index, server-side index, score > 0)."""


def _components(edges: Sequence[Edge]) -> list[list[Edge]]:
    """The edges grouped by connected component (rows and columns as one node set)."""
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(node: tuple[int, int]) -> tuple[int, int]:
        root = node
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    for row, col, _ in edges:
        a, b = find((0, row)), find((1, col))
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[tuple[int, int], list[Edge]] = defaultdict(list)
    for edge in edges:
        groups[find((0, edge[0]))].append(edge)
    return [groups[k] for k in sorted(groups)]


def _dense(rows: list[int], cols: list[int], edges: list[Edge]) -> list[tuple[int, int]]:
    import numpy as np
    from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

    r_at = {r: i for i, r in enumerate(rows)}
    c_at = {c: i for i, c in enumerate(cols)}
    cost = np.zeros((len(rows), len(cols)))
    for row, col, value in edges:
        cost[r_at[row], c_at[col]] = -value
    picked_r, picked_c = linear_sum_assignment(cost)
    return [
        (rows[i], cols[j])
        for i, j in zip(picked_r.tolist(), picked_c.tolist(), strict=True)
        if cost[i, j] < 0
    ]


def _sparse(rows: list[int], cols: list[int], edges: list[Edge]) -> list[tuple[int, int]]:
    """The same optimum on a sparse graph: rows are the n clients then one 'unpaired' node per
    server, columns the m servers then one 'unpaired' node per client. Client i may take its
    own unpaired column at cost K, server j its own unpaired row at cost K, and an unpaired row
    j meets an unpaired column i wherever (i, j) is a candidate, at cost K; a real pair costs
    K - score. Every full matching has n + m edges, so the constant K (which keeps every cost
    positive: zero entries are no edge) does not change which one is cheapest."""
    from scipy.sparse import coo_matrix  # type: ignore[import-untyped]
    from scipy.sparse.csgraph import (  # type: ignore[import-untyped]
        min_weight_full_bipartite_matching,
    )

    n, m = len(rows), len(cols)
    r_at = {r: i for i, r in enumerate(rows)}
    c_at = {c: i for i, c in enumerate(cols)}
    top = max(value for _, _, value in edges) + 1.0
    ii: list[int] = []
    jj: list[int] = []
    ww: list[float] = []
    for row, col, value in edges:
        i, j = r_at[row], c_at[col]
        ii += (i, n + j)
        jj += (j, m + i)
        ww += (top - value, top)
    for i in range(n):
        ii.append(i)
        jj.append(m + i)
        ww.append(top)
    for j in range(m):
        ii.append(n + j)
        jj.append(j)
        ww.append(top)
    graph = coo_matrix((ww, (ii, jj)), shape=(n + m, m + n)).tocsr()
    picked_r, picked_c = min_weight_full_bipartite_matching(graph)
    return [
        (rows[i], cols[j])
        for i, j in zip(picked_r.tolist(), picked_c.tolist(), strict=True)
        if i < n and j < m
    ]


def assign(edges: Sequence[Edge]) -> list[tuple[int, int]]:
    """The one-to-one subset of `edges` with the greatest total score, as (row, column) pairs
    sorted by row. Every score must be positive."""
    if any(value <= 0 for _, _, value in edges):
        raise ValueError("scores must be positive")
    # A row or column listed twice keeps its best score.
    best: dict[tuple[int, int], float] = {}
    for row, col, value in edges:
        if value > best.get((row, col), 0.0):
            best[row, col] = value
    unique = [(r, c, v) for (r, c), v in best.items()]
    chosen: list[tuple[int, int]] = []
    for component in _components(unique):
        rows = sorted({e[0] for e in component})
        cols = sorted({e[1] for e in component})
        if len(component) == 1:
            chosen.append((rows[0], cols[0]))
        elif len(rows) * len(cols) <= DENSE_CELLS:
            chosen.extend(_dense(rows, cols, component))
        else:
            chosen.extend(_sparse(rows, cols, component))
    return sorted(chosen)
