"""The reference method evaluated on trajectory frames: cached by frame content, in parallel.

The reference of a challenge is a registry model (``reference_model`` in its ``challenge.toml``,
``xtb`` when absent), built through :func:`harness.config.model_calculator` like every other
command that calls a model directly; ``--reference-model``, ``--model-file`` and
``--model-option`` choose another. Each result is stored under the SHA-256 of the method and the
frame (atomic numbers, positions, cell, periodicity, initial charges), so asking again for a frame
already evaluated costs nothing, whichever command asked. Every frame is evaluated from scratch
(an SCF method starts from its default guess, not from another frame's density), so the result
does not depend on the order of evaluation or on ``--jobs``.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from harness.errors import UserError

#: The reference when a challenge does not name one.
DEFAULT_REFERENCE_MODEL = "xtb"


@dataclass(frozen=True)
class ReferenceMethod:
    """A registry model used as the reference: name, model file and calculator options."""

    name: str
    model_file: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Short name for tables: ``xtb``, or ``gap-model`` with a model file."""
        text = self.name.replace(":", "-")
        return f"{text}-{Path(self.model_file).stem}" if self.model_file else text

    @property
    def identity(self) -> str:
        """What makes two methods give the same numbers (part of every cache key)."""
        return json.dumps([self.name, self.model_file, self.options], sort_keys=True)


def reference_method(challenge: Any, name: str | None = None, model_file: str | None = None,
                     option_items: list[str] | None = None) -> ReferenceMethod:
    """The reference of a challenge, or the model the user chose instead.

    Parameters
    ----------
    challenge
        A loaded :class:`harness.challenges.Challenge`.
    name
        ``--reference-model``; None takes the challenge's ``reference_model`` (or the ``model``
        of its ``[reference]`` table; default ``xtb``).
    model_file, option_items
        ``--model-file`` and ``--model-option KEY=VALUE`` of the reference.
    """
    from harness import models
    from harness.config import model_options

    table = challenge.raw.get("reference", {})
    table = table if isinstance(table, dict) else {}
    declared = str(challenge.raw.get("reference_model")
                   or table.get("model") or DEFAULT_REFERENCE_MODEL)
    chosen = name or declared
    family = models.get_family(chosen)  # UserError for an unknown name
    options = model_options(option_items, [chosen])[chosen]
    if not options and chosen == table.get("model"):
        options = dict(table.get("options", {}))  # the settings of the shipped reference
    resolved = models.resolve_model_file(family, model_file, challenge.name, options)
    return ReferenceMethod(chosen, str(resolved) if resolved else None, options)


def frame_key(method: ReferenceMethod, atoms: Atoms) -> str:
    """SHA-256 of the method and the frame's content."""
    digest = hashlib.sha256(method.identity.encode())
    for array in (atoms.numbers.astype(np.int64), atoms.positions.astype(np.float64),
                  np.asarray(atoms.cell[:], dtype=np.float64), atoms.pbc.astype(np.int8),
                  atoms.get_initial_charges().astype(np.float64)):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


class ResultStore:
    """``{frame key: (energy_eV, forces_eV_per_A)}`` in one pickle file, written atomically.

    The file lives in the user's own output folder (``OUT/reports/reference-cache``); do not
    point it at a folder other people can write to.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, tuple[float, np.ndarray]] = {}
        self.added = 0
        if path is not None and path.is_file():
            try:
                with open(path, "rb") as handle:
                    stored = pickle.load(handle)
                if isinstance(stored, dict):
                    self.entries = stored
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
                self.entries = {}

    def save(self) -> None:
        """Write the file if anything was added."""
        if self.path is None or not self.added:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as handle:
                pickle.dump(self.entries, handle)
            tmp.replace(self.path)
        except OSError as exc:
            raise UserError(f"cannot write the reference cache {self.path} ({exc}); give a "
                            "writable --report-dir") from None
        self.added = 0


def store_for(method: ReferenceMethod, folder: Path | None) -> ResultStore:
    """The result store of a method in ``folder`` (None: remember nothing between calls)."""
    if folder is None:
        return ResultStore(None)
    name = hashlib.sha256(method.identity.encode()).hexdigest()[:12]
    return ResultStore(folder / f"{method.label}-{name}.pkl")


# One calculator per worker process, built once by the pool's initializer.
_WORKER: dict[str, Any] = {}


def _init_worker(method: ReferenceMethod, challenge_name: str) -> None:
    _WORKER["calc"] = build_calculator(method, challenge_name)


def build_calculator(method: ReferenceMethod, challenge_name: str) -> Any:
    """The method's ASE calculator (checked like a launch: installed, file, elements)."""
    from harness import challenges
    from harness.config import model_calculator

    calc, _ = model_calculator(method.name, method.model_file, dict(method.options),
                               challenges.load(challenge_name))
    parameters = getattr(calc, "parameters", None)
    if isinstance(parameters, dict) and "cache_api" in parameters:
        # tblite: let reset() drop the previous frame's wavefunction (see _evaluate_one)
        parameters["cache_api"] = False
    return calc


