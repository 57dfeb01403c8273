"""`rarts search`: load the split onto the device, run one search, write its outputs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from rarts.pipeline import gpu_pool, names
from rarts.data import black, data_label, load_images, normalise
from rarts.data.split import read_split
from rarts.pipeline.io import write_json
from rarts.search.algorithms import ALGORITHMS
from rarts.core.devices import device_name, resolve_device
from rarts.search.loop import SearchData, SearchLoop
from rarts.spaces import SPACES

log = logging.getLogger("rarts.search")


def load_search_data(dataset: str, root, split_path, resolution: int, device) -> SearchData:
    """Both halves of the split as normalised tensors, held on `device` for the whole search."""
    x, y = load_images(dataset, root, train=True)
    split = read_split(split_path)
    if split["n"] != len(y):
        raise ValueError(f"{split_path} was made for {split['n']} images, {root} has {len(y)}")
    # NATS-Bench's CIFAR-100 split takes D_v from the test set (read with the training augmentation)
    x_v, y_v = (x, y) if split.get("val_from", "train") == "train" else load_images(dataset, root, train=False)
    tr, va = torch.tensor(split["train"]), torch.tensor(split["val"])
    return SearchData(*normalise(dataset, x[tr], y[tr], resolution, device),
                      *normalise(dataset, x_v[va], y_v[va], resolution, device), black(dataset))


def search_main(space: str, algo: str, seed: int, spec: dict, split_path, out_dir, ckpt_path):
    """spec: dataset, root, num_classes, standin, device, threads, hp (the search settings)."""
    out_dir = Path(out_dir)
    hp = spec["hp"]
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    search_space = SPACES[space].from_settings(hp, spec["num_classes"])
    meta = {"algorithm": algo, "seed": seed, "space": space, "dataset": spec["dataset"],
            "standin": spec["standin"], "rehearsal": spec.get("rehearsal", False), "hp": hp}
    arch_axes = {"ops": list(search_space.op_names), "edges": search_space.edge_names()}  # the history's α
    if algo == names.RANDOM:
        genotype = search_space.random_genotype(np.random.default_rng(seed))
        history, cost = [], {"device": "none (sampled)", "wall_s": 0.0, "gpu_days": 0.0}
    else:
        device = resolve_device(spec.get("device", "auto"))
        data = load_search_data(spec["dataset"], spec["root"], split_path, hp["resolution"], device)
        from rarts.core.mlflow_live import run_live

        loop = SearchLoop(search_space, algo, seed, hp, data, device, ckpt_path,
                          arch_penalty=search_space.arch_penalty(algo, hp))
        run_live(loop, spec, f"live-search-{space}-{spec['dataset']}-{algo}-seed{seed}",
                 {"algorithm": algo, "seed": seed, "space": space, "dataset": spec["dataset"]})
        genotype, history = search_space.derive(loop.algo.arch), loop.history
        search_space.save_searched(out_dir / "searched.pt", loop.algo.eval_net(), loop.algo.arch)
        cost = {"device": device_name(device), "wall_s": loop.elapsed,
                "gpu_days": loop.elapsed / 86400 if device.type == "cuda" else None,
                "steps_per_epoch": loop.steps_per_epoch,
                "passes_per_step": ALGORITHMS[algo].passes_per_step}
        meta["final_val_acc"] = history[-1]["val_acc"]
    meta.update(search_space.summarize(genotype))
    write_json(out_dir / "genotype.json", {**genotype.to_json(), "meta": meta})
    write_json(out_dir / "history.json", {**meta, **arch_axes, "epochs": history})
    write_json(out_dir / "cost.json", {"algorithm": algo, "seed": seed, **cost, **gpu_pool.record()})
    search_space.draw(genotype, out_dir / "cell.png",
                      title=f"{algo}, seed {seed}" + data_label(spec))
    log.info("%s seed %d: genotype written to %s", algo, seed, out_dir / "genotype.json")
