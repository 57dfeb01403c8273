"""Where the workflow keeps things, written once for the rules and the package: the config and the
SLURM profile the tools read, the names of Table 1's trainings, and the run folders whose names say
which row of a table a job feeds (the rules build them, the tables read the rows back)."""

from __future__ import annotations

import re
from pathlib import Path

CONFIG = "config/config.yaml"  # the paper's settings; every --configfile is overlaid on it
SLURM_PROFILE = "workflow/profiles/slurm/config.yaml"

LATENCY_ABLATION_RUN = "results/ablation/latency/{setting}/seed{seed}"  # Table 2: a setting's search
WIDTH_RUN = "results/width/{table}/{dataset}/{method}/seed{seed}"  # Tables 5, 6: a width training


def train_run(algo: str, seed: int | None = None, best_train: int | None = None) -> str:
    """Table 1's training of `algo`'s cell: search `seed`'s, retrained once (`rarts-seed0`), or the best
    search's under training seed `best_train` (`rarts-best-train1`, the DARTS protocol)."""
    return f"{algo}-best-train{best_train}" if best_train is not None else f"{algo}-seed{seed}"


TRAIN_RUN = re.compile(r"(?P<algo>\w+?)-(seed(?P<seed>\d+)|best-train(?P<train>\d+))")


def fields(pattern: str, path) -> dict[str, str]:
    """The values of a run folder pattern's `{names}` in `path` (the folder, or a file inside it), read from
    the folder's last components: those of the pattern from its first `{name}` on (so a copied or moved
    results folder reads the same)."""
    parts = pattern.split("/")
    tail = "/".join(parts[next(i for i, part in enumerate(parts) if "{" in part):])
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(tail))
    for folder in (Path(path), *Path(path).parents):
        if m := re.search(f"(?:^|/){regex}$", folder.as_posix()):
            return m.groupdict()
    raise ValueError(f"{path} is not inside a run folder {pattern}")
