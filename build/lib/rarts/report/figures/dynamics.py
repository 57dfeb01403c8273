"""How a search moved: softmax(α) per edge over epochs, and the skip connections of the derived cell,
one search at a time and per algorithm side by side (the paper's collapse argument)."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rarts.data import data_label
from rarts.pipeline.io import read_json, save_figure


def make_dynamics(history_path, png) -> None:
    """One search's softmax(α) per edge over epochs (a panel per edge, a line per operation) and the
    skip connections of the cell derived at each epoch."""
    h = read_json(history_path)
    epochs = [e["epoch"] for e in h["epochs"]]
    ops, edges, names = h["ops"], h["edges"], list(h["epochs"][0]["alpha"])
    cols = 7 if len(edges) > 7 else len(edges)
    rows_per = -(-len(edges) // cols)
    fig, axes = plt.subplots(rows_per * len(names) + 1, cols, figsize=(2.1 * cols, 1.7 * (rows_per * len(names) + 1)),
                             squeeze=False, sharex=True)
    colors = plt.cm.tab10(np.arange(len(ops)))
    for n, name in enumerate(names):
        alpha = np.array([e["alpha"][name] for e in h["epochs"]])  # epochs × edges × ops
        for k, edge in enumerate(edges):
            ax = axes[n * rows_per + k // cols, k % cols]
            for o, op in enumerate(ops):
                ax.plot(epochs, alpha[:, k, o], color=colors[o], lw=1.2, label=op)
            ax.set_title(f"{name} {edge}", fontsize=7)
            ax.tick_params(labelsize=6)
        for k in range(len(edges), rows_per * cols):
            axes[n * rows_per + k // cols, k % cols].axis("off")
    skip_ax = axes[-1, 0]
    skips = [e.get("skip_connections", np.nan) for e in h["epochs"]]
    skip_ax.plot(epochs, skips, "k.-")
    skip_ax.set_ylim(-0.5, max([c for c in skips if c == c], default=0) + 0.5)  # whole counts, 0 at the foot
    skip_ax.set_title("skip connections in the derived cell", fontsize=7)
    for ax in axes.flat:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    skip_ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, min_n_ticks=1))
    skip_ax.set_xlabel("epoch", fontsize=7)
    skip_ax.tick_params(labelsize=6)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    axes[-1, 1].legend(handles, labels, fontsize=7, ncol=2, loc="center left", frameon=False)
    for ax in axes[-1, 1:]:
        ax.axis("off")
    fig.suptitle(f"softmax(α) per edge over epochs: {h['algorithm']}, seed {h['seed']}, {h['space']} space, "
                 f"{h['dataset']}" + data_label(h), fontsize=10)
    fig.tight_layout()
    save_figure(fig, png)
    plt.close(fig)


def make_skip_comparison(history_paths, png, pdf, title: str) -> pd.DataFrame:
    """Skip connections in the derived cell over epochs, per algorithm (mean and range over
    seeds): the paper's collapse argument made visible. Returns the plotted means."""
    runs = [read_json(p) for p in history_paths]
    fig, ax = plt.subplots(figsize=(7, 4))
    means = {}
    algos = sorted({r["algorithm"] for r in runs})
    for k, (algo, marker) in enumerate(zip(algos, "osD^v<>")):
        counts = np.array([[e["skip_connections"] for e in r["epochs"]] for r in runs if r["algorithm"] == algo], float)
        dodge = min(0.15, 0.015 * counts.shape[1]) * (k - (len(algos) - 1) / 2)  # equal lines stay visible
        epochs = np.arange(1, counts.shape[1] + 1) + dodge
        means[algo] = counts.mean(0)
        ax.plot(epochs, means[algo], marker=marker, ms=5, label=f"{algo} ({len(counts)} seeds)")
        ax.fill_between(epochs, counts.min(0), counts.max(0), alpha=0.12)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("skip connections in the derived cell")
    ax.set_title(title + (data_label(runs[0]) if runs else ""), fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    for path in (png, pdf):
        save_figure(fig, path)
    plt.close(fig)
    return pd.DataFrame(means)
