"""``python -m harness.launch``: plan the crash test and run it locally.

Thin layer: parse flags (see :mod:`harness.config`), build the plan, hand it to a launcher.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from harness import challenges, config, protocols, slurm, storage
from harness.batch import check_batch, pending_tasks, task_runs
from harness.errors import UserError
from harness.local import LocalLauncher, pending
from harness.runner import run_spec
from harness.units import format_time_ps


def _print_plan(plan, todo) -> None:
    first = plan[0]
    models = sorted({s.model_label for s in plan})
    temps = sorted({s.temperature_K for s in plan})
    dts = ", ".join(f"{dt:g}" for dt in sorted({s.dt_fs for s in plan}))
    heat = first.protocol_options.get("end_K")  # a heating ramp: where it ends
    heated = f" heated to {heat:g} K" if heat is not None else ""
    print(f"plan: challenge {first.challenge}, models {', '.join(models)}, "
          f"T = {', '.join(f'{t:g}' for t in temps)} K{heated}, "
          f"{len({s.replica for s in plan})} replicas, {format_time_ps(first.length_ps)} each "
          f"(dt {dts} fs, {first.n_steps} steps, frame every {first.stride} steps): "
          f"{len(plan)} runs, {len(todo)} to do")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for user errors, 1 if any run failed)."""
    parser = config.build_parser()
    parser.add_argument("--submit", action="store_true",
                        help="submit the runs to Slurm (job array + analysis job) and exit")
    parser.add_argument("--farm", type=int, metavar="RANKS",
                        help="with --submit: one MPI task-farm job of RANKS ranks, no array")
    parser.add_argument("--slurm-template", metavar="FILE.sh",
                        help="with --submit: the array script (default slurm/run_challenge.sh)")
    parser.add_argument("--sbatch-option", action="append", default=[], metavar="OPTION",
                        help="with --submit: extra sbatch option for the runs, repeatable "
                        "(e.g. --sbatch-option=--ntasks=8)")
    args = parser.parse_args(argv)
    if args.submit:
        return _submit(sys.argv[1:] if argv is None else argv, args)
    try:
        settings = config.resolve_settings(args)
        protocol = protocols.protocol_of(settings)
        if protocol.launch is not None:  # a protocol that runs as a whole (replica exchange)
            if not settings["dry_run"]:
                storage.check_writable(Path(settings["out"]).expanduser().resolve())
            return protocol.launch(settings)
        plan = protocol.plan(settings)
        if not settings["dry_run"]:  # before any run starts (and before --task's run)
            storage.check_writable(Path(settings["out"]).expanduser().resolve())
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        check_batch(plan, settings["batch"])
        if settings["task"] is not None:  # one array task: a run, or with --batch a group
            plan = task_runs(plan, settings["task"], settings["batch"])
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    busy: list = []
    todo, done = pending(plan, settings["retry_failed"], busy)
    _print_plan(plan, todo)
    if settings["dry_run"]:
        for i, spec in enumerate(plan):
            state = "to do" if spec in todo else "running elsewhere" if any(
                spec == b for b, _ in busy) else "done"
            print(f"  [{i:3d}] {spec.name:50s} seed {spec.seed:<11d} {state}  -> {spec.out_file}")
        return 0
    grouped = settings["batch"] > 1
    if settings["task"] is not None:
        jobs = 1
    else:
        jobs = settings["jobs"] or (1 if grouped else config.default_jobs())
    if settings["threads"] is None:  # the cores left over by the runs side by side
        # with --batch only the groups' clients compute: the cores go to them
        threads = config.default_threads(min(jobs, max(1, len(todo))))
        todo = [dataclasses.replace(spec, omp_threads=threads) for spec in todo]
    if settings["task"] is not None and not grouped:
        for spec, why in busy:
            print(f"{spec.name}: skipped, {why}", flush=True)
        outcomes = [run_spec(spec) for spec in todo]
        for spec, outcome in zip(todo, outcomes, strict=True):
            if outcome.status == "skipped":
                print(f"{spec.name}: skipped, {outcome.note}", flush=True)
                continue
            print(f"{spec.name}: {outcome.status} at step {outcome.last_step} of {spec.n_steps} "
                  f"({outcome.frames} frames in {spec.out_file})", flush=True)
        infra = [o for o in outcomes if o.status == "failed"
                 and (o.failure or {}).get("kind") in INFRASTRUCTURE_FAILURES]
        return 1 if infra else (3 if any(o.status == "interrupted" for o in outcomes) else 0)
    summary = _launcher(settings, jobs).run(todo, done, busy)
    out = settings["out"]
    print(f"{len(summary.completed)} completed, {len(summary.failed)} failed, "
          f"{len(summary.interrupted)} interrupted, {len(summary.skipped)} already done, "
          f"{len(summary.busy)} skipped (running elsewhere); "
          f"{summary.simulated_ps:.2f} ps simulated in {summary.wall_s:.0f} s")
    for name, reason, _ in summary.failed:
        print(f"  failed: {name}: {reason}")
    for name, reason in summary.busy:
        print(f"  skipped: {name}: {reason}")
    print(f"trajectories: {out}/<challenge>/<model>/<T>K/replica-NN.h5  "
          f"(inspect one with: analysis info FILE.h5)")
    if summary.completed or summary.failed:
        print(f"results: analysis report {out}  (stability, observables, and verdicts with "
              "their intervals against the reference, as HTML)")
    if summary.interrupted:
        print("interrupted runs resume where they stopped when you run the same command again")
    if is_demo(settings):
        full = challenges.load(settings["challenge"]).protocol
        temps = "/".join(f"{t:g}" for t in full.temperatures_K)
        print(f"this was the short demo; the full TEA-2023 protocol ({full.replicas} replicas x "
              f"{temps} K x {format_time_ps(full.length_ps)}) is: python -m harness.launch --model "
              + ",".join(settings["model"])
              + "".join(f" --model-file {f}" for f in settings["model_file"] or [])
              + "".join(f" --label {label}" for label in settings.get("label") or [])
              + f" --challenge {settings['challenge']} --preset tea2023"
              "  (or on a cluster: sbatch slurm/run_challenge.sh)")
    return exit_code(summary)


