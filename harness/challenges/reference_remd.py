"""An equilibrium reference from replica exchange: pilot numbers, two-ladder convergence, shipping.

``python -m harness.launch --protocol remd`` runs the ladders (:mod:`harness.protocols.remd`);
this module judges and packages them:

``pilot FOLDER``
    For one ladder folder (``OUT/<challenge>/<label>``): acceptance per neighbouring pair,
    round trips, the potential-energy heat capacity at each temperature and the ladder it
    suggests (20-30% acceptance), the longest bond at each temperature (does the method hold
    the molecule together at the top?), for each Ramachandran pair how often each
    temperature's frames lie in the left-handed region (0 < phi < 126 degrees), and along each
    walker's own trajectory (followed through its exchanges) how often it enters and leaves
    that region and how long it stays: the time between entries sets how long a ladder must
    run.
``converge FOLDER1 FOLDER2 [--temperature 500]``
    The two ladders' densities at one temperature: JS divergence and Hellinger distance per
    pair, with 95% intervals from time blocks of each ladder, against half the challenge's
    tolerance (converged when every pair's upper bound is below it).
``visits FILE...``
    For straight runs (a probe of a candidate top temperature): each file's left-handed visits
    per pair along its trajectory and its longest bond: does the top temperature let a walker
    leave a basin within a round trip, and does it hold the molecule together?
``ship FOLDER... --temperature 500``
    The frames at that temperature of each ladder, compacted as the straight references are
    (:func:`harness.challenges.reference_md.compact`), into the challenge's
    ``reference/equilibrium/`` as ``<model>-<T>K-remd-ladderL.h5``; the ``reference`` attribute
    names the method, temperature, ``kind = "equilibrium"`` and the ``ladder``.

Run on the development machine for Challenge I (GFN2-xTB, docs/reference.md has the numbers)::

    OMP_NUM_THREADS=1 python -m harness.launch --model xtb --protocol remd --ladder 500K:900K:6 \\
        --ladder-id 1 --time 40ps --stall-timeout 1h --out remd   # and --ladder-id 2
    cd remd/alanine-tetrapeptide
    python -m harness.challenges.reference_remd converge xtb-remd-ladder1 xtb-remd-ladder2
    python -m harness.challenges.reference_remd ship xtb-remd-ladder*
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from harness import challenges, h5md, jsonutil
from harness.errors import UserError
from harness.protocols import remd
from harness.units import KB_EV_PER_K

#: The left-handed region of a (phi, psi) pair, as docs/reference.md counts it.
LEFT_HANDED_PHI_DEG = (0.0, 126.0)
#: Time blocks per ladder for the convergence intervals.
N_BLOCKS = 8


def _plan(folder: Path) -> remd.RemdPlan:
    path = folder / "remd" / "plan.json"
    if not path.exists():
        raise UserError(f"{folder}: no replica-exchange run here (no remd/plan.json); give "
                        "the folder OUT/<challenge>/<label> of a --protocol remd launch")
    return remd.RemdPlan.from_json(path.read_text())


def challenge_of(plan: remd.RemdPlan) -> challenges.Challenge:
    """The ladder's challenge (:func:`challenge_named`)."""
    return challenge_named(plan.challenge, plan.start_files[0])


def challenge_named(name: str, start_file: str) -> challenges.Challenge:
    """A run's challenge: by name, else the folder its start came from (an own challenge
    outside the search path, e.g. made with ``challenges new --dir mine``)."""
    try:
        return challenges.load(name)
    except UserError:
        return challenges.load(str(Path(start_file).resolve().parent.parent))


def _angles(files: list[Path], challenge: challenges.Challenge, skip_ps: float = 0.0):
    from analysis.observables.ramachandran import compute as rama

    pairs = rama.challenge_pairs(challenge)
    return pairs, rama.read_group(files, pairs, stride=1, skip_ps=skip_ps)


