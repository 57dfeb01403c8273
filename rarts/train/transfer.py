"""Which RARTS cell goes to ImageNet: the selection rule is config, and is named in Table 3."""

from __future__ import annotations

import re
from pathlib import Path

from rarts.pipeline.io import read_json, write_json

RULES = ("best_search_val", "best_cifar_test")


def select_cell(rule: str, search_dirs, cifar_metrics, out) -> dict:
    """best_search_val: highest final search validation accuracy; best_cifar_test: lowest
    retrained CIFAR test error; seedN: that seed."""
    dirs = [Path(d) for d in search_dirs]
    if rule == "best_search_val":
        scored = [(read_json(d / "genotype.json")["meta"]["final_val_acc"], d) for d in dirs]
        chosen = max(scored, key=lambda t: t[0])[1]
    elif rule == "best_cifar_test":
        by_seed = {read_json(m)["name"]: read_json(m)["test_error"] for m in cifar_metrics}
        chosen = min(dirs, key=lambda d: by_seed[f"rarts-{d.name}"])
    elif (m := re.fullmatch(r"seed(\d+)", rule)):
        chosen = next(d for d in dirs if d.name == f"seed{m[1]}")
    else:
        raise ValueError(f"unknown selection rule {rule!r}: use {RULES} or seedN")
    genotype = read_json(chosen / "genotype.json")
    genotype["meta"] = {**genotype["meta"], "selection": f"{rule} → {chosen.name}"}
    write_json(out, genotype)
    return genotype
