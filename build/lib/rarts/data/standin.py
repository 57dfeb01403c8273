"""Offline stand-ins: scikit-learn's bundled digits written in the real on-disk formats.

Each 8×8 digit is scaled to 32×32 RGB so the CIFAR and ImageFolder loaders read it exactly as
they would read the real data. A STANDIN.txt marker travels with the files so every table made
from them can say so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NOTE = ("Offline stand-in: scikit-learn's digits (1,797 images, 8x8, 10 classes), scaled to "
        "32x32 RGB and written in the {fmt} on-disk format. Not the real dataset.")


def digits_images(size: int = 32, seed: int = 0, test_fraction: float = 0.2):
    """Digits as uint8 (N, 3, size, size) with labels, split into train and test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0 * 255.0).round().astype(np.uint8)  # (N, 8, 8)
    x = np.kron(x, np.ones((size // 8, size // 8), dtype=np.uint8))  # nearest upscaling
    x = np.repeat(x[:, None], 3, axis=1)
    y = digits.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, train = perm[:n_test], perm[n_test:]
    return (x[train], y[train]), (x[test], y[test])


def write_cifar_standin(name: str, root: str | Path, seed: int = 0) -> Path:
    from rarts.data import cifar

    train, test = digits_images(seed=seed)
    names = [f"digit_{d}" for d in range(10)]
    return cifar.write_cifar(name, root, train, test, names,
                             standin_note=NOTE.format(fmt=f"{name} python"))


def write_imagefolder_standin(root: str | Path, seed: int = 0) -> Path:
    from PIL import Image

    from rarts.data.imagenet import STANDIN_MARKER

    root = Path(root)
    train, test = digits_images(seed=seed)
    for split, (x, y) in (("train", train), ("val", test)):
        for i, (img, label) in enumerate(zip(x, y)):
            folder = root / split / f"n{label:08d}"  # ImageNet-style wnid folder names
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img.transpose(1, 2, 0)).save(folder / f"{split}_{i:05d}.png")
    (root / STANDIN_MARKER).write_text(NOTE.format(fmt="ImageFolder (PNG)") + "\n")
    return root
