"""Slurm: the run plan as a job array (or an MPI task farm) plus a dependent analysis job.

The templates live in ``slurm/`` and read the site settings from ``slurm/site.sh`` (or the file
``$TEA_SITE`` names). This module is what they and ``python -m harness.launch --submit`` share:

- :func:`task_arguments`: launch flags from a template's arguments and environment (MODEL,
  MODEL_FILE, ...), arguments first; the default model is the demo GAP.
- :func:`read_site`: the site settings, read by letting bash source the file.
- :func:`submit`: sbatch the array of ``slurm/run_challenge.sh`` (one task per pending run) or one
  ``slurm/taskfarm.sh`` job, then ``slurm/analyse.sh`` with ``--dependency=afterany``.

Every value travels as one argv word (``subprocess`` without a shell, NUL-separated lists for
the templates), so names and paths with spaces or shell metacharacters cannot become commands.

``python -m harness.slurm arguments ARGS...`` prints the resolved flags NUL-separated (used by
``slurm/common.sh``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import REPO_DIR, config
from harness.errors import UserError

TEMPLATE_DIR = REPO_DIR / "slurm"
ARRAY_TEMPLATE = TEMPLATE_DIR / "run_challenge.sh"
FARM_TEMPLATE = TEMPLATE_DIR / "taskfarm.sh"
ANALYSIS_TEMPLATE = TEMPLATE_DIR / "analyse.sh"
#: What the analysis job can run on the output folder (the second argument of analyse.sh).
ANALYSES = ("stability", "report")
#: Environment variable -> launch flag, for ``sbatch --export=ALL,MODEL=...``.
ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("MODEL", "--model"), ("MODEL_FILE", "--model-file"), ("CHALLENGE", "--challenge"),
    ("PRESET", "--preset"), ("TEMPERATURES", "--temperatures"), ("REPLICAS", "--replicas"),
    ("LENGTH", "--time"), ("OUT", "--out"), ("TEA_CONFIG", "--config"),
)
DEFAULT_MODEL = "gap"
LOG_FOLDER = "slurm-logs"
SBATCH_TIMEOUT_S = 60.0


# ----------------------------------------------------------------------------- arguments
def _parse(argv: Sequence[str]):
    parser = config.build_parser()
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exc:  # argparse printed the reason
        raise UserError(f"invalid launch arguments: {' '.join(argv)}") from exc


def _config_keys(path: str | None) -> set[str]:
    if not path or not Path(path).is_file():
        return set()
    try:
        return {k.replace("-", "_") for k in tomllib.loads(Path(path).read_text())}
    except tomllib.TOMLDecodeError:
        return set()


def task_arguments(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The launch flags of a Slurm task: ``argv``, plus the environment where ``argv`` is silent.

    A variable is used only when its flag is absent from ``argv``, so passing the result through
    again changes nothing. Without any model (flag, variable or config key) the demo GAP runs.
    Inside an allocation, runs use the task's cores as threads unless ``--threads`` is given.
    """
    argv = list(argv)
    given = _parse(argv)
    extra: list[str] = []
    for var, flag in ENVIRONMENT:
        value = environ.get(var, "").strip()
        if value and getattr(given, flag[2:].replace("-", "_")) is None:
            extra += [flag, value]
    args = extra + argv
    parsed = _parse(args)
    in_config = _config_keys(parsed.config)
    if parsed.model is None and "model" not in in_config:
        args = ["--model", DEFAULT_MODEL] + args
    cpus = environ.get("SLURM_CPUS_PER_TASK", "")
    if cpus.isdigit() and parsed.threads is None and "threads" not in in_config:
        args += ["--threads", cpus]
    return args


#: Flags of ``harness.launch`` that only concern submitting (the tasks do not get them).
SUBMIT_FLAGS = ("--submit",)
SUBMIT_FLAGS_WITH_VALUE = ("--farm", "--slurm-template", "--sbatch-option")


