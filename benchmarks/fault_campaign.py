"""Fault campaign: inject faults into real launches and check that nothing is lost or left.

``python benchmarks/fault_campaign.py [--only NAME,...] [--keep DIR]``

Each fault runs the harmonic model (or a deliberately faulty ASE model from
``tests/breaking_models.py``) on Challenge I in a fresh folder, injects the fault, and — where
the harness promises a resume — runs the same command again. Then it checks every trajectory:

* **ended**: the status (and failure kind) each run ended with;
* **kept**: frames on disk;
* **lost**: frames missing from the stored range (a gap or a duplicate in the steps, or, for a
  run that ended, steps before its end that are absent);
* **corrupt**: files that cannot be read, whose datasets disagree in length, whose steps are
  not strictly increasing, or that hold all-zero frames;
* **left**: processes working in the folder, i-PI socket folders of this campaign and
  folders of launches (``OUT/.launches``) still there afterwards.

Every row must read 0 lost, 0 corrupt, 0 left. Disk faults need root (tmpfs, bind mounts);
the Slurm requeue needs Debian's slurmctld/slurmd (see tests/slurm_cluster.py). A fault whose
prerequisite is missing is reported as skipped with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
sys.path[:0] = [str(REPO), str(TESTS)]

from harness import h5md  # noqa: E402
from harness import sockets as socket_names  # noqa: E402

TAG = f"campaign{os.getpid()}x"
os.environ["TEA_HARNESS_SOCKET_TAG"] = TAG
HARMONIC = ["--model", "harmonic", "--criteria", "non_finite"]
BASE = ["--temperatures", "300", "--replicas", "1", "--quiet"]
CHALLENGE = "alanine-tetrapeptide"


def env() -> dict[str, str]:
    """Environment of every launch: this checkout first, the faulty models importable."""
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
                PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)]))


def launch(out: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a launch to its end."""
    return subprocess.run([sys.executable, "-m", "harness.launch", *args, "--out", str(out)],
                          capture_output=True, text=True, timeout=timeout, env=env())


