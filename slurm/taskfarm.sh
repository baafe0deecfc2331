#!/bin/bash
# tea-harness on Slurm: the whole plan in ONE job of N MPI ranks, for sites that limit
# job arrays. mpi4py hands the runs to the ranks one at a time (a rank that finishes early
# takes the next run); each run is `python -m harness.launch ... --task I`, as in the array,
# so the files are the same.
#
#   sbatch --ntasks=8 slurm/taskfarm.sh --model gap --preset tea2023
#   python -m harness.launch --model gap --preset tea2023 --submit --farm 8
#
# Arguments and environment as for slurm/run_challenge.sh. Runs already done are skipped,
# so a requeued farm continues where it stopped. Site settings: slurm/site.sh.
#
#SBATCH --job-name=tea-farm
#SBATCH --ntasks=2
#SBATCH --cpus-per-task=1
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --signal=B:USR1@300
set -euo pipefail

if [[ -z ${TEA_HARNESS_DIR:-} ]]; then
    if [[ -f ${SLURM_SUBMIT_DIR:-.}/slurm/common.sh ]]; then
        TEA_HARNESS_DIR=${SLURM_SUBMIT_DIR:-$PWD}
    else
        TEA_HARNESS_DIR=$("${TEA_PYTHON:-python3}" -c 'import harness; print(harness.REPO_DIR)')
    fi
fi
source "$TEA_HARNESS_DIR/slurm/common.sh"

harness_arguments "$@"
harness_fresh_step_ids
HARNESS_STOP_SIGNAL=USR1  # srun kills its step on SIGTERM but forwards USR1 to the ranks
harness_run "${SITE_MPI_LAUNCH[@]}" -n "${SLURM_NTASKS:-1}" "$PYTHON" -m harness.taskfarm "${args[@]}"
