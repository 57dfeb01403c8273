# Two entry points (see README): `make quick` runs the whole pipeline on the offline config,
# `make test` runs the test suite. Both create .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= 2
SMK_FLAGS ?=   # extra snakemake flags, e.g. `make quick SMK_FLAGS=-n` for a dry run
# The torch build: by default the registry's 2.14.1 (CUDA 13: NVIDIA driver >= 580, GPUs from compute
# capability 7.5). For another CUDA, the same version from PyTorch's index, e.g.
# `make setup TORCH_INDEX=https://download.pytorch.org/whl/cu126` (drivers >= 560, V100 and 1080 Ti too).
# The choice is remembered (.venv/.torch-index) and kept by every later target until it is made again;
# `TORCH_INDEX=registry` goes back to the registry's build.
TORCH_CHOICE := $(VENV)/.torch-index
ifeq ($(origin TORCH_INDEX),undefined)
TORCH_INDEX := $(shell cat $(TORCH_CHOICE) 2>/dev/null)
endif
INDEX := $(filter-out registry,$(TORCH_INDEX))
TARGETS ?= all   # what `make quick` builds, e.g. `make quick TARGETS=results/table5.csv`

# the rules call the `rarts` console script: the venv's bin comes first on PATH
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: quick rehearsal data paper-dry controller test test-fast setup clean gpu-check

setup: $(STAMP)

# torch/torchvision are installed first, by exact version, so no resolver can pull another build; a
# stamp per build, so a new choice reinstalls them (constraints.txt's ==2.14.1 matches every local build).
TORCH_STAMP := $(VENV)/.torch-$(if $(INDEX),$(subst :,_,$(subst /,_,$(INDEX))),registry)

$(TORCH_STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --force-reinstall --no-deps torch==2.14.1 torchvision==0.29.1 \
		$(if $(INDEX),--index-url $(INDEX))
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1 $(if $(INDEX),--extra-index-url $(INDEX))
	rm -f $(VENV)/.torch-* && echo $(or $(INDEX),registry) > $(TORCH_CHOICE) && touch $@

$(STAMP): pyproject.toml constraints.txt $(TORCH_STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

CONFIG ?=      # your own config files, overlaid on the profile's: `make quick CONFIG=mine.yaml`
MEM_MB ?= 20000   # what local jobs may hold at once (each rule declares its mem_mb)

# Your CONFIG files, checked first: a missing or malformed one named with its line (Snakemake would
# give a traceback, or "not valid JSON or YAML" without the file)
CHECK_CONFIG = $(if $(strip $(CONFIG)),$(BIN)/rarts check-config $(CONFIG),true)

# One `--configfile` after the targets takes every file: a second flag would replace the first
quick: $(STAMP)
	$(CHECK_CONFIG)
	$(BIN)/snakemake --cores $(CORES) $(SMK_FLAGS) $(TARGETS) --configfile config/quick.yaml $(CONFIG)

# The paper config at paper size on synthetic data, a few steps of two epochs a run (config/rehearsal.yaml);
# its report: results/rehearsal/report.md
rehearsal: $(STAMP)
	$(CHECK_CONFIG)
	$(BIN)/snakemake --cores $(CORES) --resources=mem_mb=$(MEM_MB) $(SMK_FLAGS) $(TARGETS) \
		--configfile config/rehearsal.yaml $(CONFIG)

# The downloads (CIFAR-10/100, MD5-checked), where the network is: on a cluster's login node before
# submitting (a SLURM run would also do it there, on the submit host, never in a compute job)
data: $(STAMP)
	$(CHECK_CONFIG)
	$(BIN)/snakemake --cores $(CORES) $(SMK_FLAGS) results/data/cifar10/ready.json results/data/cifar100/ready.json \
		--configfile config/config.yaml $(CONFIG)

paper-dry: $(STAMP)
	$(BIN)/snakemake -n all

# A SLURM run's controller as a CPU job of its own (workflow/scripts/controller.sh): it outlives the
# login session and requeues itself near its time limit. CONTROLLER_FLAGS: sbatch's, e.g.
# `-p cpu -t 7-00:00:00` (the longest your CPU partition allows); its log: results/logs/controller-<id>.log
CONTROLLER_FLAGS ?=
controller: $(STAMP)
	$(CHECK_CONFIG)
	mkdir -p results/logs
	sbatch $(CONTROLLER_FLAGS) workflow/scripts/controller.sh $(TARGETS) --configfile config/config.yaml $(CONFIG)

# GPU readiness (`rarts gpu-check`, rarts/planning/gpu_check.py): paper size on a GPU (≤ 8 min), small size on a CPU;
# writes results/bench/gpu_check.json (the step table `rarts plan` reads) and .md
gpu-check: $(STAMP)
	$(BIN)/rarts gpu-check $(GPU_CHECK_FLAGS)

# three workers (pytest-xdist) on two cores: many tests wait on subprocesses, SLURM (whose fault tests
# are paced, mostly asleep) or a server. A module's tests stay on one worker (loadfile), so a
# module-wide cluster or server is brought up once (xdist_group does not group under pytest 9: xdist
# 3.8 renames items through an attribute pytest 9 no longer reads)
PYTEST := $(BIN)/python -m pytest -q -n 3 --dist loadfile --durations=15

test: $(STAMP)
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

clean:
	rm -rf results/* results/.checkpoints .snakemake  # the glob misses the dot folder of checkpoints
	touch results/.gitkeep
