"""MPI task farm: one job of N ranks works through the run plan (for sites that cap arrays).

``srun -n N python -m harness.taskfarm LAUNCH-FLAGS...`` (see ``slurm/taskfarm.sh``). Rank 0 plans,
keeps the queue of pending runs and answers the other ranks' requests between polls of its own
run; every rank, rank 0 included, runs one plan entry at a time as
``python -m harness.launch LAUNCH-FLAGS --task I`` -- the command of an array task -- so the
farm and the array write the same files. A rank that finishes early asks for the next run.

SIGTERM, SIGINT or SIGUSR1 (Slurm's early warning, passed on by the template through srun as
SIGUSR1, since srun kills its step on SIGTERM) stops the farm softly:
each rank passes the signal to its run, which keeps its checkpoint, and no new run starts. A
rerun skips the finished runs and resumes the interrupted ones.

Exit code: 0 all runs ended (a model failure is a result), 1 a run could not run, 3 interrupted.
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness import procs

TAG_REQUEST = 11
TAG_WORK = 12
POLL_S = 0.2
#: Variables of the MPI launcher that must not reach the runs: an MPI program started by a run
#: (a LAMMPS client) would otherwise try to join this farm's MPI job.
_MPI_PREFIXES = ("PMI_", "PMIX_", "OMPI_", "MPI_LOCALRANKID", "MPI_LOCALNRANKS", "HYDRA_",
                 "HYDI_", "I_MPI_")
_EXIT_INTERRUPTED = 3


class _StopFlag:
    """Set by SIGTERM/SIGINT/SIGUSR1; read by the loops."""

    def __init__(self) -> None:
        self.set = False

    def __call__(self, signum, frame) -> None:
        self.set = True


def run_environment() -> dict[str, str]:
    """This process's environment minus the MPI launcher's variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_MPI_PREFIXES)}


class _Run:
    """One plan entry running as ``python -m harness.launch ... --task I``."""

    def __init__(self, launch_args: Sequence[str], index: int, log_dir: Path):
        self.index = index
        # A new session: a signal sent to this rank's process group reaches the run only
        # through this rank, once, as SIGTERM (its soft stop).
        # Slurm signals every process of the step: the run (and its i-PI and driver) must
        # ignore the USR1 meant for the ranks (an ignored signal stays ignored across exec).
        handler = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        try:
            self.proc = procs.start([sys.executable, "-m", "harness.launch", *launch_args,
                                     "--task", str(index)], log_dir / f"farm-task-{index}.log",
                                    env=run_environment(), new_session=True)
        finally:
            signal.signal(signal.SIGUSR1, handler)
        self.signalled = False

    def poll(self, stop: _StopFlag) -> int | None:
        if stop.set and not self.signalled and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.signalled = True
        return self.proc.poll()


def log_folder(launch_args: Sequence[str]) -> Path:
    """``OUT/slurm-logs``: where each run's output goes (``farm-task-I.log``)."""
    from harness import config
    from harness.slurm import LOG_FOLDER

    settings = config.resolve_settings(config.build_parser().parse_args(list(launch_args)))
    folder = Path(settings["out"]).expanduser().resolve() / LOG_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def pending_indices(launch_args: Sequence[str]) -> list[int]:
    """Plan indices of the runs still to do (planned as the tasks will plan)."""
    from harness import config, protocols
    from harness.batch import pending_tasks
    from harness.local import pending

    settings = config.resolve_settings(config.build_parser().parse_args(list(launch_args)))
    plan = protocols.protocol_of(settings).plan(settings)
    todo, _ = pending(plan, settings["retry_failed"])
    # with --batch N a task (--task K) is group K, as in the array
    return pending_tasks(plan, todo, settings["batch"])


def _coordinate(comm, launch_args: Sequence[str], queue: collections.deque, stop: _StopFlag,
                log_dir: Path) -> dict[int, int]:
    """Rank 0: hand out runs on request, run its own share, return {index: exit code}."""
    from mpi4py import MPI

    results: dict[int, int] = {}
    workers = comm.Get_size() - 1
    run: _Run | None = None
    status = MPI.Status()
    while True:
        while comm.Iprobe(source=MPI.ANY_SOURCE, tag=TAG_REQUEST, status=status):
            source = status.Get_source()
            finished = comm.recv(source=source, tag=TAG_REQUEST)
            if finished is not None:
                results[finished[0]] = finished[1]
            if queue and not stop.set:
                comm.send(queue.popleft(), dest=source, tag=TAG_WORK)
            else:
                comm.send(None, dest=source, tag=TAG_WORK)
                workers -= 1
        if run is not None and run.poll(stop) is not None:
            results[run.index] = run.proc.returncode
            run = None
        if run is None and queue and not stop.set:
            run = _Run(launch_args, queue.popleft(), log_dir)
        if run is None and workers == 0 and (not queue or stop.set):
            return results
        time.sleep(POLL_S)


def _work(comm, launch_args: Sequence[str], stop: _StopFlag, log_dir: Path) -> None:
    """Other ranks: ask rank 0 for a run, do it, report it with the next request."""
    finished = None
    while True:
        comm.send(finished, dest=0, tag=TAG_REQUEST)
        index = comm.recv(source=0, tag=TAG_WORK)
        if index is None:
            return
        run = _Run(launch_args, index, log_dir)
        while run.poll(stop) is None:
            time.sleep(POLL_S)
        finished = (index, run.proc.returncode)


def exit_code(results: dict[int, int], n_todo: int) -> int:
    """1 if a run could not run, 3 if interrupted (or runs left), else 0."""
    codes = list(results.values())
    if any(c not in (0, _EXIT_INTERRUPTED) for c in codes):
        return 1
    if any(c == _EXIT_INTERRUPTED for c in codes) or len(results) < n_todo:
        return _EXIT_INTERRUPTED
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of every rank."""
    from mpi4py import MPI

    from harness.errors import UserError

    launch_args = list(sys.argv[1:] if argv is None else argv)
    stop = _StopFlag()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):  # srun forwards USR1
        signal.signal(sig, stop)
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    try:
        log_dir = log_folder(launch_args)
        todo = pending_indices(launch_args) if rank == 0 else []
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        comm.Abort(exc.exit_code)
        return exc.exit_code
    if rank != 0:
        _work(comm, launch_args, stop, log_dir)
        return 0
    print(f"task farm: {len(todo)} runs to do on {comm.Get_size()} ranks", flush=True)
    started = time.monotonic()
    results = _coordinate(comm, launch_args, collections.deque(todo), stop, log_dir)
    code = exit_code(results, len(todo))
    done = sum(1 for c in results.values() if c == 0)
    print(f"task farm: {done} of {len(todo)} runs ended normally, "
          f"{sum(1 for c in results.values() if c == _EXIT_INTERRUPTED)} interrupted, "
          f"{sum(1 for c in results.values() if c not in (0, _EXIT_INTERRUPTED))} could not "
          f"run, {len(todo) - len(results)} not started; {time.monotonic() - started:.0f} s",
          flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