def left_handed(phi_deg: np.ndarray) -> float:
    """Fraction of frames in the left-handed region."""
    inside = (phi_deg > LEFT_HANDED_PHI_DEG[0]) & (phi_deg < LEFT_HANDED_PHI_DEG[1])
    return float(inside.mean()) if inside.size else float("nan")


#: Hysteresis of a basin visit (degrees): a walker enters the left-handed region when its phi
#: lies this far inside it and leaves when it lies this far outside, so that a recrossing of
#: the edge within a vibration is not counted as a visit.
VISIT_MARGIN_DEG = 15.0


def basin_visits(phi_deg: np.ndarray, dt_ps: float,
                 region: tuple[float, float] = LEFT_HANDED_PHI_DEG,
                 margin: float = VISIT_MARGIN_DEG) -> dict[str, Any]:
    """Visits of one continuous trajectory to a phi region, with hysteresis.

    Parameters
    ----------
    phi_deg
        The angle along one walker's own trajectory (not one temperature's frames: those
        change walker at every accepted exchange, and an exchange is no crossing).
    dt_ps
        Time between frames.
    region
        (low, high) in degrees, low < high within (-180, 180].
    margin
        The walker is inside once phi is in (low + margin, high - margin) and outside once
        phi is more than ``margin`` beyond either edge; in between it keeps its last state.

    Returns
    -------
    dict
        ``share`` (fraction of frames inside, by the plain region), ``entries`` and ``exits``
        (completed crossings), ``visits_ps`` (length of each stay inside, the last one open
        where the trajectory ends inside), ``longest_visit_ps``, ``time_in_ps``,
        ``time_out_ps``.
    """
    phi = np.asarray(phi_deg, dtype=float)
    low, high = region
    inside_core = (phi > low + margin) & (phi < high - margin)
    wrapped = (phi - low) % 360.0  # distance past ``low``, going up
    outside_core = (wrapped > (high - low) + margin) & (wrapped < 360.0 - margin)
    state = np.full(phi.shape, -1, dtype=np.int8)
    state[inside_core] = 1
    state[outside_core] = 0
    known = np.flatnonzero(state >= 0)
    if known.size:  # carry the last assigned state over the margins
        filled = np.maximum.accumulate(np.where(state >= 0, np.arange(len(state)), -1))
        state = np.where(filled >= 0, state[np.maximum(filled, 0)], state[known[0]])
    changes = np.flatnonzero(np.diff(state) != 0) + 1
    entries = int(np.sum(state[changes] == 1))
    exits = int(np.sum(state[changes] == 0))
    bounds = np.concatenate([[0], changes, [len(state)]])
    visits = [float((b - a) * dt_ps) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
              if len(state) and state[a] == 1]
    plain = (phi > low) & (phi < high)
    n_in = int(np.sum(state == 1))
    return {"share": float(plain.mean()) if phi.size else float("nan"),
            "entries": entries, "exits": exits, "visits_ps": visits,
            "longest_visit_ps": max(visits, default=0.0),
            "time_in_ps": n_in * dt_ps, "time_out_ps": (len(state) - n_in) * dt_ps}