def _evaluate_one(atoms: Atoms, calc: Any) -> tuple[float, np.ndarray]:
    """Energy and forces of one frame, from scratch (NaN where the reference fails on it).

    ``reset()`` first: an SCF method must not start from the previous frame's density, or a
    frame's numbers would depend on which frame a worker happened to evaluate before it.
    """
    calc.reset()
    atoms = atoms.copy()
    atoms.calc = calc
    try:
        energy = float(atoms.get_potential_energy())
        forces = np.array(atoms.get_forces(), dtype=np.float64)
    except Exception:  # noqa: BLE001 - e.g. an SCF that does not converge on a wild frame
        # a frame the reference cannot evaluate is a result (NaN, left out and counted), not
        # a reason to lose the others; the calculator starts afresh on the next frame
        calc.reset()
        return float("nan"), np.full((len(atoms), 3), np.nan)
    return energy, forces


def _worker_call(atoms: Atoms) -> tuple[float, np.ndarray, float]:
    start = time.perf_counter()
    energy, forces = _evaluate_one(atoms, _WORKER["calc"])
    return energy, forces, time.perf_counter() - start


@dataclass
class Evaluation:
    """What one :func:`evaluate` call did: calls made, cached frames, seconds per call."""

    calls: int = 0
    cached: int = 0
    seconds: float = 0.0

    @property
    def seconds_per_call(self) -> float:
        """Mean wall time of one reference call (0 when none was made)."""
        return self.seconds / self.calls if self.calls else 0.0


def evaluate(method: ReferenceMethod, challenge_name: str, frames: list[Atoms],
             store: ResultStore, jobs: int = 1, max_calls: int | None = None,
             max_seconds: float | None = None,
             announce: Callable[[str], None] | None = None,
             on_fraction: Callable[[float], None] | None = None,
             ) -> tuple[list[tuple[float, np.ndarray]], Evaluation]:
    """Reference energy (eV) and forces (eV/A) of every frame, from the store or computed.

    The first frame to compute is timed alone; ``announce`` is then told the expected cost of
    the rest. More than ``max_calls`` frames to compute is a :class:`UserError` (before any
    work starts), and so is an expected time above ``max_seconds`` (after the first call; what
    was computed stays in the store). ``jobs`` > 1 runs worker processes with one OpenMP
    thread each.
    """
    keys = [frame_key(method, a) for a in frames]
    todo = list(dict.fromkeys(k for k in keys if k not in store.entries))
    info = Evaluation(cached=sum(1 for k in keys if k in store.entries))
    if max_calls is not None and len(todo) > max_calls:
        raise UserError(f"{len(todo)} frames need a {method.label} call, more than --max-frames "
                        f"{max_calls}: raise --max-frames, or take fewer frames per run")
    if todo:
        by_key = {k: a for k, a in zip(keys, frames, strict=True)}
        jobs = max(1, min(jobs, len(todo)))
        if jobs == 1:
            budget = (announce, max_seconds, on_fraction)
            try:
                _compute_serial(method, challenge_name, todo, by_key, store, info, budget)
            finally:
                store.save()
        else:
            budget = (announce, max_seconds, on_fraction)
            try:
                _compute_parallel(method, challenge_name, todo, by_key, store, info, jobs,
                                  budget)
            finally:
                store.save()
    return [store.entries[k] for k in keys], info


def _say_cost(announce: Callable[[str], None] | None, method: ReferenceMethod, n: int,
              seconds_per_call: float, jobs: int, cached: int,
              max_seconds: float | None = None) -> None:
    total = seconds_per_call * n / jobs
    if max_seconds is not None and total > max_seconds:
        raise UserError(f"{n} frames need a {method.label} call, about {total:.0f} s "
                        f"({seconds_per_call:.3g} s per call): more than {max_seconds:.0f} s; "
                        "run `analysis errors OUT --jobs N` / `analysis triage OUT --jobs N` "
                        "first (results are cached)")
    if announce is None:
        return
    announce(f"{method.label}: {n} reference calls ({cached} frames cached), "
             f"{seconds_per_call:.3g} s per call, about {total:.0f} s with {jobs} job(s)")


def _compute_serial(method, challenge_name, todo, by_key, store, info, budget) -> None:
    announce, max_seconds, on_fraction = budget
    calc = build_calculator(method, challenge_name)
    for i, key in enumerate(todo):
        start = time.perf_counter()
        store.entries[key] = _evaluate_one(by_key[key], calc)
        info.seconds += time.perf_counter() - start
        info.calls += 1
        store.added += 1
        if i == 0:
            _say_cost(announce, method, len(todo), info.seconds, 1, info.cached, max_seconds)
        if on_fraction is not None:
            on_fraction((i + 1) / len(todo))


def _compute_parallel(method, challenge_name, todo, by_key, store, info, jobs,
                      budget) -> None:
    announce, max_seconds, on_fraction = budget
    from harness import models

    models.get_family(method.name).check_installed()  # a clear message, not a broken pool
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # workers share the cores: one thread each
    try:
        context = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(
                jobs, mp_context=context, initializer=_init_worker,
                initargs=(method, challenge_name)) as pool:
            first = pool.submit(_worker_call, by_key[todo[0]]).result()
            _store(store, info, todo[0], first)
            _say_cost(announce, method, len(todo), first[2], jobs, info.cached, max_seconds)
            futures = {pool.submit(_worker_call, by_key[k]): k for k in todo[1:]}
            for done, future in enumerate(concurrent.futures.as_completed(futures), 2):
                _store(store, info, futures[future], future.result())
                if on_fraction is not None:
                    on_fraction(done / len(todo))
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved


def _store(store: ResultStore, info: Evaluation, key: str,
           result: tuple[float, np.ndarray, float]) -> None:
    store.entries[key] = (result[0], result[1])
    store.added += 1
    info.calls += 1
    info.seconds += result[2]