def strip_submit_flags(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--submit``, ``--farm N``, ``--slurm-template F``, ``--sbatch-option O``
    (what the tasks themselves get)."""
    out: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in SUBMIT_FLAGS or word.startswith(tuple(f + "=" for f in
                                                          SUBMIT_FLAGS_WITH_VALUE)):
            continue
        elif word in SUBMIT_FLAGS_WITH_VALUE:
            skip = True
        else:
            out.append(word)
    return out


# ---------------------------------------------------------------------------- site file
@dataclass(frozen=True)
class Site:
    """The settings of ``slurm/site.sh``."""

    path: Path
    sbatch_options: list[str] = field(default_factory=list)
    cpus_per_task: int = 1
    array_throttle: int = 0
    max_array_tasks: int = 1000
    mpi_launch: list[str] = field(default_factory=lambda: ["srun", "--mpi=pmi2",
                                                           "--kill-on-bad-exit=1"])
    #: sbatch options of a ``--batch`` group's array task (its GPU request, e.g. --gres=gpu:1)
    group_sbatch_options: list[str] = field(default_factory=list)
    #: cores of a group's task (0: SITE_CPUS_PER_TASK)
    group_cpus_per_task: int = 0


_SITE_DUMP = r"""
source "$1" || exit 3
printf '%s\0' "${#SITE_SBATCH_OPTIONS[@]}" "${SITE_SBATCH_OPTIONS[@]}"
printf '%s\0' "${#SITE_MPI_LAUNCH[@]}" "${SITE_MPI_LAUNCH[@]}"
printf '%s\0' "${#SITE_GROUP_SBATCH_OPTIONS[@]}" "${SITE_GROUP_SBATCH_OPTIONS[@]}"
printf '%s\0' "${SITE_CPUS_PER_TASK:-1}" "${SITE_ARRAY_THROTTLE:-0}" "${SITE_MAX_ARRAY_TASKS:-1000}"
printf '%s\0' "${SITE_GROUP_CPUS_PER_TASK:-0}"
"""


def site_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$TEA_SITE`` if set, else ``slurm/site.sh`` of this repository."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("TEA_SITE") or TEMPLATE_DIR / "site.sh")


def read_site(path: Path | None = None) -> Site:
    """Read the site settings by sourcing the file in bash (it is bash, so bash reads it)."""
    path = Path(path) if path else site_path()
    if not path.is_file():
        raise UserError(f"site settings {path}: no such file; restore slurm/site.sh from git or "
                        "point TEA_SITE at your copy")
    bash = shutil.which("bash") or "/bin/bash"
    proc = subprocess.run([bash, "-c", _SITE_DUMP, "site", str(path)], capture_output=True,
                          timeout=30, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise UserError(f"site settings {path}: bash could not source it: "
                        f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
    words = proc.stdout.decode().split("\0")[:-1]
    sbatch_options, words = _array_words(words)
    mpi_launch, words = _array_words(words)
    group_options, numbers = _array_words(words)
    try:
        cpus, throttle, max_tasks, group_cpus = (int(x) for x in numbers)
    except ValueError:
        raise UserError(f"site settings {path}: SITE_CPUS_PER_TASK, SITE_ARRAY_THROTTLE, "
                        "SITE_MAX_ARRAY_TASKS and SITE_GROUP_CPUS_PER_TASK must be integers "
                        f"(got {numbers})") from None
    if cpus < 1 or group_cpus < 0:
        raise UserError(f"site settings {path}: SITE_CPUS_PER_TASK={cpus}, "
                        f"SITE_GROUP_CPUS_PER_TASK={group_cpus}; give at least 1 (0 for the "
                        "group's: the same as SITE_CPUS_PER_TASK)")
    return Site(path=path, sbatch_options=sbatch_options, cpus_per_task=cpus,
                array_throttle=throttle, max_array_tasks=max_tasks, mpi_launch=mpi_launch,
                group_sbatch_options=group_options, group_cpus_per_task=group_cpus)


def _array_words(words: list[str]) -> tuple[list[str], list[str]]:
    """A bash array printed as its length then its items: (items, the words after it)."""
    n = int(words[0])
    return words[1:1 + n], words[1 + n:]


# ------------------------------------------------------------------------------- submit
def array_ranges(indices: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``'0-2,5,7-8'`` (the sbatch --array syntax)."""
    parts: list[str] = []
    ordered = sorted(set(indices))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def slurm_filename(folder: Path, pattern: str) -> str:
    """An sbatch --output value: ``folder`` literal (``%`` written ``%%``), then ``pattern``."""
    return str(folder).replace("%", "%%") + "/" + pattern


def job_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment sbatch gets: the caller's, without the job context of an enclosing
    job (SLURM_*, except SLURM_CONF), plus where the repository and this Python are."""
    environ = dict(os.environ if environ is None else environ)
    env = {k: v for k, v in environ.items()
           if not k.startswith("SLURM_") or k == "SLURM_CONF"}
    env["TEA_HARNESS_DIR"] = str(REPO_DIR)
    env["TEA_PYTHON"] = sys.executable
    return env


def sbatch(options: Sequence[str], script: Path, script_args: Sequence[str],
           env: Mapping[str, str]) -> str:
    """Run sbatch (no shell involved) and return the job id."""
    exe = shutil.which("sbatch", path=env.get("PATH"))
    if exe is None:
        raise UserError("sbatch not found: --submit needs Slurm's client commands on PATH "
                        "(run it on a login node of the cluster)")
    cmd = [exe, "--parsable", *options, str(script), *script_args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(env),
                              timeout=SBATCH_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UserError(f"sbatch did not answer in {SBATCH_TIMEOUT_S:.0f} s; is slurmctld "
                        "up? (sinfo)") from None
    if proc.returncode != 0:
        raise UserError(f"sbatch refused {script.name}: {proc.stderr.strip()}")
    return proc.stdout.strip().split(";")[0]


@dataclass
class Submission:
    """What :func:`submit` submitted."""

    runs_job: str | None
    analysis_job: str
    array: str | None
    n_runs: int
    log_dir: Path
    batch: int = 1
    #: what the analysis job runs: ``stability`` (TEA runs) or ``report`` (ramps, sweeps)
    analysis: str = "stability"


def submit(task_args: Sequence[str], n_plan: int, todo: Sequence[int], out_dir: Path,
           farm_ranks: int | None = None, template: Path | None = None,
           sbatch_options: Sequence[str] = (), site: Site | None = None,
           environ: Mapping[str, str] | None = None, batch: int = 1,
           n_runs: int | None = None, analysis: str = "stability") -> Submission:
    """Submit the pending runs and the analysis job that waits for them.

    Parameters
    ----------
    task_args
        Launch flags every task gets (``--task`` is added by the array template).
    n_plan
        Size of the whole plan (array indices are plan indices).
    todo
        Plan indices still to run; with ``batch > 1``, indices of the groups with a run to do
        (:func:`harness.batch.pending_tasks`).
    out_dir
        The output folder; job logs go to ``OUT/slurm-logs/``.
    farm_ranks
        One MPI task-farm job with this many ranks instead of an array.
    template
        The array script (default ``slurm/run_challenge.sh``; e.g. ``slurm/run_pair_style.sh``).
    sbatch_options
        More sbatch options for the runs job (after the site's, so they win).
    batch
        ``--batch N``: one array task per group of N runs, with the site's group options
        (``SITE_GROUP_SBATCH_OPTIONS``, e.g. the GPU request) and cores.
    n_runs
        Runs to do (default ``len(todo)``), for the description.
    analysis
        What the analysis job runs on ``out_dir`` (``slurm/analyse.sh``): ``stability`` for
        fixed-temperature runs, ``report`` for a protocol with a report section of its own
        (ramps, sweeps: ``analysis stability`` leaves their runs out).
    """
    if analysis not in ANALYSES:
        raise ValueError(f"analysis {analysis!r}: one of {ANALYSES}")
    site = site or read_site(site_path(environ))
    env = job_environment(environ)
    log_dir = Path(out_dir) / LOG_FOLDER
    log_dir.mkdir(parents=True, exist_ok=True)
    common = [*site.sbatch_options]
    extra = list(sbatch_options)
    template = Path(template) if template else ARRAY_TEMPLATE
    if not template.is_file():
        raise UserError(f"--slurm-template {template}: no such file")
    cpus = ["--cpus-per-task", str(site.cpus_per_task)]
    name = "tea-runs"
    if batch > 1:
        cpus = ["--cpus-per-task", str(site.group_cpus_per_task or site.cpus_per_task)]
        common += site.group_sbatch_options
        name = "tea-groups"
    runs_job, array = None, None
    if todo and farm_ranks:
        if farm_ranks < 1:
            raise UserError(f"--farm {farm_ranks}: give at least 1 rank")
        runs_job = sbatch(["--job-name", "tea-farm", "--ntasks", str(farm_ranks), *cpus,
                           "--output", slurm_filename(log_dir, "%x-%j.out"), *common, *extra],
                          FARM_TEMPLATE, task_args, env)
    elif todo:
        if max(todo) >= site.max_array_tasks:
            raise UserError(f"the plan has {n_plan} array tasks but the site allows indices "
                            f"below {site.max_array_tasks} (SITE_MAX_ARRAY_TASKS in "
                            f"{site.path}); "
                            + ("give a larger --batch" if batch > 1 else
                               "use the MPI task farm: --submit --farm RANKS"))
        array = array_ranges(todo)
        if site.array_throttle > 0:
            array += f"%{site.array_throttle}"
        runs_job = sbatch(["--job-name", name, "--array", array, *cpus,
                           "--output", slurm_filename(log_dir, "%x-%A_%a.out"), *common, *extra],
                          template, task_args, env)
    dependency = ["--dependency", f"afterany:{runs_job}"] if runs_job else []
    analysis_job = sbatch(["--job-name", "tea-analysis", *dependency, "--ntasks", "1",
                           "--output", slurm_filename(log_dir, "%x-%j.out"),
                           *site.sbatch_options],
                          ANALYSIS_TEMPLATE, [str(out_dir), analysis], env)
    return Submission(runs_job=runs_job, analysis_job=analysis_job, array=array,
                      n_runs=len(todo) if n_runs is None else n_runs, log_dir=log_dir,
                      batch=batch, analysis=analysis)


def describe(sub: Submission, out_dir: Path) -> str:
    """What was submitted, for the user."""
    if sub.runs_job is None:
        head = "every run is already done; submitted only the analysis"
    elif sub.array is not None:
        groups = (f" in groups of up to {sub.batch}, one task per group"
                  if sub.batch > 1 else "")
        head = (f"submitted job array {sub.runs_job} ({sub.n_runs} runs{groups}, "
                f"--array={sub.array})")
    else:
        head = f"submitted task farm {sub.runs_job} ({sub.n_runs} runs)"
    written = "stability.md" if sub.analysis == "stability" else "report.md"
    return (f"{head}; analysis job {sub.analysis_job} writes {out_dir}/reports/{written} "
            f"when the runs end.\nlogs: {sub.log_dir}/   watch: squeue -u $USER")


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.slurm arguments ARGS...``: print the task's flags NUL-separated."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "arguments":
        print("usage: python -m harness.slurm arguments [LAUNCH FLAGS...]", file=sys.stderr)
        return 2
    try:
        words = task_arguments(argv[1:], os.environ)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    sys.stdout.write("".join(w + "\0" for w in words))
    return 0


if __name__ == "__main__":
    sys.exit(main())
