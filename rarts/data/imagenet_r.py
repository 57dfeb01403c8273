"""ImageNet-R (Table 6): a random `num_classes`-class subset of ImageNet-1k, drawn with a fixed
seed, decoded once into uint8 tensors at a fixed resolution (shorter side resized, centre crop).

Held in memory like CIFAR (20 classes at 224 px: about 3.9 GB as uint8), it goes through the same
on-device path: the D_t/D_v split, pad-and-crop plus flip augmentation, exact resume. The class
list is saved beside the tensors so every run (and a reader) knows which classes were drawn.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rarts.data import imagenet
from rarts.pipeline.errors import DatasetError
from rarts.pipeline.io import read_json, save_torch, write_json

MEAN, STD = imagenet.MEAN, imagenet.STD  # ImageNet-R is normalised as ImageNet
FILES = {True: "train.pt", False: "val.pt"}


def _decode(root, split: str, classes: list[str], resolution: int, workers: int):
    from torchvision import transforms as T

    tf = T.Compose([T.Resize(resolution), T.CenterCrop(resolution), T.PILToTensor()])
    folder = imagenet.image_folder(root, split, classes, tf)
    loader = torch.utils.data.DataLoader(folder, batch_size=256, num_workers=workers)
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def materialise(spec: dict, out_dir) -> dict:
    """spec: root (the ImageNet ImageFolder tree), num_classes, seed, resolution, workers."""
    out_dir = Path(out_dir)
    classes = imagenet.draw_subset_classes(spec["root"], spec["num_classes"], spec["seed"])
    summary = {"dataset": "imagenet_r", "source": str(spec["root"]), "classes": classes,
               "num_classes": len(classes), "seed": spec["seed"], "resolution": spec["resolution"],
               "standin": imagenet.is_standin(spec["root"])}
    for train, split in ((True, "train"), (False, "val")):
        x, y = _decode(spec["root"], split, classes, spec["resolution"], spec.get("workers", 0))
        save_torch(out_dir / FILES[train], {"x": x, "y": y, "classes": classes})
        summary[f"n_{split}"] = len(y)
    write_json(out_dir / "classes.json", classes)
    return summary


def load(root, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    path = Path(root) / FILES[train]
    if not path.is_file():
        raise DatasetError(f"ImageNet-R: {path} is missing; it is made from the ImageNet tree by "
                           "`rarts imagenet-r` (the pipeline's imagenet_r rule)")
    saved = torch.load(path, weights_only=True)
    return saved["x"], saved["y"]


def classes(root) -> list[str]:
    return read_json(Path(root) / "classes.json")
