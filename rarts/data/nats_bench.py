"""The NATS-Bench benchmark file on disk: where it comes from, and the check made before any search is
scored from it (lookups: `rarts.measure.nats_lookup`)."""

from __future__ import annotations

from pathlib import Path

from rarts.pipeline.errors import DatasetError

BENCH_DIR = "NATS-tss-v1_0-3ffb9-simple"
WHERE = ("NATS-Bench is published by its authors (https://github.com/D-X-Y/NATS-Bench, file "
         f"{BENCH_DIR}.tar, about 1 GB); it cannot be downloaded here. Extract it and point "
         f"`nats.benchmark` at the {BENCH_DIR}/ folder (it holds meta.pickle.pbz2 and one "
         "NNNNNN.pickle.pbz2 per cell).")


def check_benchmark(path) -> Path:
    path = Path(path)
    if not (path / "meta.pickle.pbz2").is_file():
        raise DatasetError(f"NATS-Bench: no benchmark at {path} (expected {path}/meta.pickle.pbz2). {WHERE}")
    return path
