"""What a job costs before it runs: its training steps, from its settings and the real datasets' sizes,
times the seconds a step takes, from a step table (`make gpu-check`'s measurement, or the reference
table shipped with the package). `rarts plan` prints these costs; the workflow turns them into each
job's SLURM wall time. No torch or pandas here: the Snakefile imports it."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

from rarts.pipeline.names import IMAGES, NATS_BENCH_TRAIN, PASSES

IMAGES_PER_CLASS = 1_300, 50  # ImageNet-R's classes: at most 1,300 training and 50 validation images each
EVAL_FRACTION = 1 / 3  # a forward pass against a training step
REFERENCE = Path(__file__).with_name("reference_step_times.json")
MEASURE = "measure your own with `make gpu-check` on a node of the kind the jobs will use"


class MissingStep(KeyError):
    """The step table has no time for what a job trains."""

    def __str__(self) -> str:
        return self.args[0]


ALLOCATOR_SLACK = 1.2  # torch's caching allocator holds more than its peak of live tensors
CUDA_CONTEXT_MIB = 600  # what each process's CUDA context and kernels take on the GPU


class StepTable:
    """Seconds a step: search steps by algorithm (DARTS space), training steps by network, each at the
    batch size it was measured with (a network's step over several ranks, where measured, by its rank
    count), the DARTS operations' seconds on each kind of edge of the networks that train a searched
    cell, and ImageNet's input path in images/s; `where` says what the numbers are."""

    def __init__(self, bench: dict, source: str = ""):
        env = bench["environment"]
        self.reference = bool(bench.get("reference"))
        self.on_gpu = env.get("device") != "cpu"
        self.where = (f"the reference table shipped with rarts ({bench['reference']}); {MEASURE}" if self.reference
                      else f"steps measured on {env.get('gpu', env['device'])}, {bench['size']} size ({source})")
        self.search_batch = bench["search_size"]["batch_size"]
        self.search = {r["algorithm"]: r["median_step_s"] for r in bench["search_steps"]
                       if r["setting"] == "fp32" and r.get("median_step_s") is not None}
        self.nets = {r["network"]: (r["median_step_s"], r["batch_size"]) for r in bench["network_steps"]
                     if r.get("setting", "fp32") == "fp32" and r.get("median_step_s") is not None}
        ranked = bench.get("ranked_steps")
        self.ranked = {(r["network"], r["ranks"]): (r["median_step_s"], r["batch_size"])
                       for r in (ranked if isinstance(ranked, list) else []) if r.get("median_step_s") is not None}
        self.edges = {r["network"]: r for r in bench.get("edge_steps") or []}
        self.decode_rate = bench.get("input", {}).get("imagenet_jpeg_decoding", {}).get("images_per_s")
        peaks = [r["peak_mem_MiB"] for r in bench["search_steps"] + bench["network_steps"]
                 if r.get("setting", "fp32") == "fp32" and r.get("peak_mem_MiB")]
        self.peak_gpu_mib = max(peaks) if self.on_gpu and peaks else None  # the largest single job measured
        self.gpu_mib = 1024 * env["gpu_memory_GiB"] if env.get("gpu_memory_GiB") else None

    def slots_that_fit(self) -> int | None:
        """How many of the largest measured job fit on one of the measured GPUs at once (`local.gpu_slots`):
        its peak with the allocator's slack, plus each process's CUDA context; None without GPU peaks."""
        if not (self.peak_gpu_mib and self.gpu_mib):
            return None
        return max(1, int(self.gpu_mib // (self.peak_gpu_mib * ALLOCATOR_SLACK + CUDA_CONTEXT_MIB)))

    @classmethod
    def load(cls, path=None, required: bool = False) -> "StepTable":
        """The measured table at `path`; without one (no path, or no file there unless `required`),
        the reference table."""
        if path and Path(path).is_file():
            return cls(json.loads(Path(path).read_text()), str(path))
        if path and required:
            raise FileNotFoundError(f"no step table at {path}: write one with `make gpu-check`, or name none "
                                    "to plan from the reference table")
        return reference_table()

    def _net(self, net: str, what: str) -> tuple[float, int]:
        if net not in self.nets:
            raise MissingStep(f"{what}: the step table ({self.where}) has no step time for network {net!r}; it "
                              f"has {sorted(self.nets)}")
        return self.nets[net]

    def search_step(self, space: str, algo: str, net: str | None, batch: int, what: str = "a search") -> float:
        if space == "darts":
            if algo not in self.search:
                raise MissingStep(f"{what}: the step table ({self.where}) has no {algo} search step")
            return self.search[algo] * batch / self.search_batch
        if space == "nats":
            return self._darts1_scaled("nats-search (darts1 step)", algo, batch, what)
        if f"{net}-search (darts1 step)" in self.nets:  # width
            return self._darts1_scaled(f"{net}-search (darts1 step)", algo, batch, what)
        return self.train_step(net, batch, what) * PASSES[algo]  # no such step: a training step a pass

    def _darts1_scaled(self, row: str, algo: str, batch: int, what: str) -> float:
        """A measured DARTS-1 search step, scaled by the algorithm's passes and the batch."""
        t, b = self._net(row, what)
        return t * PASSES[algo] / PASSES["darts1"] * batch / b

    def train_step(self, net: str, batch: int, what: str = "a training", ranks: int = 1,
                   cell: dict | None = None) -> float:
        """Wall seconds a step of a job of `ranks` ranks at global batch `batch`, training `cell` (a
        genotype's JSON; None: the table's own). Its compute: the step measured over that many ranks if
        the table has it; else on GPUs one GPU's share of the batch, on a CPU one process's whole batch
        (the ranks share its cores); scaled by `cell_factor`. ImageNet's input path, if measured: on GPUs
        each rank's loader decodes its share beside the step (the slower of the two sets the pace); on a
        CPU the loaders share the step's cores (the two add up)."""
        if (net, ranks) in self.ranked:
            t, b = self.ranked[net, ranks]
            compute = t * batch / b
        else:
            t, b = self._net(net, what)
            compute = t * batch / b / (ranks if self.on_gpu else 1)
        compute *= self.cell_factor(net, cell)
        if net != "imagenet" or not self.decode_rate:
            return compute
        if self.on_gpu:
            return max(compute, batch / ranks / self.decode_rate)
        return compute + batch / self.decode_rate

    def cell_factor(self, net: str, cell: dict | None) -> float:
        """A step of network `net` with `cell` over its step with the table's cell: the step measured
        plus the difference of the two cells' edges (their operations' measured seconds; the stem,
        preprocessing, heads and update cost the same in both). 1 without a cell or edge times."""
        if not cell or net not in self.edges:
            return 1.0
        row = self.edges[net]
        t, b = self._net(net, f"a {net} training")
        extra = (edge_seconds(row, cell) - edge_seconds(row, row["genotype"])) * b / row["batch_size"]
        return (t + extra) / t


def edge_seconds(row: dict, cell: dict) -> float:
    """Seconds of a genotype's edges in one step, from a table's edge row (each operation's seconds on an
    edge of each kind, summed over the network's cells of that kind): a reduction cell's edges from its
    two inputs take stride 2, its edges from its nodes stride 1."""
    normal = sum(row["normal"][op] for op, _ in cell["normal"])
    return normal + sum(row["reduce_input" if j < 2 else "reduce_node"][op] for op, j in cell["reduce"])


@functools.cache
def reference_table() -> StepTable:
    return StepTable(json.loads(REFERENCE.read_text()), str(REFERENCE))


def train_images(spec: dict) -> int:
    ds = spec["dataset"]
    return IMAGES_PER_CLASS[0] * spec["num_classes"] if ds == "imagenet_r" else IMAGES[ds][0]


def eval_images(spec: dict) -> int:
    ds = spec["dataset"]
    return IMAGES_PER_CLASS[1] * spec["num_classes"] if ds == "imagenet_r" else IMAGES[ds][1]


def search_images(space: str, spec: dict, portion: float) -> int:
    """|D_t| of a search, by the split rule the job reads (rarts.data.split)."""
    if space == "nats" and spec["hp"].get("split") == "nats-bench":
        return NATS_BENCH_TRAIN[spec["dataset"]]
    return int(math.floor(portion * train_images(spec)))


def steps_per_epoch(hp: dict, batches: int) -> int:
    """An epoch's steps: a pass over the data's `batches` full batches, at most `max_steps_per_epoch`
    (the searches' and trainings' loops take theirs from here too)."""
    return min(batches, hp["max_steps_per_epoch"]) if hp.get("max_steps_per_epoch") else batches


def epochs_steps(hp: dict, images: int) -> tuple[int, int]:
    return hp["epochs"], steps_per_epoch(hp, images // hp["batch_size"])


def eval_batches(hp: dict, images: int) -> int:
    """Training-sized batches of one evaluation pass (`eval_batches` caps them; 0: all of them)."""
    whole = images // hp["batch_size"]
    return min(whole, hp["eval_batches"]) if hp.get("eval_batches") else whole


def search_cost(space: str, algo: str, spec: dict, table: StepTable, portion: float) -> tuple[int, float]:
    """(steps, seconds) of one search: its steps, and one evaluation pass over D_v an epoch."""
    hp = spec["hp"]
    d_t = search_images(space, spec, portion)
    epochs, per_epoch = epochs_steps(hp, d_t)
    step = table.search_step(space, algo, spec.get("net", {}).get("name"), hp["batch_size"], f"a {algo} search")
    evals = eval_batches(hp, d_t) * step / PASSES[algo] * EVAL_FRACTION
    return epochs * per_epoch, epochs * (per_epoch * step + evals)


def train_cost(net: str, spec: dict, table: StepTable, ranks: int = 1, cell: dict | None = None) -> tuple[int, float]:
    """(steps, GPU-seconds: its wall seconds × its ranks) of one training of network `net` (with `cell`,
    a genotype's JSON, where known) over `ranks` ranks, with one test-set pass an epoch."""
    hp = spec["hp"]
    epochs, per_epoch = epochs_steps(hp, train_images(spec))
    step = table.train_step(net, hp["batch_size"], f"a {net} training", ranks, cell)
    evals = eval_batches(hp, eval_images(spec)) * step * EVAL_FRACTION
    return epochs * per_epoch, epochs * (per_epoch * step + evals) * ranks


def local_train_cost(spec: dict, cells: int, table: StepTable) -> tuple[int, float]:
    """(steps, seconds) of scoring `cells` NATS-Bench cells by brief training (no benchmark)."""
    hp = spec["hp"]
    epochs, per_epoch = epochs_steps(hp, train_images(spec))
    return cells * epochs * per_epoch, cells * epochs * per_epoch * table.train_step("nats", hp["batch_size"])
