"""ImageNet as an ImageFolder tree (`train/`, `val/`) and the ImageNet-R class subset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rarts.data.errors import DatasetError

STANDIN_MARKER = "STANDIN.txt"


def check_imagefolder(root: str | Path) -> Path:
    root = Path(root)
    missing = [s for s in ("train", "val") if not (root / s).is_dir()]
    if missing:
        raise DatasetError(
            f"ImageNet: no {' and '.join(missing)}/ folder under {root}. ImageNet cannot be "
            "downloaded automatically: get ILSVRC2012 from https://image-net.org/, and lay it "
            f"out as {root}/train/<wnid>/*.JPEG and {root}/val/<wnid>/*.JPEG (one folder per "
            "class, the usual torchvision ImageFolder layout).")
    return root


def class_list(root: str | Path) -> list[str]:
    return sorted(p.name for p in (check_imagefolder(root) / "train").iterdir() if p.is_dir())


def draw_subset_classes(root: str | Path, num_classes: int, seed: int) -> list[str]:
    """ImageNet-R: `num_classes` classes drawn with a fixed seed (sorted for stable labels)."""
    classes = class_list(root)
    if num_classes > len(classes):
        raise DatasetError(f"ImageNet-R wants {num_classes} classes but {root}/train has only "
                           f"{len(classes)}")
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(classes, size=num_classes, replace=False).tolist())


def image_folder(root: str | Path, split: str, classes: list[str] | None = None, transform=None):
    """A torchvision ImageFolder over `root/split`, restricted to `classes` without copying."""
    from torchvision.datasets import ImageFolder

    folder = check_imagefolder(root) / split

    class SubsetFolder(ImageFolder):
        def find_classes(self, directory):
            found, _ = super().find_classes(directory)
            keep = found if classes is None else [c for c in classes if c in found]
            if classes is not None and len(keep) != len(classes):
                lost = sorted(set(classes) - set(found))
                raise DatasetError(f"classes {lost} are missing under {directory}")
            return keep, {c: i for i, c in enumerate(keep)}

    return SubsetFolder(str(folder), transform=transform)


def is_standin(root: str | Path) -> bool:
    return (Path(root) / STANDIN_MARKER).is_file()
