"""Torch-free: what the workflow and every job share (names, config checks, errors, atomic files, locks,
the cost model, cluster requests, the GPU pool, SLURM's signals); the Snakefile imports only this layer."""