def walker_visits(folder: Path, plan: remd.RemdPlan,
                  challenge: challenges.Challenge) -> dict[str, Any]:
    """Left-handed visits of each walker along its own trajectory, for every pair.

    Returns, per pair name, the walkers' :func:`basin_visits` and the pooled numbers: the
    left-handed share of all walker time, the entries, walker-ps per entry (time for one
    in-and-out cycle), and split-R-hat of the walkers' left-handed indicators
    (:func:`analysis.stats.split_rhat`; above 1.1 the walkers disagree: the ladder has not
    mixed this coordinate, however well it exchanges).
    """
    from analysis import stats

    where = remd.walker_temperatures(folder, plan)
    per_temperature = []
    times = np.zeros(0)
    for temp in plan.temperatures_K:
        pairs, data = _angles([remd.temperature_file(folder, temp)], challenge)
        per_temperature.append(data.angles[:where.shape[1]].astype(float))
        times = data.times_ps[:where.shape[1]]
    dt_ps = float(times[1] - times[0]) if len(times) > 1 else 0.0
    walker_angles = remd.along_walkers(where, np.stack(per_temperature))
    low, high = LEFT_HANDED_PHI_DEG
    out: dict[str, Any] = {}
    for k, pair in enumerate(pairs):
        phi = walker_angles[:, :, 2 * k]
        walkers = [basin_visits(row, dt_ps) for row in phi]
        t_in = sum(v["time_in_ps"] for v in walkers)
        t_all = t_in + sum(v["time_out_ps"] for v in walkers)
        entries = sum(v["entries"] for v in walkers)
        rhat = stats.split_rhat(((phi > low) & (phi < high)).astype(float))
        out[pair.name] = {
            "walkers": [{"share": round(v["share"], 3), "entries": v["entries"],
                         "exits": v["exits"], "longest_visit_ps": round(v["longest_visit_ps"], 2)}
                        for v in walkers],
            "share": round(float(np.mean([v["share"] for v in walkers])), 4)
            if walkers and phi.shape[1] else None,
            "entries": entries,
            "walker_ps_per_entry": round(t_all / entries, 1) if entries else None,
            "mean_visit_ps": round(float(np.mean([x for v in walkers for x in v["visits_ps"]])),
                                   2) if t_in else 0.0,
            "split_rhat": round(rhat, 3) if math.isfinite(rhat) else rhat,
            "mixed": bool(rhat <= stats.RHAT_FLAG)}
    return out


def longest_bond(path: Path) -> float:
    """The longest bonded distance (bonds of the start structure) over a file's frames (A)."""
    from harness.stability.criteria import Geometry, bond_topology

    numbers = np.asarray(h5md.read_meta(path)["species"], dtype=int)
    start, _ = h5md.read_start(path)
    bonds = bond_topology(Geometry(numbers), start)
    worst = 0.0
    with h5md.open_file(path, "r") as f:
        pos = f[f"{h5md.PARTICLES}/position/value"]
        for a in range(0, pos.shape[0], 2000):
            block = pos[a:a + 2000]
            d = np.linalg.norm(block[:, bonds[:, 0]] - block[:, bonds[:, 1]], axis=-1)
            worst = max(worst, float(d.max()) if d.size else 0.0)
    return worst


