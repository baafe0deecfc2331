"""One run, supervised: the unit of work of every launcher, and the engine dispatch.

:func:`supervisor_class` chooses who runs a spec: the i-PI supervisor
(:class:`harness.engines.ipi_run.IpiSupervisor`, i-PI + a python force client), i-PI with a
LAMMPS force client, or LAMMPS integrating by itself (:mod:`harness.engines.lammps_run`); with
``--batch`` a run is served by its group's shared client (:class:`harness.batch.MemberSupervisor`).
:func:`run_spec` runs one spec under its lock.

Run as ``python -m harness.runner SPEC.json [--progress] [--group DIR]``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from harness import engines, runlock
from harness.batch import MemberSupervisor
from harness.engines.ipi_run import finished_status
from harness.engines.lammps_run import engine_of
from harness.plan import RunSpec
from harness.supervisor import Outcome, Supervisor


def supervisor_class(spec: RunSpec) -> type[Supervisor]:
    """The supervisor of a run, from its engine's registry entry (:mod:`harness.engines`):
    native LAMMPS, i-PI with a LAMMPS client, or plain i-PI."""
    return engines.get_engine(engine_of(spec)).supervisor(spec)


def run_spec(spec: RunSpec, progress: bool = False, group: Path | None = None) -> Outcome:
    """Run one spec in this process, holding its lock (signals SIGTERM/SIGINT stop it softly).

    A run held by another live process, or finished meanwhile, is ``skipped``. With ``group``
    (a ``--batch`` group folder) the run is served by the group's shared force client.
    """
    lock = runlock.RunLock(spec.out_file)
    try:
        lock.acquire()
    except runlock.Busy as exc:
        return Outcome(status="skipped", note=f"running elsewhere: {exc}")
    try:
        if lock.taken_over:
            print(f"{spec.name}: {lock.taken_over}", file=sys.stderr, flush=True)
        done = finished_status(spec) if Path(spec.out_file).exists() else None
        if done is not None:
            return Outcome(status="skipped", note=f"already {done}")
        if group is not None:
            supervisor: Supervisor = MemberSupervisor(spec, progress=progress, group=group)
        else:
            supervisor = supervisor_class(spec)(spec, progress=progress)
        supervisor.lock = lock

        def _on_signal(signum: int, frame: Any) -> None:
            supervisor.stop_requested = supervisor.stop_requested or "interrupted"

        old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            outcome = supervisor.run()
            outcome.note = outcome.note or (lock.taken_over or "")
            return outcome
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
    finally:
        lock.release()


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.runner SPEC.json``: prints the outcome as a JSON line."""
    parser = argparse.ArgumentParser(prog="python -m harness.runner")
    parser.add_argument("spec")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--group", type=Path, help="--batch group folder: use its shared "
                        "force client (see harness.batch)")
    args = parser.parse_args(argv)
    spec = RunSpec.from_json(Path(args.spec).read_text())
    for sig in (signal.SIGTERM, signal.SIGINT):  # after the run, a late signal must not
        signal.signal(sig, signal.SIG_IGN)       # cut the outcome line short
    outcome = run_spec(spec, progress=args.progress, group=args.group)
    print(outcome.to_json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
