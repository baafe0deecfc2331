# Site settings of the tea-harness Slurm templates: the ONE file to edit for your cluster.
#
# Every template in slurm/ sources this file, and `python -m harness.launch --submit` reads it
# (by sourcing it in bash), so partition, account, modules and cores are set here once instead
# of in each template. To keep your settings outside the repository, copy this file and point
# TEA_SITE at the copy: `export TEA_SITE=~/tea-site.sh`.
# This is bash: use arrays for lists, quote values with spaces.

# sbatch options added to every job the harness submits (array tasks, task farm, analysis):
# partition, account, QOS, wall time, ... Options given on the sbatch command line win.
#   SITE_SBATCH_OPTIONS=(--partition=standard --account=proj123 --qos=normal --time=12:00:00)
SITE_SBATCH_OPTIONS=()

# Cores for each run (sbatch --cpus-per-task); each run uses them as OpenMP threads
# unless --threads says otherwise.
SITE_CPUS_PER_TASK=1

# With `--submit --batch N` each array task runs one group of N runs whose one force client
# evaluates them together: on a GPU cluster, one GPU node per group. These sbatch options are
# added to the group tasks only (after SITE_SBATCH_OPTIONS), and SITE_GROUP_CPUS_PER_TASK
# (0: SITE_CPUS_PER_TASK) are the group client's cores.
#   SITE_GROUP_SBATCH_OPTIONS=(--partition=gpu --gres=gpu:1)
SITE_GROUP_SBATCH_OPTIONS=()
SITE_GROUP_CPUS_PER_TASK=0

# Array tasks that may run at the same time (sbatch --array=...%N); 0 = no limit.
SITE_ARRAY_THROTTLE=0

# Largest job array the site accepts (scontrol show config | grep MaxArraySize, minus 1).
# Larger plans are refused with advice to use the MPI task farm (slurm/taskfarm.sh).
SITE_MAX_ARRAY_TASKS=1000

# How many times a task that was stopped by its time limit or preempted requeues itself.
SITE_MAX_REQUEUES=20

# How MPI programs are started inside a job (the task farm, multi-rank LAMMPS clients).
# PyPI's mpich works with Slurm's PMI-2: srun --mpi=pmi2. Open MPI sites: (srun --mpi=pmix).
# --kill-on-bad-exit: a rank that dies ends the step at once instead of leaving the others
# waiting forever.
SITE_MPI_LAUNCH=(srun --mpi=pmi2 --kill-on-bad-exit=1)

# The Python that has tea-harness installed. Empty: the first of $TEA_PYTHON, python3.
SITE_PYTHON=""

# Commands that prepare the environment of every job, run before Python starts:
# modules, a virtual environment, scratch folders...
site_environment() {
    # module load python/3.11
    # source "$HOME/venvs/tea-harness/bin/activate"
    #
    # PyPI's mpich started by srun (PMI-2) now and then fails in MPI_Init, in UCX's address
    # exchange ("UCX ERROR failed to unpack address"; 1 of 8 starts on the test machine). With
    # --kill-on-bad-exit the step then ends at once; resubmit. For one-node jobs,
    # export UCX_TLS=self,sm avoided it there (8 of 8). Your site's own MPI does not need this.
    :
}
