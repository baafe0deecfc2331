"""What Slurm costs: the same tiny plan locally, as a job array and as a 2-rank MPI task farm.

Starts a private one-node Slurm (tests/slurm_cluster.py; needs Debian's slurmctld/slurmd and
root), runs N short harmonic runs three ways and prints wall times, so the fixed cost of
scheduling (submission, job start, Python start-up per task) can be set against the runs.

    python benchmarks/slurm_overhead.py [--runs 6] [--time 20fs]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from slurm_cluster import Cluster  # noqa: E402

from harness import h5md  # noqa: E402


def _launch(args: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "harness.launch", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(proc.stdout + proc.stderr)
    return proc.stdout


def _job_ids(text: str) -> list[str]:
    line = next(x for x in text.splitlines() if x.startswith("submitted"))
    words = line.replace(";", " ").split()
    return [words[i + 1] for i, w in enumerate(words) if w in ("array", "farm", "analysis")
            and i + 1 < len(words) and words[i + 1].isdigit()] + [words[words.index("analysis")
                                                                       + 2]]


def _check(out: Path, n: int) -> None:
    files = sorted(out.rglob("replica-*.h5"))
    assert len(files) == n and all(h5md.read_meta(f)["status"] == "completed" for f in files)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--time", default="20fs")
    opts = parser.parse_args()
    plan = ["--model", "harmonic", "--criteria", "non_finite", "--temperatures", "300",
            "--replicas", str(opts.runs), "--time", opts.time, "--quiet"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with Cluster(root / "cluster", cpus=2) as cluster:
            env = dict(cluster.env, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO),
                       UCX_TLS="self,sm")
            rows = []
            start = time.monotonic()
            _launch([*plan, "--jobs", "2", "--out", str(root / "local")], env, root)
            rows.append(("local pool, 2 at a time", time.monotonic() - start))
            _check(root / "local", opts.runs)
            for name, extra in (("job array (2 CPUs)", []), ("MPI task farm, 2 ranks",
                                                             ["--farm", "2"])):
                out = root / name.split()[0]
                start = time.monotonic()
                text = _launch([*plan, "--out", str(out), "--submit", *extra], env, root)
                cluster.wait(_job_ids(text), 1800)
                rows.append((name + " + analysis job", time.monotonic() - start))
                _check(out, opts.runs)
    print(f"{opts.runs} harmonic runs of {opts.time} (42 atoms), machine with "
          f"{os.cpu_count()} cores:")
    for name, wall in rows:
        print(f"  {name:38s} {wall:7.1f} s   {wall / opts.runs:6.2f} s/run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
