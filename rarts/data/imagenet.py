"""ImageNet as an ImageFolder tree (`train/`, `val/`) and the ImageNet-R class subset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rarts.pipeline.errors import DatasetError

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


def _decode_error(path: Path) -> str:
    """'' if the image decodes completely, else why not."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
        return ""
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for damaged files
        return f"{type(exc).__name__}: {exc}"


def verify_imagefolder(root: str | Path, workers: int = 1) -> dict:
    """Check an ImageFolder tree before anything trains on it: train/ and val/ hold the same class
    folders, none without images, and every image decodes (in `workers` threads, with a progress
    bar). Raises DatasetError listing every problem; returns the counts."""
    from concurrent.futures import ThreadPoolExecutor

    from torchvision.datasets.folder import IMG_EXTENSIONS
    from tqdm import tqdm

    root, splits = check_imagefolder(root), ("train", "val")
    classes = {s: sorted(p.name for p in (root / s).iterdir() if p.is_dir()) for s in splits}
    problems = []
    if classes["train"] != classes["val"]:
        problems.append(f"class folders differ: only in train/: {sorted(set(classes['train']) - set(classes['val']))}, "
                        f"only in val/: {sorted(set(classes['val']) - set(classes['train']))}")
    images = {s: {c: sorted(f for f in (root / s / c).rglob("*") if f.is_file() and f.suffix.lower() in IMG_EXTENSIONS)
                  for c in classes[s]} for s in splits}
    problems += [f"{root / s / c}: no images" for s in splits for c, files in images[s].items() if not files]
    every = [f for s in splits for files in images[s].values() for f in files]
    with ThreadPoolExecutor(max(1, workers)) as pool:
        errors = list(tqdm(pool.map(_decode_error, every), total=len(every), desc="decoding ImageNet images",
                           disable=None))
    problems += [f"{f}: {err}" for f, err in zip(every, errors) if err]
    if problems:
        raise DatasetError(f"ImageNet at {root} is not usable; fix or remove these and run again:\n  "
                           + "\n  ".join(problems))
    return {"num_classes": len(classes["train"]), "n_train": sum(map(len, images["train"].values())),
            "n_val": sum(map(len, images["val"].values()))}


MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # the usual ImageNet normalisation


def train_transform(hp: dict):
    """The DARTS ImageNet protocol's augmentation: random-resized crop (`crop_scale`), flip, colour
    jitter, then normalisation."""
    from torchvision import transforms as T  # two seconds of start-up: only the ImageNet jobs pay it

    flip = [T.RandomHorizontalFlip()] if hp["hflip"] else []
    return T.Compose([T.RandomResizedCrop(hp["resolution"], scale=tuple(hp["crop_scale"])), *flip,
                      T.ColorJitter(*hp["color_jitter"]), T.ToTensor(), T.Normalize(MEAN, STD)])


def eval_transform(resolution: int):
    """Resize to 256/224 of the side, centre crop, normalisation (the standard evaluation)."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(round(resolution * 256 / 224)), T.CenterCrop(resolution), T.ToTensor(),
                      T.Normalize(MEAN, STD)])


def class_list(root: str | Path) -> list[str]:
    return sorted(p.name for p in (check_imagefolder(root) / "train").iterdir() if p.is_dir())


def draw_subset_classes(root: str | Path, num_classes: int, seed: int) -> list[str]:
    """ImageNet-R: `num_classes` classes of the tree at `root` drawn with a fixed seed."""
    classes = class_list(root)
    if num_classes > len(classes):
        raise DatasetError(f"ImageNet-R wants {num_classes} classes but {root}/train has only "
                           f"{len(classes)}")
    return draw_subset_classes_of(classes, num_classes, seed)


def draw_subset_classes_of(classes: list[str], num_classes: int, seed: int) -> list[str]:
    """The draw itself, from the sorted class folders (sorted again for stable labels)."""
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(sorted(classes), size=num_classes, replace=False).tolist())


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
