"""Replica exchange between neighbouring temperatures, inside i-PI, with every attempt logged.

i-PI's own ``<smotion mode='remd'>`` tries every pair of systems, each with probability
1/stride per step, and writes only the temperature index of each system after a step with an
accepted swap: the attempts cannot be counted afterwards, and pairs far apart on the ladder
(which almost never swap) take their share of the random numbers. This replaces its ``step``
(installed by :mod:`harness.engines.ipi_server` when the server gets ``--exchange-log``) by
the usual scheme: every ``stride`` steps, neighbouring temperatures are tried, the even pairs
(0-1, 2-3, ...) and the odd pairs (1-2, 3-4, ...) in turn (deterministic even-odd; Okabe et al.
2001, Syed et al. 2022 for its round trips). The acceptance test is i-PI's own: swap the
ensembles, rescale the momenta by sqrt(T_new/T_old) so that only the potential energies
decide, and accept with probability min(1, exp(log p_new - log p_old)) from i-PI's random
stream, which i-PI's checkpoints keep. Each system gets its own random stream for its
thermostat (:func:`own_streams`): i-PI's threads made shared draws come in any order.

Each attempt is one line of the log, written and flushed at the step it happens::

    step pair system_low system_high accepted probability

``step`` is the label i-PI gives the frames written after the step (its ``step`` property),
``pair`` k tries the k-th and (k+1)-th temperatures of the ladder, ``system_*`` are i-PI's
system indices (walkers) that held them before the attempt.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

#: Columns of the exchange log.
LOG_COLUMNS = ("step", "pair", "system_low", "system_high", "accepted", "probability")


def _swap_momenta(sys_a: Any, sys_b: Any, t_a: float, t_b: float) -> None:
    """Rescale the momenta of two systems that trade temperatures t_a <-> t_b."""
    sys_a.beads.p *= math.sqrt(t_b / t_a)
    sys_b.beads.p *= math.sqrt(t_a / t_b)


def attempt(sys_i: Any, sys_j: Any, prng: Any, rescale: bool) -> tuple[bool, float]:
    """Try to swap the ensembles (temperatures) of two i-PI systems; i-PI's acceptance rule.

    Returns (accepted, acceptance probability min(1, exp(...))).
    """
    from ipi.engine.ensembles import ensemble_swap

    t_i, t_j = sys_i.ensemble.temp, sys_j.ensemble.temp
    econs_i, econs_j = sys_i.ensemble.econs, sys_j.ensemble.econs
    before = sys_i.ensemble.lpens + sys_j.ensemble.lpens
    ensemble_swap(sys_i.ensemble, sys_j.ensemble)
    if rescale:
        _swap_momenta(sys_i, sys_j, t_i, t_j)
    after = sys_i.ensemble.lpens + sys_j.ensemble.lpens
    log_ratio = after - before
    probability = 1.0 if log_ratio >= 0 else math.exp(log_ratio)
    if probability > prng.u:
        # carry the jump of the conserved quantity in each ensemble's energy account (i-PI)
        sys_i.ensemble.eens += econs_i - sys_i.ensemble.econs
        sys_j.ensemble.eens += econs_j - sys_j.ensemble.econs
        return True, probability
    ensemble_swap(sys_i.ensemble, sys_j.ensemble)
    if rescale:
        _swap_momenta(sys_i, sys_j, t_j, t_i)
    return False, probability


def neighbour_step(self: Any, step: int | None = None) -> None:
    """``ReplicaExchange.step`` replaced: even-odd neighbour attempts every ``stride`` steps."""
    stride = int(round(self.stride))
    if stride <= 0 or step is None or (step + 1) % stride:
        return
    systems = self.syslist
    order = sorted(range(len(systems)), key=lambda s: systems[s].ensemble.temp)
    parity = ((step + 1) // stride) % 2
    lines = []
    swapped = False
    for pair in range(parity, len(order) - 1, 2):
        low, high = order[pair], order[pair + 1]
        accepted, probability = attempt(systems[low], systems[high], self.prng, self.rescalekin)
        if accepted:
            self.repindex[low], self.repindex[high] = self.repindex[high], self.repindex[low]
            swapped = True
        lines.append(f"{step + 1} {pair} {low} {high} {int(accepted)} {probability:.6g}\n")
    log = getattr(self, "_tea_log", None)
    if log is not None:
        log.write("".join(lines))
        log.flush()
    if swapped:  # i-PI's own record: each system's temperature index after the step
        self.sf.write(f"{step + 1: 10d}" + "".join(f" {i: 5d}" for i in self.repindex) + "\n")
        self.sf.force_flush()


def own_streams(syslist: Any, shared: Any) -> list[int]:
    """Give every system its own random stream in place of the simulation's shared one.

    i-PI steps its systems in parallel threads (``<simulation threading>``, on by default, and
    what lets several force clients or one batched client serve the walkers at once), and all
    of them draw their thermostat noise from the one simulation stream: in whatever order the
    threads get there, so the same input gave other trajectories each time (measured: walkers
    apart by 2 A after 1 ps of the double-well ladder). With a stream per system the draws no
    longer depend on the threads. The seeds come from the shared stream, which only the main
    thread uses from here on (the exchange attempts) and which i-PI's checkpoints keep: a run
    repeats itself exactly, and a resume from a checkpoint repeats itself too (the systems'
    streams start afresh from seeds drawn there; they are not in i-PI's checkpoint).

    Returns the seeds, in system order.
    """
    from ipi.utils.prng import Random

    seeds = []
    for system in syslist:
        seed = int(shared.u * (2**31 - 2)) + 1
        stream = Random(seed=seed)
        _replace(system, shared, stream, set())
        seeds.append(seed)
    return seeds


def _replace(obj: Any, old: Any, new: Any, seen: set[int], depth: int = 0) -> None:
    """Point every ``prng`` attribute that is ``old`` in i-PI objects under ``obj`` to ``new``
    (the system, its motion, integrator, thermostats and their sub-thermostats)."""
    if id(obj) in seen or depth > 6:
        return
    seen.add(id(obj))
    if isinstance(obj, (list, tuple)):
        for item in obj:
            _replace(item, old, new, seen, depth + 1)
        return
    if not type(obj).__module__.startswith("ipi.") or not hasattr(obj, "__dict__"):
        return
    for name, value in list(vars(obj).items()):
        if value is old and name == "prng":
            setattr(obj, name, new)
        elif name not in ("forces", "beads", "cell", "nm", "ensemble", "output_maker",
                          "simul", "bforce", "atoms"):  # not where streams live
            _replace(value, old, new, seen, depth + 1)


def install(log_path: Path) -> None:
    """Make i-PI's replica exchange use :func:`neighbour_step`, logging to ``log_path``."""
    from ipi.engine.smotion import remd

    original_bind = remd.ReplicaExchange.bind

    def bind(self: Any, syslist: Any, prng: Any, omaker: Any) -> None:
        original_bind(self, syslist, prng, omaker)
        own_streams(syslist, prng)
        self._tea_log = open(log_path, "a", encoding="ascii")  # noqa: SIM115 (lives with i-PI)

    remd.ReplicaExchange.bind = bind
    remd.ReplicaExchange.step = neighbour_step


def read_log(path: Path) -> list[tuple[int, int, int, int, int, float]]:
    """The complete lines of an exchange log (a line cut short by a kill is left out)."""
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text(encoding="ascii").splitlines():
        parts = line.split()
        if len(parts) != len(LOG_COLUMNS):
            continue
        try:
            rows.append((int(parts[0]), int(parts[1]), int(parts[2]), int(parts[3]),
                         int(parts[4]), float(parts[5])))
        except ValueError:
            continue
    return rows
