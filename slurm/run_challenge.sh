#!/bin/bash
# tea-harness on Slurm: the TEA Challenge 2023 MD crash test as a job array.
#
#   sbatch slurm/run_challenge.sh                       # Challenge I, demo GAP, demo preset
#   sbatch slurm/run_challenge.sh --model xtb --preset tea2023 --out runs
#   sbatch --export=ALL,MODEL=mace,MODEL_FILE=$PWD/my.model slurm/run_challenge.sh
#
# Arguments are `python -m harness.launch` flags; the environment variables MODEL, MODEL_FILE,
# CHALLENGE, PRESET, TEMPERATURES, REPLICAS, LENGTH, OUT and TEA_CONFIG give the same settings
# (an argument wins over its variable). See docs/slurm.md.
#
# Submitted as above, this short job plans the runs, submits them as an array of this script
# (one task per temperature x replica x model, only those not yet done) and the analysis job
# that waits for the array (--dependency=afterany), then ends. Each array task runs
#   python -m harness.launch ... --task $SLURM_ARRAY_TASK_ID
# `python -m harness.launch ... --submit` does the same from a login node.
#
# Before the time limit Slurm sends USR1 (--signal): the run stops softly, keeps i-PI's
# RESTART, and the task requeues itself; the next start continues the trajectory.
# Partition, account, modules, cores: slurm/site.sh (not here).
#
#SBATCH --job-name=tea-harness
#SBATCH --time=24:00:00
#SBATCH --cpus-per-task=1
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --signal=B:USR1@300
set -euo pipefail

# The repository: exported by --submit; else the submit folder (sbatch slurm/run_challenge.sh
# from the repository); else the folder of the python that has tea-harness installed.
if [[ -z ${TEA_HARNESS_DIR:-} ]]; then
    if [[ -f ${SLURM_SUBMIT_DIR:-.}/slurm/common.sh ]]; then
        TEA_HARNESS_DIR=${SLURM_SUBMIT_DIR:-$PWD}
    else
        TEA_HARNESS_DIR=$("${TEA_PYTHON:-python3}" -c 'import harness; print(harness.REPO_DIR)')
    fi
fi
source "$TEA_HARNESS_DIR/slurm/common.sh"

harness_arguments "$@"
if [[ -n ${SLURM_ARRAY_TASK_ID:-} ]]; then
    harness_run "$PYTHON" -m harness.launch "${args[@]}" --task "$SLURM_ARRAY_TASK_ID"
else
    "$PYTHON" -m harness.launch "${args[@]}" --submit
fi