def start(out: Path, *args: str) -> subprocess.Popen:
    """Start a launch in the background."""
    return subprocess.Popen([sys.executable, "-m", "harness.launch", *args, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())


def pids_naming(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (read from /proc, nothing signalled)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8",
                                                                                   "replace")
            except OSError:
                continue
            if text in cmd and int(entry.name) != os.getpid():
                found.append(int(entry.name))
    return found


def wait_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``predicate`` until it is true or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (OSError, KeyError):
            pass
        time.sleep(0.2)
    return False


def h5(out: Path, model: str = "harmonic") -> Path:
    """The single run's trajectory."""
    return out / CHALLENGE / model / "300K" / "replica-00.h5"


def flushed(path: Path, step: int) -> Callable[[], bool]:
    """True once the trajectory holds a frame at or after ``step``."""
    return lambda: path.exists() and (h5md.last_step(path) or 0) >= step


def _works_in(pid: int, out: Path) -> bool:
    """Whether process ``pid`` names ``out`` or runs in a folder under it (i-PI does)."""
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return pid in pids_naming(str(out)) or out in cwd.parents


def child_pid(out: Path, module: str) -> int:
    """The PID of the run's i-PI server or force client."""
    pids = [p for p in pids_naming(module) if _works_in(p, out)]
    if not pids:
        raise RuntimeError(f"no {module} process for {out}")
    return pids[0]


def check(path: Path) -> dict:
    """ended / kept / lost / corrupt of one trajectory."""
    try:
        meta = h5md.read_meta(path)
        frames = h5md.read_frames(path)
    except (OSError, KeyError, ValueError) as exc:
        return {"ended": f"unreadable ({exc})", "kept": 0, "lost": "?", "corrupt": 1}
    spec = meta["run_spec"]
    steps = meta["steps"]
    lengths = {len(v) for v in frames.values()}
    zero = bool(len(steps)) and bool(np.any(np.abs(frames["positions"]).sum(axis=(1, 2)) == 0))
    corrupt = int(lengths != {len(steps)} or bool(np.any(np.diff(steps) <= 0)) or zero)
    failure = meta["failure"] or {}
    # what the engine produced: to the end, to the failure event, or to the last stored frame
    last = int(steps[-1]) if len(steps) else -1
    if meta["status"] == "completed":
        last = spec["n_steps"]
    elif failure.get("step") and failure.get("kind") not in ("disk_full", "write_error"):
        last = max(last, int(failure["step"]))
    expected = np.arange(0, last + 1, spec["stride"])
    lost = len(np.setdiff1d(expected, steps))
    ended = meta["status"] + (f" ({failure['kind']})" if failure else "")
    return {"ended": ended, "kept": int(len(steps)), "lost": lost, "corrupt": corrupt}


def leftovers(out: Path, before: set[str]) -> int:
    """Processes naming ``out`` and new socket folders of this campaign."""
    def alive() -> list[int]:
        return [p for p in pids_naming("harness") if _works_in(p, out)]

    wait_for(lambda: not alive(), 20)
    sockets = socket_names.tagged_folders(TAG) - before
    launches = list((out / ".launches").glob("*"))  # folders of launches that are gone
    return len(alive()) + len(sockets) + len(launches)


# ----------------------------------------------------------------------------------- faults
# Each returns a note (how the launches ended) and may raise Skip.

class Skip(Exception):
    """The fault cannot be injected here (reason in the message)."""


def kill_launcher(out: Path) -> str:
    args = [*HARMONIC, *BASE, "--time", "3ps"]
    proc = start(out, *args)
    wait_for(flushed(h5(out), 2000), 120)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    again = launch(out, *args)
    return f"killed, rerun exit {again.returncode}"


def kill_child(module: str) -> Callable[[Path], str]:
    def fault(out: Path) -> str:
        proc = start(out, *HARMONIC, *BASE, "--time", "3ps")
        wait_for(flushed(h5(out), 2000), 120)
        os.kill(child_pid(out, module), signal.SIGKILL)
        proc.communicate(timeout=120)
        return f"launch exit {proc.returncode}"
    return fault


def sigterm_launcher(out: Path) -> str:
    args = [*HARMONIC, *BASE, "--time", "3ps"]
    proc = start(out, *args)
    wait_for(flushed(h5(out), 2000), 120)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    first = proc.returncode
    again = launch(out, *args)
    return f"launch exit {first} (interrupted), rerun exit {again.returncode}"


def sigstop_client(out: Path) -> str:
    proc = start(out, *HARMONIC, *BASE, "--time", "10ps", "--stall-timeout", "5s")
    wait_for(flushed(h5(out), 2000), 120)
    os.kill(child_pid(out, "harness.driver"), signal.SIGSTOP)
    proc.communicate(timeout=120)
    return f"launch exit {proc.returncode}"


def faulty(fault: str, after: int, timeouts: tuple[str, ...] = ()) -> Callable[[Path], str]:
    def run(out: Path) -> str:
        done = launch(out, "--model", "ase:breaking_models:faulty", "--model-option",
                      f"fault={fault}", "--model-option", f"after={after}", "--time", "2ps",
                      *BASE, *timeouts)
        return f"launch exit {done.returncode}"
    return run


def mount(*args: str) -> None:
    """``mount ARGS`` (root); :class:`Skip` when it is not possible here."""
    try:
        subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise Skip(f"cannot mount here (needs root): {exc}") from None


def disk_full(out: Path) -> str:
    disk = out.parent / "disk"
    disk.mkdir()
    mount("-t", "tmpfs", "-o", "size=3M", "tmpfs", str(disk))
    try:
        target = disk / "runs"
        args = [*HARMONIC, *BASE, "--time", "0.3ps", "--stride", "1"]
        first = launch(target, *args)
        line = next((x for x in first.stdout.splitlines() if "disk is full" in x), "")
        mount("-o", "remount,size=30M", str(disk))
        again = launch(target, *args)
        shutil.copytree(target, out)  # the checks read it after the unmount
        return (f"exit {first.returncode} ({'one line' if line else 'NO LINE'}), "
                f"after freeing space exit {again.returncode}")
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, timeout=30)


