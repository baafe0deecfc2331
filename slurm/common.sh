# Shared part of the tea-harness Slurm templates (sourced, not submitted).
# Needs: TEA_HARNESS_DIR (the repository). Provides: PYTHON, harness_arguments, harness_run.

# shellcheck source=site.sh
source "${TEA_SITE:-$TEA_HARNESS_DIR/slurm/site.sh}"
set +u  # module systems and activate scripts often read unset variables
site_environment
set -u
PYTHON=${SITE_PYTHON:-${TEA_PYTHON:-python3}}
export TEA_HARNESS_DIR
export PYTHONPATH="$TEA_HARNESS_DIR${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# Jobs run in the submit folder: never import a stray module from there (e.g. a timeit.py).
export PYTHONSAFEPATH=1

# harness_arguments ARGS...: fill the array `args` with the launch flags from ARGS and the
# environment (MODEL, MODEL_FILE, ...; see docs/slurm.md). Words pass through a file with
# NUL separators, never through the shell parser.
harness_arguments() {
    local file
    file=$(mktemp)
    if ! "$PYTHON" -m harness.slurm arguments "$@" > "$file"; then
        rm -f "$file"
        exit 2
    fi
    mapfile -d '' -t args < "$file"
    rm -f "$file"
}

# harness_run COMMAND...: run COMMAND in the background so that signals reach this shell at
# once. Slurm's early warning (--signal=B:USR1@SECONDS) or a SIGTERM (scancel, preemption,
# the time limit itself) is forwarded to COMMAND as SIGTERM, which stops the runs softly:
# i-PI writes its RESTART, trajectories are flushed. After the early warning this task
# requeues itself; the next start resumes each run from its newest checkpoint (no frame
# twice). HARNESS_STOP_SIGNAL replaces SIGTERM where COMMAND is srun: srun answers SIGTERM by
# killing its step, but passes SIGUSR1 on to the tasks. After a SIGTERM it does not: a scancel must stay cancelled, and a preempting
# Slurm requeues by itself (PreemptMode=REQUEUE). Exits with COMMAND's status.
harness_run() {
    local child status
    stop_signal=""
    "$@" &
    child=$!
    trap 'stop_signal=USR1; kill -"${HARNESS_STOP_SIGNAL:-TERM}" "$child" 2>/dev/null' USR1
    trap 'stop_signal=TERM; kill -"${HARNESS_STOP_SIGNAL:-TERM}" "$child" 2>/dev/null' TERM
    status=0
    while true; do
        wait "$child" && status=0 || status=$?
        # wait returns early (status > 128) when a trapped signal arrives; wait again
        kill -0 "$child" 2>/dev/null || break
    done
    trap - USR1 TERM
    if [[ $stop_signal == USR1 ]]; then
        harness_requeue
    fi
    return "$status"
}

harness_requeue() {
    local restarts=${SLURM_RESTART_COUNT:-0} job=${SLURM_JOB_ID:-}
    if [[ -n ${SLURM_ARRAY_JOB_ID:-} ]]; then
        job="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
    fi
    if [[ -z $job ]]; then
        return 0
    fi
    if (( restarts >= SITE_MAX_REQUEUES )); then
        echo "tea-harness: stopped by $stop_signal after $restarts requeues" \
             "(SITE_MAX_REQUEUES=$SITE_MAX_REQUEUES); resubmit to continue" >&2
        return 0
    fi
    echo "tea-harness: stopped by $stop_signal; requeueing $job (restart $((restarts + 1)));" \
         "its runs resume from their checkpoints" >&2
    scontrol requeue "$job"
}

# harness_fresh_step_ids: after a requeue the job id is the same and step ids restart at 0,
# so the MPI step would reuse the PMI id of the step the stop killed; MPICH names its shared
# memory after that id, and a segment left behind breaks MPI_Init ("Message truncated",
# "failed to unpack address"). Burning one empty step per restart gives MPI a new step id.
harness_fresh_step_ids() {
    local i
    for ((i = 0; i < ${SLURM_RESTART_COUNT:-0}; i++)); do
        srun --ntasks=1 --nodes=1 true || true
    done
}
