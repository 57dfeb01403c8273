"""`rarts width-train`: one training of a width-search network (Tables 5, 6).

From scratch (the baseline; Network Slimming's sparsity training when hp.sparsity > 0), or from a
saved network pruned first (fine-tuning): Network Slimming's BN-scale threshold, the searched
channel scores at a ratio or a threshold, or random channels at another run's per-layer widths.
The pruned network is rebuilt thinner; its parameters, FLOPs and channel pruning ratio are
measured on that network.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from rarts.core import checkpoint
from rarts.pipeline import gpu_pool
from rarts.pipeline.io import read_json, write_json
from rarts.models import prunable
from rarts.models.params import n_flops, n_params
from rarts.models.pruning import bn_sparsity_hook, choose_masks, prc
from rarts.core.devices import device_name
from rarts.spaces.width import WidthGenotype
from rarts.core.mlflow_live import run_live
from rarts.train.run import start_job, tensor_setup
from rarts.train.trainer import Trainer

log = logging.getLogger("rarts.train")


def pruned_source(source, rule: str, value: float, like, seed: int):
    """The saved network at `source`, pruned by `rule` (see `pruning.choose_masks`). Scores: the
    source's searched channel scores when it has them, else its BN scales (Network Slimming)."""
    model, saved = prunable.load(source)
    searched = saved["scores"]
    scores = searched if searched is not None else prunable.bn_scales(model)
    like_masks = None
    if rule == "random":
        like_masks = WidthGenotype.from_json(read_json(like), model.score_shapes()).masks
    masks = choose_masks(rule, scores, value, like_masks, seed)
    thin = prunable.prune(saved["net"], model, masks, searched)
    return thin, masks, "searched channel scores" if searched is not None else "BN scales"


def width_train_main(name: str, spec: dict, out_dir, ckpt_path, source=None, rule="none", value=0.0,
                     like=None, on_step=None) -> dict:
    """spec: dataset, root, standin, device, threads, num_classes, net {name, kw}, hp (training)."""
    hp, net = spec["hp"], spec["net"]
    dist, device = start_job(spec)
    source_data, eval_fn, _ = tensor_setup(spec, hp, dist, device)
    checkpoint.seed_everything(hp["seed"])
    if source is None:
        model = prunable.build(net["name"], spec["num_classes"], **net["kw"])
        masks = [torch.ones(c, dtype=torch.bool) for c in model.score_shapes()]
        scored_by = None
    else:
        model, masks, scored_by = pruned_source(source, rule, value, like, hp["seed"])
    genotype = WidthGenotype(masks)
    fp = {"name": name, "spec": {k: spec[k] for k in ("dataset", "root", "net", "hp")}, "source": str(source),
          "rule": rule, "value": value, "keep": genotype.to_json()["keep"]}
    grad_hook = bn_sparsity_hook(hp["sparsity"]) if hp.get("sparsity") else None
    trainer = Trainer(model, hp, device, dist, ckpt_path, name, fp, source_data, eval_fn, on_step=on_step,
                      grad_hook=grad_hook)
    history = run_live(trainer, spec, f"live-width-{name}", {"name": name, "net": net["name"], "rule": rule})
    ratio = prc(masks)
    metrics = {"name": name, "net": net, "dataset": spec["dataset"], "standin": spec["standin"], "rehearsal": spec.get("rehearsal", False),
               "source": None if source is None else str(source), "rule": rule, "value": value,
               "scored_by": scored_by, "params": n_params(model), "params_M": n_params(model) / 1e6,
               "flops": n_flops(model, (3, hp["resolution"], hp["resolution"])),
               "prc": ratio["overall"], "prc_mean_over_pruned_layers": ratio["mean_over_pruned_layers"],
               "widths": genotype.brief()["widths"], "test_error": 100 * (1 - history[-1]["test_acc"]),
               "best_test_error": 100 * (1 - max(r["test_acc"] for r in history)),
               "device": device_name(device), "wall_s": trainer.elapsed, **gpu_pool.record(), "hp": hp, "history": history}
    out_dir = Path(out_dir)
    prunable.save(out_dir / "model.pt", net["name"], spec["num_classes"], net["kw"], model)
    write_json(out_dir / "genotype.json", genotype.to_json())
    write_json(out_dir / "metrics.json", metrics)
    log.info("%s: test error %.2f%%, %d params, %.3g FLOPs, PRC %.1f%%", name, metrics["test_error"],
             metrics["params"], metrics["flops"], 100 * metrics["prc"])
    return metrics
