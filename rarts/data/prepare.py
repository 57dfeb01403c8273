"""Pipeline steps for data: make a dataset ready (real or stand-in) and write the search split."""

from __future__ import annotations

from pathlib import Path

from rarts.data import cifar, imagenet, load_images, nats_bench, rehearsal, split, standin
from rarts.pipeline.io import write_json


def prepare_dataset(dataset: str, spec: dict, out) -> dict:
    """spec: root, standin (write the digits stand-in if the root is empty), rehearsal (write the
    rehearsal's synthetic data there instead), download, threads (ImageNet: images decoded in
    parallel to verify them). `nats-bench`: the benchmark folder is checked (or, rehearsing, written)."""
    root = Path(spec["root"])
    if dataset == "nats-bench":
        return prepare_nats_bench(root, spec, out)
    if dataset == "imagenet":
        if not (root / "train").is_dir():
            if spec["standin"]:
                standin.write_imagefolder_standin(root)
            elif spec.get("rehearsal"):
                rehearsal.write_imagefolder(root)
        counts = imagenet.verify_imagefolder(root, spec.get("threads") or 1)
        summary = {"dataset": dataset, "root": str(root), "standin": imagenet.is_standin(root), **counts}
    else:
        folder = root / cifar.spec_of(dataset).folder
        if not folder.is_dir():
            if spec["standin"]:
                standin.write_cifar_standin(dataset, root)
            elif spec.get("rehearsal"):
                rehearsal.write_cifar(dataset, root)
        cifar.ensure_cifar(dataset, root, download=spec["download"])
        _, y_train = cifar.load_cifar(dataset, root, train=True)
        _, y_test = cifar.load_cifar(dataset, root, train=False)
        summary = {"dataset": dataset, "root": str(root), "standin": cifar.is_standin(dataset, root),
                   "num_classes": int(y_train.max()) + 1, "n_train": len(y_train),
                   "n_test": len(y_test)}
    summary["rehearsal"] = rehearsal.is_rehearsal(root)
    if summary["standin"]:
        summary["note"] = standin.NOTE.format(fmt=dataset)
    elif summary["rehearsal"]:
        summary["note"] = rehearsal.NOTE.format(fmt=dataset)
    write_json(out, summary)
    return summary


def prepare_nats_bench(root: Path, spec: dict, out) -> dict:
    """The NATS-Bench folder before any search is scored from it: there (or written, rehearsing)."""
    if spec.get("rehearsal") and not (root / "meta.pickle.pbz2").is_file():
        rehearsal.write_nats(root)
    nats_bench.check_benchmark(root)
    summary = {"dataset": "nats-bench", "root": str(root), "standin": False,
               "rehearsal": rehearsal.is_rehearsal(root)}
    write_json(out, summary)
    return summary


def make_search_split(dataset: str, spec: dict, out) -> dict:
    """spec: root, protocol (halves: seed, portion; nats-bench: NATS-Bench's fixed split, or its
    rule on a stand-in). Every search rule reads the file this writes."""
    _, y_train = load_images(dataset, spec["root"], train=True)
    if spec.get("protocol", "halves") == "halves":
        return split.write_split(out, dataset, len(y_train), spec["seed"], spec["portion"])
    _, y_test = load_images(dataset, spec["root"], train=False)
    chosen = {"dataset": dataset, **split.nats_bench_split(dataset, len(y_train), len(y_test),
                                                           cifar.is_standin(dataset, spec["root"]))}
    write_json(out, chosen)
    return chosen
