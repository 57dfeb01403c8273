"""CIFAR-10 and CIFAR-100 in the official python format, read straight into uint8 tensors."""

from __future__ import annotations

import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rarts.pipeline.errors import DatasetError


@dataclass(frozen=True)
class CifarSpec:
    archive: str
    md5: str
    url: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


SPECS = {
    "cifar10": CifarSpec(
        archive="cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        folder="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_files=("test_batch",),
        meta_file="batches.meta",
        label_key="labels",
        names_key="label_names",
        mean=(0.49139968, 0.48215827, 0.44653124),
        std=(0.24703233, 0.24348505, 0.26158768),
    ),
    "cifar100": CifarSpec(
        archive="cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        folder="cifar-100-python",
        train_files=("train",),
        test_files=("test",),
        meta_file="meta",
        label_key="fine_labels",
        names_key="fine_label_names",
        mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762),
    ),
}

STANDIN_MARKER = "STANDIN.txt"


def spec_of(name: str) -> CifarSpec:
    if name not in SPECS:
        raise ValueError(f"unknown CIFAR dataset {name!r}; choose from {sorted(SPECS)}")
    return SPECS[name]


def _files_present(folder: Path, spec: CifarSpec) -> bool:
    names = spec.train_files + spec.test_files + (spec.meta_file,)
    return all((folder / n).is_file() for n in names)


def _md5(path: Path) -> str:
    from torchvision.datasets.utils import calculate_md5

    return calculate_md5(str(path))


def _how_to_place(root: Path, spec: CifarSpec) -> str:
    return (f"Download {spec.url} (MD5 {spec.md5}) on a machine with network access and put "
            f"it at {root / spec.archive}, or extract it so that {root / spec.folder}/ holds "
            f"{', '.join(spec.train_files + spec.test_files)} and {spec.meta_file}.")


def ensure_cifar(name: str, root: str | Path, download: bool = True) -> Path:
    """Return the extracted batch folder, extracting (and downloading) the archive if needed.

    The archive's MD5 is checked before extraction; a missing file, failed download or wrong
    checksum raises DatasetError naming the path, the expected file and checksum.
    """
    spec, root = spec_of(name), Path(root)
    folder = root / spec.folder
    if _files_present(folder, spec):
        return folder
    archive = root / spec.archive
    if not archive.is_file():
        if not download:
            raise DatasetError(f"{name}: no data at {folder} and no archive at {archive}. "
                               + _how_to_place(root, spec))
        try:
            from torchvision.datasets.utils import download_url

            root.mkdir(parents=True, exist_ok=True)
            download_url(spec.url, str(root), spec.archive, spec.md5)
        except Exception as exc:  # no network, proxy errors, partial files …
            raise DatasetError(f"{name}: download of {spec.url} to {archive} failed ({exc}). "
                               + _how_to_place(root, spec)) from exc
    actual = _md5(archive)
    if actual != spec.md5:
        raise DatasetError(f"{name}: checksum mismatch for {archive}: expected MD5 {spec.md5}, "
                           f"got {actual}. Delete the file and place the official archive: "
                           + _how_to_place(root, spec))
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(root, filter="data")
    if not _files_present(folder, spec):
        raise DatasetError(f"{name}: {archive} did not contain the expected files under "
                           f"{folder}. " + _how_to_place(root, spec))
    return folder


def _read_batch(path: Path, spec: CifarSpec) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="bytes")
        data = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(entry[spec.label_key.encode()], dtype=np.int64)
    except Exception as exc:  # noqa: BLE001 - truncated or garbage files raise anything
        raise DatasetError(f"{path} is corrupt ({type(exc).__name__}: {exc}). Delete {path.parent} and "
                           + _how_to_place(path.parent.parent, spec)) from exc
    if len(data) != len(labels):
        raise DatasetError(f"{path} is corrupt: {len(data)} images but {len(labels)} labels. Delete "
                           f"{path.parent} and " + _how_to_place(path.parent.parent, spec))
    return data, labels


def load_cifar(name: str, root: str | Path, train: bool = True, download: bool = False):
    """Images as a uint8 tensor (N, 3, 32, 32) and labels as int64 (N,), no PIL decoding."""
    spec = spec_of(name)
    folder = ensure_cifar(name, root, download=download)
    parts = [_read_batch(folder / f, spec) for f in (spec.train_files if train else spec.test_files)]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(x), torch.from_numpy(y)


def class_names(name: str, root: str | Path) -> list[str]:
    spec = spec_of(name)
    with open(Path(root) / spec.folder / spec.meta_file, "rb") as f:
        meta = pickle.load(f, encoding="bytes")
    return [n.decode() for n in meta[spec.names_key.encode()]]


def is_standin(name: str, root: str | Path) -> bool:
    return (Path(root) / spec_of(name).folder / STANDIN_MARKER).is_file()


def write_cifar(name: str, root: str | Path, train: tuple, test: tuple, names: list[str],
                standin_note: str | None = None) -> Path:
    """Write images/labels in the official python format (for stand-ins and tests)."""
    from rarts.pipeline.io import atomic_path

    spec = spec_of(name)
    folder = Path(root) / spec.folder
    folder.mkdir(parents=True, exist_ok=True)

    def dump(fname, x, y):
        x = np.asarray(x, dtype=np.uint8).reshape(len(x), -1)
        payload = {b"data": x, spec.label_key.encode(): [int(v) for v in y],
                   b"batch_label": fname.encode()}
        if name == "cifar100":
            payload[b"coarse_labels"] = [int(v) // 5 for v in y]
        with atomic_path(folder / fname) as tmp, open(tmp, "wb") as f:
            pickle.dump(payload, f)

    chunks = np.array_split(np.arange(len(train[0])), len(spec.train_files))
    for fname, idx in zip(spec.train_files, chunks):
        dump(fname, np.asarray(train[0])[idx], np.asarray(train[1])[idx])
    dump(spec.test_files[0], test[0], test[1])
    with atomic_path(folder / spec.meta_file) as tmp, open(tmp, "wb") as f:
        pickle.dump({spec.names_key.encode(): [n.encode() for n in names]}, f)
    if standin_note:
        (folder / STANDIN_MARKER).write_text(standin_note + "\n")
    return folder


def write_cifar_archive(name: str, folder: Path, archive: Path) -> Path:
    """Pack an extracted folder into the official archive layout (tests use this)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=spec_of(name).folder)
    return archive