def is_demo(settings: dict) -> bool:
    """Whether the launch was the short demo: the demo preset with none of its sizes changed."""
    return settings["preset"] == "demo" and settings.get("protocol") in (None, "md") and all(
        settings[key] is None for key in ("time", "temperatures", "replicas", "dt", "stride"))


def _launcher(settings: dict, jobs: int) -> LocalLauncher:
    """The local launcher; with ``--batch N`` one shared force client per N runs."""
    if settings["batch"] == 1:
        return LocalLauncher(jobs, live=not settings["quiet"])
    from harness.batch import GroupLauncher

    return GroupLauncher(jobs, settings["batch"], Path(settings["out"]),
                         live=not settings["quiet"])


def _submit(argv: list[str], args) -> int:
    """``--submit``: plan as the Slurm tasks will, then sbatch the pending runs."""
    try:
        task_args = slurm.task_arguments(slurm.strip_submit_flags(argv), os.environ)
        settings = config.resolve_settings(config.build_parser().parse_args(task_args))
        storage.check_writable(Path(settings["out"]).expanduser().resolve())
        if settings["task"] is not None:
            raise UserError("--task and --submit exclude each other: --submit makes the tasks")
        protocol = protocols.protocol_of(settings)
        if protocol.submit is not None:  # a protocol with its own Slurm submission
            return protocol.submit(task_args, settings, args)
        batch = settings["batch"]
        if batch > 1 and args.farm:
            raise UserError("--farm and --batch exclude each other: submit the groups as an "
                            "array (--submit --batch N) or drop --batch for the task farm")
        plan = protocol.plan(settings)
        check_batch(plan, batch)
        todo, _ = pending(plan, settings["retry_failed"])
        _print_plan(plan, todo)
        indices = pending_tasks(plan, todo, batch)
        out = Path(settings["out"]).expanduser().resolve()
        submission = slurm.submit(task_args, len(plan), indices, out, farm_ranks=args.farm,
                                  template=args.slurm_template,
                                  sbatch_options=args.sbatch_option,
                                  batch=batch, n_runs=len(todo),
                                  analysis="stability" if protocol.report_section is None
                                  else "report")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(slurm.describe(submission, out))
    return 0


#: Failures of the machinery rather than of the model: these make the exit code non-zero.
INFRASTRUCTURE_FAILURES = ("driver_died", "server_exited", "stalled", "harness_error",
                           "runner_error", "disk_full", "write_error")


def exit_code(summary) -> int:
    """0 when every run ended (a model that breaks is a result), 1 when runs could not run
    (dead processes, hangs, harness errors), 3 when interrupted."""
    if any(kind in INFRASTRUCTURE_FAILURES for _, _, kind in summary.failed):
        return 1
    return 3 if summary.interrupted else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into head
        sys.exit(0)
