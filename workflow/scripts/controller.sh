#!/bin/bash
# The Snakemake that submits a SLURM run's jobs, as a CPU job of its own (`make controller`, README):
# it lives as long as its partition allows, not as long as a login session. Near its time limit SLURM
# sends USR1 (--signal below) and it requeues itself. Its jobs run on; the controller that starts
# again (the same SLURM job) submits each running job anew, and the new copy asks the running one to
# checkpoint and stop, and resumes from its step (`rarts --take-over`): each running job loses its
# step in flight and a restart, nothing more. Arguments: Snakemake's (targets, --configfile …).
#SBATCH --job-name=rarts-controller
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --requeue
#SBATCH --signal=B:USR1@600
#SBATCH --open-mode=append
#SBATCH --output=results/logs/controller-%j.log
set -u

requeue() {
    echo "controller: $(date -Is) the time limit is near: requeueing SLURM job $SLURM_JOB_ID"
    scontrol requeue "$SLURM_JOB_ID"
}
trap requeue USR1

echo "controller: $(date -Is) SLURM job $SLURM_JOB_ID (start $((${SLURM_RESTART_COUNT:-0} + 1))) on $(hostname): snakemake $*"
snakemake --workflow-profile workflow/profiles/slurm "$@" &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
    wait "$pid"  # returns early when USR1's trap runs; then wait again
    status=$?
done
echo "controller: $(date -Is) snakemake ended with status $status"
exit "$status"
