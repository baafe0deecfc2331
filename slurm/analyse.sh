#!/bin/bash
# tea-harness on Slurm: the analysis that runs after the runs (submitted by --submit with
# --dependency=afterany:<runs job>, so it runs however the runs ended).
#
#   sbatch slurm/analyse.sh OUT          # by hand: the stability report of OUT/
#   sbatch slurm/analyse.sh OUT report   # the whole report (heating ramps, time-step sweeps)
#
# Writes OUT/reports/stability.md, stability.json and survival.png; with "report",
# OUT/reports/report.{md,html,json}.
#SBATCH --job-name=tea-analysis
#SBATCH --time=01:00:00
#SBATCH --ntasks=1
set -euo pipefail

if [[ -z ${TEA_HARNESS_DIR:-} ]]; then
    if [[ -f ${SLURM_SUBMIT_DIR:-.}/slurm/common.sh ]]; then
        TEA_HARNESS_DIR=${SLURM_SUBMIT_DIR:-$PWD}
    else
        TEA_HARNESS_DIR=$("${TEA_PYTHON:-python3}" -c 'import harness; print(harness.REPO_DIR)')
    fi
fi
source "$TEA_HARNESS_DIR/slurm/common.sh"

out=${1:-${OUT:-runs}}
case ${2:-stability} in
    stability) "$PYTHON" -m analysis.cli stability "$out" ;;
    report) "$PYTHON" -m analysis.cli report "$out" ;;
    *) echo "analyse.sh: second argument '$2': give stability or report" >&2; exit 2 ;;
esac