def two_launches(out: Path) -> str:
    args = [*HARMONIC, "--temperatures", "300", "--replicas", "2", "--jobs", "1",
            "--time", "1ps", "--quiet"]
    first = start(out, *args)
    time.sleep(2)
    second = start(out, *args)
    out1, _ = first.communicate(timeout=300)
    out2, _ = second.communicate(timeout=300)
    skipped = [x.split(";")[0].split(", ")[-1] for x in (out1, out2) for x in x.splitlines()
               if " completed, " in x]
    return "second launch: " + skipped[-1]


def unwritable(out: Path) -> str:
    source, target = out.parent / "ro-src", out.parent / "ro"
    source.mkdir()
    target.mkdir()
    mount("--bind", str(source), str(target))
    try:
        mount("-o", "remount,ro,bind", str(target))
        done = launch(target / "runs", *HARMONIC, *BASE, "--time", "0.1ps")
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)
    lines = done.stderr.strip().splitlines()
    ok = done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr
    out.mkdir(parents=True, exist_ok=True)
    return f"exit {done.returncode}, {len(lines)} line(s) on stderr" + ("" if ok else " WRONG")


def damaged_file(out: Path) -> str:
    launch(out, *HARMONIC, "--temperatures", "300", "--replicas", "2", "--time", "0.1ps",
           "--quiet")
    good = out / CHALLENGE / "harmonic" / "300K" / "replica-01.h5"
    damaged = good.with_name("replica-02.h5")
    damaged.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    proc = subprocess.run([sys.executable, "-m", "analysis.cli", "stability", str(out),
                           "--report-dir", str(out.parent / "report")], capture_output=True,
                          text=True, timeout=300, env=env())
    runs = len(json.loads((out.parent / "report" / "stability.json").read_text())["runs"]) \
        if proc.returncode == 0 else 0
    warned = [x for x in proc.stderr.splitlines() if x.startswith("warning:")]
    named = len(warned) == 1 and str(damaged) in warned[0] and "unreadable" in warned[0]
    damaged.rename(out.parent / "damaged-copy.h5")  # the deliberate damage is not a run's
    return (f"analysis exit {proc.returncode}, {runs} runs analysed, damaged one "
            + ("named in one warning" if named else "NOT NAMED"))


def slurm_requeue(out: Path) -> str:
    from slurm_cluster import Cluster, missing_binaries

    missing = missing_binaries()
    if missing or os.geteuid() != 0:
        raise Skip(f"no Slurm here ({', '.join(missing) or 'not root'})")
    with Cluster(out.parent / "slurm", cpus=2) as cluster:
        cenv = dict(cluster.env, OMP_NUM_THREADS="1", UCX_TLS="self,sm",
                    PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)]))
        cenv.pop("TEA_SITE", None)
        sub = subprocess.run([sys.executable, "-m", "harness.launch", *HARMONIC, *BASE,
                              "--time", "4ps", "--out", str(out), "--submit"],
                             capture_output=True, text=True, timeout=120, cwd=out.parent,
                             env=cenv)
        line = next(x for x in sub.stdout.splitlines() if x.startswith("submitted"))
        words = line.replace(";", " ").split()
        array = words[words.index("array") + 1]
        analysis = words[words.index("analysis") + 2]
        wait_for(flushed(h5(out), 2000), 180)
        cluster.run("scontrol", "requeue", f"{array}_0")  # the task is killed and requeued
        states = cluster.wait([array, analysis], 400)
        shown = cluster.run("scontrol", "show", "job", f"{array}_0").stdout
    restarts = next((w for w in shown.split() if w.startswith("Restarts=")), "Restarts=?")
    segments = len(h5md.read_meta(h5(out))["provenance"]["segments"])
    return (f"jobs {', '.join(sorted(set(states.values())))}, {restarts}, "
            f"{segments} segments in the file")


