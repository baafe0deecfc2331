"""Model against model (TEA guideline 1): every pair's distance against each model's own noise.

For one observable at one temperature, :func:`pairwise` gives the distance between every pair of
models with its bootstrap interval, each model's between-replica noise (:func:`split_noise`: the
distance between two random halves of its own runs) and a ``disagree`` flag when the pair's
distance is clear of that noise. Also reachable as ``analysis.stats.pairwise``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.stats import RESAMPLE_CHUNK, Interval, bootstrap, bootstrap_histograms


@dataclass
class PairDistance:
    """Distance between two models with its interval, against each model's own noise."""

    model_a: str
    model_b: str
    distance: Interval
    noise_a: Interval | None
    noise_b: Interval | None
    disagree: bool | None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {"model_a": self.model_a, "model_b": self.model_b,
                "distance": self.distance.as_dict(),
                "noise_a": self.noise_a.as_dict() if self.noise_a else None,
                "noise_b": self.noise_b.as_dict() if self.noise_b else None,
                "disagree": self.disagree}


def split_noise(unit_list: Sequence[Any], distance: Callable[[list, list], float], *,
                n_resamples: int = 1000, seed: int = 0, level: float = 0.95,
                method: str = "runs", histograms: bool = False,
                vectorized: bool = False) -> Interval | None:
    """Between-replica noise of one model: the distance between two random halves of its units.

    Every resample shuffles the units and splits them into two halves (sizes ``n // 2`` and
    ``n - n // 2``); the interval spans the ``level`` central range of those distances, the
    value is their median. Each half holds half the data, so for a biased distance (a plug-in
    divergence grows as samples shrink) this noise is larger than that of a full-size
    comparison: the ``disagree`` flag built on it is conservative. None with fewer than 2 units.
    With ``histograms=True`` the units are histograms and ``distance`` gets the two halves'
    sums (computed as one matrix product); with ``vectorized=True`` as well, it gets all
    resamples at once (leading axis) as in :func:`bootstrap_histograms`.
    """
    items = list(unit_list)
    n = len(items)
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    perms = np.array([rng.permutation(n) for _ in range(n_resamples)])
    if histograms:
        stack = np.asarray(items, dtype=float)
        flat = stack.reshape(n, -1)
        first = np.zeros((n_resamples, n))
        np.put_along_axis(first, perms[:, : n // 2], 1.0, axis=1)
        total = flat.sum(axis=0)
        shape = stack.shape[1:]
        vals = np.empty(n_resamples)
        for start in range(0, n_resamples, RESAMPLE_CHUNK):  # bounded memory
            part = slice(start, min(start + RESAMPLE_CHUNK, n_resamples))
            sums_a = first[part] @ flat
            sums_b = total - sums_a
            if vectorized:
                vals[part] = np.asarray(distance(sums_a.reshape((-1, *shape)),
                                                 sums_b.reshape((-1, *shape))), dtype=float)
            else:
                vals[part] = [distance(a.reshape(shape), b.reshape(shape))
                              for a, b in zip(sums_a, sums_b, strict=True)]
    else:
        vals = np.array([distance([items[i] for i in perm[: n // 2]],
                                  [items[i] for i in perm[n // 2:]]) for perm in perms],
                        dtype=float)
    vals = vals[np.isfinite(vals)]
    if len(vals) == 0:
        return None
    alpha = 1 - level
    lo, hi = np.quantile(vals, [alpha / 2, 1 - alpha / 2])
    return Interval(float(np.median(vals)), float(lo), float(hi), n, f"{method}, split halves",
                    level)


def pairwise(models: Mapping[str, Sequence[Any]], distance: Callable[[list, list], float], *,
             n_resamples: int = 1000, seed: int = 0, level: float = 0.95,
             methods: Mapping[str, str] | None = None, histograms: bool = False,
             vectorized: bool = False) -> list[PairDistance]:
    """Model against model: every pair's distance with its interval, flagged against noise.

    Parameters
    ----------
    models : mapping
        Model name -> its units (see :func:`units`), in the order the pairs should come out.
    distance : callable
        ``distance(units_a, units_b) -> float`` (lists of units); with ``histograms=True`` the
        units are histograms and ``distance(summed_a, summed_b)`` gets their sums (fast path;
        ``vectorized=True``: all resamples in one call, e.g. :func:`jensen_shannon_rows`).
    n_resamples, seed, level
        As in :func:`bootstrap`.
    methods : mapping, optional
        Model name -> ``"runs"`` / ``"time blocks"`` (from :func:`units`); default ``"runs"``.

    Returns
    -------
    list of PairDistance
        One per unordered pair, in the mapping's order; the distance interval is the basic
        bootstrap one (distances are biased upward, see :func:`bootstrap`). ``disagree`` is
        True when the distance's lower bound exceeds the upper bound of either model's own
        noise (``low > max(high_a, high_b)``), None when a model has too few units for it.
    """
    names = list(models)
    methods = dict(methods or {})

    noise = {m: split_noise(models[m], distance, n_resamples=n_resamples, seed=seed,
                            level=level, method=methods.get(m, "runs"), histograms=histograms,
                            vectorized=vectorized)
             for m in names}
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            label = methods.get(a, "runs")
            if methods.get(b, "runs") != label:
                label = f"{label} / {methods.get(b, 'runs')}"
            if histograms:
                iv = bootstrap_histograms([models[a], models[b]], distance,
                                          n_resamples=n_resamples, seed=seed, level=level,
                                          method=label, interval="basic",
                                          vectorized=vectorized)
            else:
                iv = bootstrap([models[a], models[b]], distance, n_resamples=n_resamples,
                               seed=seed, level=level, method=label, interval="basic")
            na, nb = noise[a], noise[b]
            flag = None if na is None or nb is None or not math.isfinite(iv.low) \
                else bool(iv.low > max(na.high, nb.high))
            out.append(PairDistance(a, b, iv, na, nb, flag))
    return out
