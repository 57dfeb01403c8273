"""`rarts train`: retrain a genotype on CIFAR (in-memory, on-device augmentation) or ImageNet
(ImageFolder + DataLoader), on one device or one process per GPU under torchrun."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from rarts.core import checkpoint
from rarts.pipeline import gpu_pool
from rarts.data import black, imagenet, load_images, normalise
from rarts.core.engine import eval_batch_size
from rarts.pipeline.io import write_json
from rarts.models import build_network, load_arch
from rarts.models.params import n_params
from rarts.core.devices import device_name, resolve_device
from rarts.core.distributed import end_distributed, init_distributed, launch
from rarts.train.sources import FolderEval, FolderSource, TensorSource, tensor_eval_batches
from rarts.core.mlflow_live import run_live
from rarts.train.trainer import Trainer

log = logging.getLogger("rarts.train")

def tensor_setup(spec, hp, dist, device):
    ds, res = spec["dataset"], hp["resolution"]
    x, y = load_images(ds, spec["root"], train=True)
    if hp.get("limit_train"):
        x, y = x[:hp["limit_train"]], y[:hp["limit_train"]]
    x, y = normalise(ds, x, y, res, device)
    xt, yt = load_images(ds, spec["root"], train=False)
    keep = eval_subset(len(yt), hp)
    xt, yt = normalise(ds, xt[keep], yt[keep], res, device)
    source = TensorSource(x, y, hp["batch_size"], hp["seed"], dist, crop_padding=hp["crop_padding"],
                          hflip=hp["hflip"], cutout=hp["cutout"], pad_value=black(ds), device=device)
    evals = lambda: tensor_eval_batches(xt, yt, eval_batch_size(hp["batch_size"]), dist, device)  # noqa: E731
    return source, evals, int(y.max()) + 1


def eval_subset(n: int, hp: dict) -> torch.Tensor:
    """The test images an epoch's evaluation measures: all of them, or `eval_batches` × batch size of
    them spread evenly over the set (its classes are stored in order)."""
    want = hp.get("eval_batches", 0) * hp["batch_size"]
    if not want or want >= n:
        return torch.arange(n)
    return torch.linspace(0, n - 1, want).round().long()


def imagenet_setup(spec, hp, dist, device):
    classes = spec.get("classes")
    train_ds = imagenet.image_folder(spec["root"], "train", classes, imagenet.train_transform(hp))
    val_ds = imagenet.image_folder(spec["root"], "val", classes, imagenet.eval_transform(hp["resolution"]))
    val_ds = torch.utils.data.Subset(val_ds, eval_subset(len(val_ds), hp).tolist())
    source = FolderSource(train_ds, hp["batch_size"], hp["seed"], dist, hp["workers"], device)
    batch = eval_batch_size(hp["batch_size"])
    evals = FolderEval(val_ds, batch, dist, hp["workers"], device)
    return source, evals, len(train_ds.classes)


# Seconds torchrun gives its ranks after a SIGTERM before it kills them: time for the step in flight
# and one checkpoint (SLURM's own KillWait still bounds it).
SHUTDOWN_S = 300


def relaunch_under_torchrun(gpus: int, argv: list[str]) -> None:
    """Replace this process by torchrun with one worker per GPU (capped at the GPUs present;
    on a CPU-only machine, `gpus` gloo processes)."""
    import os
    import shutil

    n = min(gpus, torch.cuda.device_count()) if torch.cuda.is_available() else gpus
    torchrun = shutil.which("torchrun") or "torchrun"
    log.info("launching %d processes with %s", n, torchrun)
    os.execvp(torchrun, [torchrun, "--standalone", f"--nproc_per_node={n}", f"--shutdown-timeout={SHUTDOWN_S}",
                         "-m", "rarts", *argv])


def start_job(spec: dict):
    """This rank's device (a job given GPUs never falls back to the CPU), torchrun's process group
    (if any), and torch's threads."""
    where = launch()
    device = resolve_device(spec.get("device", "auto"), where.local_rank, where.world)
    dist = init_distributed(device)
    if spec.get("threads"):
        torch.set_num_threads(threads_per_rank(spec["threads"]))
    return dist, device


def threads_per_rank(threads: int, env=None) -> int:
    """The job's threads shared by the ranks torchrun started on this node: each rank taking them all
    oversubscribes the cores (the rehearsal's 4 gloo ranks on 2 cores: 90 s a step against 7.5 s for
    one process with the same global batch)."""
    env = os.environ if env is None else env
    return max(1, threads // int(env.get("LOCAL_WORLD_SIZE", "1")))


def train_main(net: str, genotype_ref: str, name: str, spec: dict, out_dir, ckpt_path, on_step=None) -> dict:
    """spec: dataset, root, standin, device, threads, hp. Returns the metrics written (rank 0)."""
    dist, device = start_job(spec)
    try:
        return _train(net, genotype_ref, name, spec, out_dir, ckpt_path, on_step, dist, device)
    finally:
        end_distributed()


def _train(net, genotype_ref, name, spec, out_dir, ckpt_path, on_step, dist, device) -> dict:
    hp = spec["hp"]
    genotype = load_arch(net, genotype_ref)
    setup = imagenet_setup if net == "imagenet" else tensor_setup
    source, eval_fn, num_classes = setup(spec, hp, dist, device)
    checkpoint.seed_everything(hp["seed"])  # same initial weights on every rank
    model = build_network(net, genotype, num_classes, **hp)
    torch.manual_seed(hp["seed"] + 7919 * dist.rank)  # per-rank drop-path masks
    # not the process count: every rank slices the same global batch, so a rerun on another GPU count resumes
    fp = {"net": net, "genotype": genotype.to_json(), "hp": hp, "data": [spec["dataset"], spec["root"]]}
    trainer = Trainer(model, hp, device, dist, ckpt_path, name, fp, source, eval_fn, on_step=on_step)
    history = run_live(trainer, spec, f"live-train-{net}-{name}", {"net": net, "name": name})
    in_sync = trainer.weights_in_sync()
    last = history[-1]
    metrics = {"name": name, "net": net, "dataset": spec["dataset"], "standin": spec["standin"], "rehearsal": spec.get("rehearsal", False),
               "genotype": genotype.to_json(), "params": n_params(model),
               "params_M": n_params(model) / 1e6, "num_classes": num_classes,
               "test_error": 100 * (1 - last["test_acc"]), "test_top5_error": 100 * (1 - last["test_top5"]),
               "device": device_name(device), "world_size": dist.world, "ranks_in_sync": in_sync,
               "threads_per_rank": torch.get_num_threads(), "wall_s": trainer.elapsed, **gpu_pool.record(),
               "hp": hp, "history": history}
    if dist.main:
        write_json(Path(out_dir) / "metrics.json", metrics)
        log.info("%s: test error %.2f%% (%d params)", name, metrics["test_error"], metrics["params"])
    return metrics
