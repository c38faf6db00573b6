"""Who is a copy of whom: the Beam job's connected components (star rounds),
and the representatives inside each component (both paths).

Nodes are ordered by a *rank key* ``(0 if reference else 1, -quality, id)``:
a reference document first (it is kept elsewhere, e.g. WebText), then the
highest quality score, then the smallest id. Star rounds label every node
with the smallest node of its component; :func:`representatives` then decides,
inside a component, which nodes are removed and for which kept node. The
one-machine path needs no components: it runs :func:`representatives` on all
its edges at once, which gives the same answer because the function never
looks across components.

>>> sorted(star_components([("b", "c"), ("c", "d")]).items())
[('b', 'b'), ('c', 'b'), ('d', 'b')]
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Hashable, Iterable


def rank_key(doc_id: str, quality: Any = None, reference: bool = False) -> tuple:
    """Order of nodes: reference first, then highest quality, then smallest id.

    >>> sorted([rank_key("b", 0.9), rank_key("a", 0.1), rank_key("z", 0.0, True)])
    [(0, -0.0, 'z'), (1, -0.9, 'b'), (1, -0.1, 'a')]
    """
    return (0 if reference else 1, -quality_of(quality), doc_id)


def quality_of(value: Any) -> float:
    """A quality score as a float; absent or unparsable counts as 0 (documented rule)."""
    try:
        q = float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0
    return q if q == q else 0.0  # NaN -> 0


# --------------------------------------------------------------- star rounds
# Kiveris et al. 2014, "Connected Components in MapReduce and Beyond": alternate
# large-star and small-star until no edge changes. Each step only looks at one
# node's neighbourhood, so in Beam it is one GroupByKey and no worker holds the
# graph. These pure functions are what the Beam DoFns call.

def large_star(node: Hashable, neighbours: Iterable[Hashable]) -> list[tuple]:
    """Connect every strictly larger neighbour to the smallest of node+neighbours."""
    nbrs = set(neighbours)
    m = min(nbrs | {node})
    return [(v, m) for v in nbrs if v > node]


def small_star(node: Hashable, neighbours: Iterable[Hashable]) -> list[tuple]:
    """Connect node and its smaller-or-equal neighbours to the smallest of them."""
    nbrs = {v for v in neighbours if v <= node}
    m = min(nbrs | {node})
    return [(v, m) for v in nbrs | {node} if v != m]


def _adjacency(edges: Iterable[tuple], both: bool) -> dict:
    adj: dict = defaultdict(set)
    for u, v in edges:
        if u == v:
            continue
        if both:
            adj[u].add(v)
            adj[v].add(u)
        else:  # small-star: each edge goes to its larger end
            lo, hi = (u, v) if u < v else (v, u)
            adj[hi].add(lo)
    return adj


def star_round(edges: Iterable[tuple]) -> set[tuple]:
    """One large-star then one small-star step over an edge list (in memory)."""
    out: set[tuple] = set()
    for u, nb in _adjacency(edges, both=True).items():
        out.update(large_star(u, nb))
    nxt: set[tuple] = set()
    for u, nb in _adjacency(out, both=False).items():
        nxt.update(small_star(u, nb))
    return {(max(a, b), min(a, b)) for a, b in nxt if a != b}


def star_components(edges: Iterable[tuple], max_rounds: int = 64) -> dict:
    """node -> smallest node of its component, by star rounds (the Beam algorithm, in memory)."""
    cur = {(max(a, b), min(a, b)) for a, b in edges if a != b}
    nodes = {x for e in cur for x in e}
    for _ in range(max_rounds):
        nxt = star_round(cur)
        if nxt == cur:
            break
        cur = nxt
    else:
        raise RuntimeError(f"star rounds did not converge in {max_rounds} rounds")
    label = {n: n for n in nodes}
    for hi, lo in cur:  # converged: a forest of stars, each leaf -> its root
        label[hi] = min(label[hi], lo)
    return label


# --------------------------------------------------------------- representatives
# A component is only the unit of work: removing every member but one would
# chain through it (A inside B, C inside B: A and C share a component without
# sharing text), and on CopyCat 70 of 289 removed pages shared less than half
# their text with the representative that way. So each removed document must be
# a direct, verified copy of a kept one.

def representatives(edges: Iterable[tuple], fixed=lambda node: False) -> dict:
    """node -> the kept node it is a copy of, for every removed node.

    ``edges`` are ``(a, b, near, size_a, size_b)``: ``near`` when the pair's
    Jaccard passed the threshold (either may stand for the other), otherwise a
    containment pair, where the smaller (by shingle count, then worse rank) is
    contained in the larger. ``fixed(node)`` nodes (reference documents) are
    never removed.

    1. near pairs, nodes in rank-key order: a node with a near pair to a kept,
       better-ranked node is removed and points to the best-ranked one;
    2. containment, among the nodes still kept, largest first: a node contained
       in a kept node is removed and points to the best-ranked such container;
    3. a node removed in step 1 whose representative was removed in step 2
       points on to that container (it is a near copy of something contained there).

    Every removed node has a verified pair with its representative (or, after
    step 3, with a near copy of it), and a larger page is never removed for a
    smaller one it contains. The result depends only on the edge set, so the
    one-machine path and the Beam job (per component) agree.

    >>> representatives([("a", "b", True, 50, 50), ("c", "b", True, 50, 50)])  # c never paired with a
    {'b': 'a'}
    >>> representatives([("a", "b", False, 20, 90)])  # a is contained in b: a goes
    {'a': 'b'}
    >>> sorted(representatives([("a", "b", False, 20, 90), ("c", "b", False, 30, 90)]).items())
    [('a', 'b'), ('c', 'b')]
    """
    near_adj: dict = defaultdict(list)
    containers: dict = defaultdict(list)
    size: dict = {}
    for a, b, near, sa, sb in edges:
        size[a], size[b] = sa, sb
        if near:
            near_adj[a].append(b)
            near_adj[b].append(a)
        else:
            small, big = (a, b) if (sa, b) < (sb, a) else (b, a)
            containers[small].append(big)
    parent: dict = {}
    for x in sorted(near_adj):
        if fixed(x):
            continue
        best = min((y for y in near_adj[x] if y < x and y not in parent), default=None)
        if best is not None:
            parent[x] = best
    contained: dict = {}
    for x in sorted((n for n in containers if n not in parent and not fixed(n)), key=lambda n: (-size[n], n)):
        best = min((y for y in containers[x] if y not in parent and y not in contained), default=None)
        if best is not None:
            contained[x] = best
    for x, y in parent.items():
        if y in contained:
            parent[x] = contained[y]
    parent.update(contained)
    return parent
