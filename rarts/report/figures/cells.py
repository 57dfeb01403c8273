"""Fig. 2, the cells RARTS found, and the skip-connection counts of every search (drawn with
`rarts.drawing.cells`)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import pandas as pd

from rarts.drawing.cells import cell_figure
from rarts.pipeline.io import read_json, save_figure, write_csv
from rarts.pipeline.names import DATA_DESCRIPTIONS, data_kind


def search_summary(run_dirs) -> pd.DataFrame:
    """One row per search run: algorithm, seed, final search val accuracy, skip counts."""
    rows = []
    for d in map(Path, run_dirs):
        g = read_json(d / "genotype.json")
        m = g["meta"]
        rows.append({"algorithm": m["algorithm"], "seed": m["seed"],
                     "final_val_acc": m.get("final_val_acc"),
                     "skip_connect_normal": m["skip_connect_normal"],
                     "skip_connect_reduce": m["skip_connect_reduce"],
                     "standin": m["standin"], "rehearsal": m.get("rehearsal", False), "run_dir": str(d)})
    return pd.DataFrame(rows).sort_values(["algorithm", "seed"]).reset_index(drop=True)


def make_fig2(run_dirs, png, pdf=None, csv=None) -> None:
    summary = search_summary(run_dirs)
    if csv:
        write_csv(csv, summary)
    rarts_runs = summary[summary.algorithm == "rarts"]
    if rarts_runs.empty:
        raise ValueError("Fig. 2 needs at least one RARTS search among --runs")
    best = rarts_runs.loc[rarts_runs.final_val_acc.idxmax()]
    genotype = SimpleNamespace(**read_json(Path(best.run_dir) / "genotype.json"))  # normal, reduce, their concats
    title = (f"Fig. 2: cells found by RARTS (seed {best.seed}, best search validation accuracy "
             f"{best.final_val_acc:.3f} of {len(rarts_runs)} seeds; skip connections: normal "
             f"{best.skip_connect_normal}, reduce {best.skip_connect_reduce})")
    kind = data_kind({"standin": best.standin, "rehearsal": best.rehearsal})
    if kind != "real":
        title += f"\n{kind} data ({DATA_DESCRIPTIONS[kind]}), not CIFAR-10"
    fig = cell_figure(genotype, title)
    save_figure(fig, png)
    if pdf:
        save_figure(fig, pdf)
    plt.close(fig)