FAULTS: dict[str, tuple[str, Callable[[Path], str], str]] = {
    "kill-launcher": ("kill -9 of the launcher, then rerun", kill_launcher, "harmonic"),
    "kill-client": ("kill -9 of the force client", kill_child("harness.driver"), "harmonic"),
    "kill-ipi": ("kill -9 of i-PI", kill_child("harness.engines.ipi_server"), "harmonic"),
    "sigterm": ("SIGTERM to the launcher, then rerun", sigterm_launcher, "harmonic"),
    "sigstop": ("SIGSTOP of the force client", sigstop_client, "harmonic"),
    "nan": ("model returns NaN", faulty("nan", 30), "ase-breaking_models-faulty"),
    "raise": ("model raises", faulty("raise", 30), "ase-breaking_models-faulty"),
    "exit": ("model exits", faulty("exit", 30), "ase-breaking_models-faulty"),
    "hang-before": ("model hangs before its first frame", faulty(
        "hang", 0, ("--stall-timeout", "5s", "--startup-timeout", "15s")),
        "ase-breaking_models-faulty"),
    "hang-after": ("model hangs after its first frames", faulty(
        "hang", 30, ("--stall-timeout", "5s")), "ase-breaking_models-faulty"),
    "disk-full": ("disk full (3 MB tmpfs), then space freed", disk_full, "harmonic"),
    "two-launches": ("two launches on one folder, 2 s apart", two_launches, "harmonic"),
    "unwritable": ("unwritable --out (read-only mount)", unwritable, "harmonic"),
    "damaged": ("damaged file among good ones (analysis)", damaged_file, "harmonic"),
    "slurm-requeue": ("Slurm requeue of a running task", slurm_requeue, "harmonic"),
}


def run_fault(name: str, root: Path) -> dict:
    """Inject one fault in a fresh folder and check what it left."""
    title, inject, _ = FAULTS[name]
    out = root / name / "runs"
    out.parent.mkdir(parents=True)
    before = socket_names.tagged_folders(TAG)
    started = time.monotonic()
    try:
        note = inject(out)
    except Skip as exc:
        return {"fault": title, "ended": f"skipped: {exc}", "kept": "-", "lost": "-",
                "corrupt": "-", "left": "-", "note": "", "seconds": 0}
    except Exception as exc:  # noqa: BLE001 - a campaign bug: say so in the row, go on
        note = f"CAMPAIGN ERROR {type(exc).__name__}: {exc}"
    rows = [check(p) for p in sorted(out.rglob("replica-*.h5")) if p.stem.count(".") == 0]
    return {"fault": title,
            "ended": "; ".join(sorted({r["ended"] for r in rows})) or "no run (as intended)",
            "kept": sum(r["kept"] for r in rows),
            "lost": sum(r["lost"] for r in rows if r["lost"] != "?"),
            "corrupt": sum(r["corrupt"] for r in rows),
            "left": leftovers(out, before), "note": note,
            "seconds": round(time.monotonic() - started)}


def table(rows: list[dict]) -> str:
    """The campaign's Markdown table."""
    lines = ["| fault | how the run ended | frames kept | frames lost | corrupt files | "
             "processes/sockets left | launches |", "|---|---|---:|---:|---:|---:|---|"]
    lines += [f"| {r['fault']} | {r['ended']} | {r['kept']} | {r['lost']} | {r['corrupt']} | "
              f"{r['left']} | {r['note']} ({r['seconds']} s) |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    """Run the campaign; exit 1 if any row lost, corrupted or left something."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated fault names: " + ", ".join(FAULTS))
    parser.add_argument("--keep", help="keep the runs in this folder (default: a temp folder)")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(FAULTS)
    root = Path(args.keep or tempfile.mkdtemp(prefix="tea-faults-"))
    rows = []
    try:
        for name in names:
            rows.append(run_fault(name, root))
            print(f"{name}: {rows[-1]}", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(table(rows))
    bad = [r for r in rows if r["lost"] not in (0, "-") or r["corrupt"] not in (0, "-")
           or r["left"] not in (0, "-")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
