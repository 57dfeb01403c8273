"""Synthetic data for the dress rehearsal (`make rehearsal`): the paper config's datasets in their real
on-disk formats at their real sizes, so the real loaders, splits and decode rules run at paper size.

- CIFAR-10 and CIFAR-100: the python-format batches with 50,000 training and 10,000 test images of
  32×32 (the counts NATS-Bench's fixed splits check);
- ImageNet: an ImageFolder tree of 1,000 class folders, TRAIN_PER_CLASS training and VAL_PER_CLASS
  validation JPEGs each, of ImageNet's typical sizes (ImageNet-R draws 20 classes from it);
- NATS-Bench: the benchmark folder `nats_bench` reads in fast mode, with every one of the 15,625
  cells of the topology space.

The images are smooth random colour fields, the benchmark's accuracies a fixed function of the cell:
numbers that exercise every path and mean nothing. A REHEARSAL.txt marker travels with each folder,
and every table and figure made from them says "rehearsal".
"""

from __future__ import annotations

import bz2
import hashlib
import itertools
import pickle
from pathlib import Path

import numpy as np

MARKER = "REHEARSAL.txt"
NOTE = ("Rehearsal data: synthetic images (or benchmark entries) in the {fmt} on-disk format at the real "
        "dataset's sizes. Not the real dataset: the numbers mean nothing.")
TRAIN_PER_CLASS, VAL_PER_CLASS = 8, 2  # ImageNet: ImageNet-R's 20 classes give 160 and 40 images
IMAGENET_CLASSES = 1000
SIZES = ((500, 375), (375, 500), (500, 333), (640, 480), (500, 500), (333, 500))  # ImageNet's usual (w, h)
CIFAR_COUNTS = {"cifar10": (10, 50_000, 10_000), "cifar100": (100, 50_000, 10_000)}  # classes, train, test


def is_rehearsal(root) -> bool:
    """Whether a dataset folder (or the CIFAR batch folder inside it) holds rehearsal data."""
    root = Path(root)
    return (root / MARKER).is_file() or any(root.glob(f"*/{MARKER}"))


def smooth_images(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """n uint8 (h, w, 3) images: a random 4×4 colour grid each, bilinearly upscaled (JPEG-friendly)."""
    from PIL import Image

    grids = rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(g).resize((w, h), Image.BILINEAR)) for g in grids])


def write_cifar(name: str, root, seed: int = 0) -> Path:
    from rarts.data import cifar

    classes, n_train, n_test = CIFAR_COUNTS[name]
    rng = np.random.default_rng(seed)
    folder = None
    parts = []
    for n in (n_train, n_test):
        x = smooth_images(rng, n, 32, 32).transpose(0, 3, 1, 2)
        parts.append((x, rng.integers(0, classes, n)))
    folder = cifar.write_cifar(name, root, parts[0], parts[1], [f"class_{c:03d}" for c in range(classes)])
    (folder / MARKER).write_text(NOTE.format(fmt=f"{name} python") + "\n")
    return folder


def write_imagefolder(root, seed: int = 0, classes: int = IMAGENET_CLASSES,
                      per_class: tuple[int, int] = (TRAIN_PER_CLASS, VAL_PER_CLASS), fuller: dict | None = None) -> Path:
    """ImageNet's layout: train/<wnid>/*.JPEG and val/<wnid>/*.JPEG, ImageNet-like image sizes;
    `per_class` training and validation images a class, `fuller` other counts for some classes."""
    from PIL import Image

    root, rng = Path(root), np.random.default_rng(seed)
    for c in range(classes):
        wnid = f"n{c:08d}"
        for split, count in zip(("train", "val"), (fuller or {}).get(wnid, per_class)):
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                w, h = SIZES[int(rng.integers(len(SIZES)))]
                img = smooth_images(rng, 1, h, w)[0]
                Image.fromarray(img).save(folder / f"{wnid}_{i:04d}.JPEG", quality=85)
    (root / MARKER).write_text(NOTE.format(fmt="ImageFolder (JPEG)") + "\n")
    return root


def write_nats_benchmark(path, cells: dict) -> Path:
    """A NATS-Bench topology benchmark in the real fast-mode format: `cells` maps an arch string to
    {hp: {dataset: {seed: (test_accuracy, params_M, flops_M)}}}; a cell's index is its position."""
    from nats_bench.api_utils import ArchResults, ResultsCount

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    archs = list(cells)

    def dump(obj, name):
        with bz2.BZ2File(path / name, "wb") as f:
            pickle.dump(obj, f)

    dump({"meta_archs": archs, "arch2infos": {}, "evaluated_indexes": list(range(len(archs)))}, "meta.pickle.pbz2")
    for index, arch in enumerate(archs):
        per_hp = {}
        for hp, per_ds in cells[arch].items():
            res = ArchResults(index, arch)
            epochs = int(hp)
            for ds, per_seed in per_ds.items():
                set_name = "ori-test" if ds == "cifar10" else "x-test"
                for seed, (acc, params, flops) in per_seed.items():
                    rc = ResultsCount(ds, None, {e: acc for e in range(epochs)}, {e: 1.0 for e in range(epochs)},
                                      params, flops, {"arch_str": arch, "C": 16, "N": 5}, seed, epochs, [0.01])
                    rc.update_train_info({e: acc for e in range(epochs)}, {e: 100.0 for e in range(epochs)},
                                         {e: 1.0 for e in range(epochs)}, {e: 1.0 for e in range(epochs)})
                    keys = [f"{set_name}@{e}" for e in range(epochs)]
                    rc.update_eval({k: acc for k in keys}, {k: 1.0 for k in keys}, {k: 0.1 for k in keys})
                    res.update(ds, seed, rc)
            per_hp[hp] = res.state_dict()
        dump(per_hp, f"{index:06d}.pickle.pbz2")
    return path


def every_nats_cell() -> list[str]:
    """The 5^6 = 15,625 cells of the topology space, as arch strings."""
    from rarts.models.nats import NATS_OPS, NatsCell

    return [NatsCell(ops).arch_str() for ops in itertools.product(NATS_OPS, repeat=6)]


def write_nats(path) -> Path:
    """Every cell of the space, with a test accuracy fixed by a hash of the cell, for hp='200' on
    CIFAR-10 and CIFAR-100 (one seed: what the pipeline queries)."""
    def accuracy(arch: str, ds: str) -> float:
        return 40 + 55 * int(hashlib.sha256(f"{arch}{ds}".encode()).hexdigest()[:6], 16) / 0xFFFFFF

    cells = {arch: {"200": {ds: {777: (accuracy(arch, ds), 0.5, 50.0)} for ds in ("cifar10", "cifar100")}}
             for arch in every_nats_cell()}
    out = write_nats_benchmark(path, cells)
    (out / MARKER).write_text(NOTE.format(fmt="NATS-Bench fast-mode") + "\n")
    return out