def pilot(folder: Path) -> dict[str, Any]:
    """The pilot's numbers for one ladder (see the module docstring)."""
    plan = _plan(folder)
    challenge = challenge_of(plan)
    record = remd.read_record(folder / remd.RECORD)
    rows = []
    heat = []
    for temp in plan.temperatures_K:
        path = remd.temperature_file(folder, temp)
        u = h5md.read_observables(path, ("potential_energy",))["potential_energy"]
        half = u[len(u) // 5:]  # the first fifth as equilibration
        cv = float(np.var(half) / (KB_EV_PER_K * temp) ** 2)
        heat.append(cv)
        pairs, data = _angles([path], challenge)
        row: dict[str, Any] = {"temperature_K": temp, "frames": int(len(u)),
                               "heat_capacity_kB": round(cv, 1),
                               "longest_bond_A": round(longest_bond(path), 3)}
        for k, pair in enumerate(pairs):
            row[f"left_handed_{pair.name}"] = round(left_handed(data.angles[:, 2 * k]
                                                                .astype(float)), 4)
        rows.append(row)
    low, high = plan.temperatures_K[0], plan.temperatures_K[-1]
    suggestion = remd.suggest_ladder(low, high, max(heat), acceptance=0.25)
    return {"ladder": plan.temperatures_K, "steps": record["n_steps"],
            "ps_per_temperature": round(record["n_steps"] * plan.dt_fs * 1e-3, 4),
            "acceptance": record["acceptance"], "attempted": record["attempted"],
            "round_trips": record["round_trips"], "per_temperature": rows,
            "walkers_left_handed": walker_visits(folder, plan, challenge),
            "suggested_ladder_25pct": suggestion}


def _block_histograms(files: list[Path], challenge: challenges.Challenge, skip_ps: float,
                      n_blocks: int):
    from analysis.observables.ramachandran import compute as rama

    pairs, data = _angles(files, challenge, skip_ps)
    settings = rama.settings_for(challenge, {})
    hists = rama.unit_histograms(data, len(pairs), settings, n_blocks=n_blocks)
    return pairs, hists, len(data.times_ps)


def converge(folder_a: Path, folder_b: Path, temperature_K: float, skip_ps: float = 0.0,
             tolerance_bits: float | None = None) -> dict[str, Any]:
    """JS and Hellinger per Ramachandran pair between two ladders at one temperature."""
    from analysis import divergence, stats

    plan = _plan(folder_a)
    challenge = challenge_of(plan)
    if tolerance_bits is None:
        tolerance_bits = float(challenge.raw.get("ramachandran", {}).get("tolerance_js_bits",
                                                                         0.15))
    files = [remd.temperature_file(f, temperature_K) for f in (folder_a, folder_b)]
    for f in files:
        if not f.exists():
            raise UserError(f"{f}: missing; is {temperature_K:g} K on both ladders?")
    pairs, hist_a, n_a = _block_histograms([files[0]], challenge, skip_ps, N_BLOCKS)
    _, hist_b, n_b = _block_histograms([files[1]], challenge, skip_ps, N_BLOCKS)
    width = hist_a.shape[1] // len(pairs)
    out: dict[str, Any] = {"temperature_K": temperature_K, "frames": [n_a, n_b],
                           "half_tolerance_bits": tolerance_bits / 2, "pairs": {}}
    for k, pair in enumerate(pairs):
        cols = slice(k * width, (k + 1) * width)
        a, b = hist_a[:, cols], hist_b[:, cols]

        def js(x: np.ndarray, y: np.ndarray) -> float:
            return divergence.jensen_shannon(x / x.sum(), y / y.sum())

        def hel(x: np.ndarray, y: np.ndarray) -> float:
            return divergence.hellinger(x / x.sum(), y / y.sum())

        result = {}
        for name, fn in (("js_bits", js), ("hellinger", hel)):
            ci = stats.bootstrap_histograms([a, b], fn, method="time blocks",
                                            interval="basic")
            hi = min(1.0, ci.high)
            result[name] = [round(ci.value, 4), round(max(0.0, ci.low), 4), round(hi, 4)]
        result["converged"] = bool(result["js_bits"][2] < tolerance_bits / 2)
        out["pairs"][pair.name] = result
    out["converged"] = all(p["converged"] for p in out["pairs"].values())
    return out


def ship(folders: list[Path], temperature_K: float, dest: Path | None = None,
         every: int = 1, method: str = "GFN2-xTB (tblite)") -> list[Path]:
    """Compact each ladder's frames at one temperature into ``reference/equilibrium/``."""
    from harness.challenges.reference_md import compact

    written = []
    agreement = None
    if len(folders) == 2:  # two ladders: whether they agree travels with the files
        found = converge(folders[0], folders[1], temperature_K)
        agreement = {"converged": found["converged"],
                     "half_tolerance_bits": found["half_tolerance_bits"],
                     "two_ladder_js_bits": {k: v["js_bits"] for k, v in found["pairs"].items()}}
    for folder in folders:
        plan = _plan(folder)
        challenge = challenge_of(plan)
        target = dest or challenge.path / "reference" / "equilibrium"
        src = remd.temperature_file(folder, temperature_K)
        record = remd.read_record(folder / remd.RECORD)
        name = f"{plan.model}-{temperature_K:g}K-remd-ladder{plan.ladder}.h5"
        note = {"made_by": "python -m harness.challenges.reference_remd ship",
                "source": str(src.relative_to(folder.parent)), "ladder_K": plan.temperatures_K,
                "exchange_stride": plan.exchange_stride, "round_trips": record["round_trips"],
                "acceptance": record["acceptance"]}
        ref = {"method": method, "temperature_K": temperature_K, "kind": "equilibrium",
               "ladder": plan.ladder, "ladder_K": plan.temperatures_K,
               "made_by": "python -m harness.challenges.reference_remd ship",
               "source_status": record["status"], **(agreement or {})}
        kept = compact(src, target / name, note, every=every, reference=ref)
        print(f"{target / name}: {kept['frames']} frames every {kept['frame_interval_fs']:g} "
              f"fs, {kept['simulated_ps']:.2f} ps, {(target / name).stat().st_size / 1e6:.2f} MB")
        written.append(target / name)
    return written


def straight_visits(files: list[Path]) -> list[dict[str, Any]]:
    """For straight runs (e.g. a probe of the top temperature before choosing a ladder): per
    file, the left-handed visits of each Ramachandran pair (:func:`basin_visits`) and the
    longest bond."""
    rows = []
    for path in files:
        if not Path(path).is_file():
            raise UserError(f"{path}: no such trajectory file; give the runs' .h5 files")
        try:
            spec = h5md.read_meta(path)["run_spec"]
            name, start_file = spec["challenge"], spec["start_file"]
        except (OSError, KeyError) as exc:
            raise UserError(f"{path} is not a tea-harness H5MD trajectory ({exc}); give the "
                            "runs' .h5 files") from None
        challenge = challenge_named(name, start_file)
        pairs, data = _angles([path], challenge)
        dt = float(data.times_ps[1] - data.times_ps[0]) if len(data.times_ps) > 1 else 0.0
        row: dict[str, Any] = {"file": str(path),
                               "temperature_K": spec.get("temperature_K"),
                               "ps": round(float(data.times_ps[-1]) if len(data.times_ps)
                                           else 0.0, 2),
                               "longest_bond_A": round(longest_bond(path), 3)}
        for k, pair in enumerate(pairs):
            v = basin_visits(data.angles[:, 2 * k].astype(float), dt)
            row[pair.name] = {"share": round(v["share"], 3), "entries": v["entries"],
                              "exits": v["exits"],
                              "visits_ps": [round(x, 2) for x in v["visits_ps"]]}
        rows.append(row)
    return rows


def _print_json(data: dict[str, Any]) -> None:
    print(jsonutil.dumps(data, indent=1))


def main(argv: list[str] | None = None) -> int:
    """Command line: pilot | converge | ship (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m harness.challenges.reference_remd",
                                     description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pilot", help="a ladder's acceptance, heat capacities, basins, bonds")
    p.add_argument("folder", type=Path)
    c = sub.add_parser("converge", help="two ladders' densities at one temperature")
    c.add_argument("folders", type=Path, nargs=2)
    c.add_argument("--temperature", type=float, default=500.0)
    c.add_argument("--skip", type=float, default=0.0, help="ps left out at the start")
    v = sub.add_parser("visits", help="left-handed visits and longest bond of straight runs")
    v.add_argument("files", type=Path, nargs="+")
    s = sub.add_parser("ship", help="compact the ladders' frames at one temperature")
    s.add_argument("folders", type=Path, nargs="+")
    s.add_argument("--temperature", type=float, default=500.0)
    s.add_argument("--every", type=int, default=1)
    s.add_argument("--dest", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "pilot":
            _print_json(pilot(args.folder))
        elif args.command == "visits":
            _print_json({"runs": straight_visits(args.files)})
        elif args.command == "converge":
            _print_json(converge(*args.folders, args.temperature, args.skip))
        else:
            ship(args.folders, args.temperature, args.dest, args.every)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
