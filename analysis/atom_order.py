"""Atom order of a trajectory against a challenge's: as is, or a permutation from the bond graph.

Another code may list the same molecule's atoms in another order (a published trajectory need
not follow the order of the challenge's RDKit-made starts). When the elements match one by one
the order is taken as is; when only the element counts match, the permutation comes from
matching the two covalent bond graphs (bonds from covalent radii, as the backbone checks use):
colour refinement (each atom's colour: its element, then repeatedly the sorted colours of its
neighbours) splits the atoms into classes that any isomorphism must respect, and a depth-first
search assigns atoms class by class, checking every bond against the atoms already placed.

Equivalent atoms (the three hydrogens of a methyl group) admit several mappings; the search
takes the lowest-index candidate first, so the result is deterministic. Such swaps leave every
element-based and heavy-atom observable unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.challenges import backbone

#: Depth-first steps after which the search gives up (a molecule needs a few hundred).
MAX_STEPS = 200_000


@dataclass(frozen=True)
class AtomOrder:
    """How a source's atoms map onto the challenge's order.

    ``permutation[i]`` is the source index of the challenge's atom ``i`` (so
    ``positions[:, permutation]`` is in the challenge's order); ``kind`` is ``"as is"`` or
    ``"bond-graph mapping"``.
    """

    kind: str
    permutation: np.ndarray

    @property
    def applied(self) -> bool:
        """True when atoms were reordered."""
        return bool(np.any(self.permutation != np.arange(len(self.permutation))))


def _neighbour_lists(n: int, bonds: set[tuple[int, int]]) -> list[list[int]]:
    nbr: list[list[int]] = [[] for _ in range(n)]
    for a, b in bonds:
        nbr[a].append(b)
        nbr[b].append(a)
    return nbr


def refine_colours(symbols_a: list[str], nbr_a: list[list[int]], symbols_b: list[str],
                   nbr_b: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Stable colour classes of two graphs, refined together so colours are comparable."""
    symbols = list(symbols_a) + list(symbols_b)
    offset = len(symbols_a)
    nbr = nbr_a + [[j + offset for j in js] for js in nbr_b]
    palette = {s: k for k, s in enumerate(sorted(set(symbols)))}
    colours = [palette[s] for s in symbols]
    n_classes = len(palette)
    while True:
        signatures = [(colours[i], tuple(sorted(colours[j] for j in nbr[i])))
                      for i in range(len(symbols))]
        palette_sig = {s: k for k, s in enumerate(sorted(set(signatures)))}
        colours = [palette_sig[s] for s in signatures]
        if len(palette_sig) == n_classes:
            break
        n_classes = len(palette_sig)
    out = np.array(colours)
    return out[:offset], out[offset:]


def _search_order(nbr: list[list[int]], colours: np.ndarray) -> list[int]:
    """Atoms of the target graph in breadth-first order from the rarest colour."""
    counts = np.bincount(colours)
    order: list[int] = []
    seen: set[int] = set()
    for root in sorted(range(len(nbr)), key=lambda i: (counts[colours[i]], i)):
        if root in seen:
            continue
        queue = [root]
        seen.add(root)
        while queue:
            atom = queue.pop(0)
            order.append(atom)
            for j in sorted(nbr[atom], key=lambda k: (counts[colours[k]], k)):
                if j not in seen:
                    seen.add(j)
                    queue.append(j)
    return order


def match_graphs(symbols_target: list[str], bonds_target: set[tuple[int, int]],
                 symbols_source: list[str], bonds_source: set[tuple[int, int]]
                 ) -> np.ndarray | None:
    """A permutation ``p`` with source atom ``p[i]`` playing target atom ``i``, or None.

    ``p`` maps elements onto elements and bonds onto bonds, both ways (an isomorphism of the
    element-labelled bond graphs).
    """
    n = len(symbols_target)
    if n != len(symbols_source) or len(bonds_target) != len(bonds_source):
        return None
    nbr_t = _neighbour_lists(n, bonds_target)
    nbr_s = _neighbour_lists(n, bonds_source)
    col_t, col_s = refine_colours(symbols_target, nbr_t, symbols_source, nbr_s)
    if sorted(col_t.tolist()) != sorted(col_s.tolist()):
        return None
    by_colour: dict[int, list[int]] = {}
    for j, c in enumerate(col_s.tolist()):
        by_colour.setdefault(c, []).append(j)
    return _depth_first(_search_order(nbr_t, col_t), col_t, nbr_t, nbr_s, by_colour)


def _depth_first(order: list[int], col_t: np.ndarray, nbr_t: list[list[int]],
                 nbr_s: list[list[int]], by_colour: dict[int, list[int]]) -> np.ndarray | None:
    """Place target atoms in ``order`` on same-colour source atoms, bonds checked (no recursion:
    a large system must not hit Python's recursion limit)."""
    n = len(order)
    adj_s = [set(js) for js in nbr_s]
    image = np.full(n, -1, dtype=np.int64)
    used = np.zeros(n, dtype=bool)
    next_candidate = np.zeros(n + 1, dtype=np.int64)
    depth = steps = 0
    while 0 <= depth < n:
        atom = order[depth]
        if image[atom] >= 0:  # back here after a dead end further down: undo, try the next
            used[image[atom]] = False
            image[atom] = -1
        candidates = by_colour[int(col_t[atom])]
        placed_neighbours = [int(image[p]) for p in nbr_t[atom] if image[p] >= 0]
        while next_candidate[depth] < len(candidates):
            cand = candidates[next_candidate[depth]]
            next_candidate[depth] += 1
            steps += 1
            if (not used[cand] and all(p in adj_s[cand] for p in placed_neighbours)
                    and sum(bool(used[q]) for q in nbr_s[cand]) == len(placed_neighbours)):
                image[atom], used[cand] = cand, True
                break
        if image[atom] >= 0:
            depth += 1
            next_candidate[depth] = 0
        else:
            depth -= 1
        if steps > MAX_STEPS:
            return None
    return image if depth == n else None


def resolve(target_symbols: list[str], target_positions: np.ndarray,
            source_symbols: list[str], source_positions: np.ndarray) -> AtomOrder | str:
    """The :class:`AtomOrder` of a source against the target, or why there is none (text).

    ``*_positions`` (one frame each) give the bond graphs when the orders differ.
    """
    if len(source_symbols) != len(target_symbols):
        return (f"{len(source_symbols)} atoms, the challenge has {len(target_symbols)}")
    if list(source_symbols) == list(target_symbols):
        return AtomOrder("as is", np.arange(len(target_symbols)))
    if sorted(source_symbols) != sorted(target_symbols):
        return (f"elements {_formula(source_symbols)}, the challenge has "
                f"{_formula(target_symbols)}")
    bonds_t = backbone.bonds_from_geometry(list(target_symbols), target_positions)
    bonds_s = backbone.bonds_from_geometry(list(source_symbols), source_positions)
    perm = match_graphs(list(target_symbols), bonds_t, list(source_symbols), bonds_s)
    if perm is None:
        return (f"same elements in another order, and its first frame's bond graph "
                f"({len(bonds_s)} bonds) does not match the challenge's ({len(bonds_t)} bonds)")
    return AtomOrder("bond-graph mapping", perm)


def _formula(symbols: list[str]) -> str:
    counts: dict[str, int] = {}
    for s in symbols:
        counts[s] = counts.get(s, 0) + 1
    return "".join(f"{s}{counts[s] if counts[s] > 1 else ''}" for s in sorted(counts))
