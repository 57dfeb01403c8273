"""Figures: Fig. 1 (the solvable model), cell drawings and Fig. 2 (the RARTS cells)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rarts import toy  # noqa: E402
from rarts.data import data_label  # noqa: E402
from rarts.io import read_json, save_figure, write_csv  # noqa: E402

if TYPE_CHECKING:  # pandas is imported where used: the search jobs draw cells without it
    import pandas as pd


# -- Fig. 1 ---------------------------------------------------------------------------------
def _toy_panel(ax, spec: dict, vary: str, panel: dict) -> None:
    start = dict(alpha0=spec["alpha0"], w0=spec["w0"], lr=spec["lr"], steps=spec["steps"])
    fixed = {k: panel[k] for k in ("lam", "beta", "y0") if k in panel}
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(panel["values"])))
    for value, color in zip(panel["values"], colors):
        kw = {"lam": 1.0, "beta": 1.0, "y0": 0.0, **fixed, vary: value}
        traj = toy.simulate("rarts", **start, **kw).trajectory
        ax.plot(traj[:, 0], traj[:, 1], color=color, lw=1.2, label=f"RARTS {_greek[vary]}={value:g}")
    d1 = toy.simulate("darts1", **start).trajectory
    ax.plot(d1[:, 0], d1[:, 1], "k--", lw=1.2)
    a_end, w_end = d1[-1, 0], d1[-1, 1]  # DARTS-1 sits at its spurious fixed point: mark the end
    ax.plot([a_end], [w_end], marker="o", ms=14, mfc="none", mec="k", ls="--",
            label=f"DARTS-1 end ({a_end:.2f}, {w_end:.2f})")
    ax.add_patch(plt.Circle((1, 1), 0.08, fill=False, color="tab:red", lw=1))
    ax.plot([1], [1], marker="*", color="tab:red", ms=10, ls="", label="optimum (1, 1)")
    ax.plot([2], [2], marker="x", color="k", ms=9, mew=2, ls="", label="spurious (2, 2)")
    fixed_txt = ", ".join(f"{_greek[k]}={v:g}" for k, v in fixed.items())
    ax.set_title(f"varying {_greek[vary]} ({fixed_txt})", fontsize=10)
    ax.set_xlabel("α")
    ax.set_ylabel("w")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)


_greek = {"lam": "λ", "beta": "β", "y0": "y₀"}


def toy_equilibria(spec: dict) -> pd.DataFrame:
    """One row per method and (λ, β): simulated limit, closed form, distance to (1, 1)."""
    import pandas as pd

    t = spec["table"]
    rows = []
    for lam in t["lams"]:
        for beta in t["betas"]:
            for method in toy.METHODS:
                sim = toy.simulate(method, lam=lam, beta=beta, alpha0=spec["alpha0"], w0=spec["w0"],
                                   y0=spec["y0"], lr=spec["lr"], steps=t["steps"]).final
                cf = toy.closed_form(method, lam=lam, beta=beta, xi=spec["lr"])
                rows.append({"method": method, "lam": lam, "beta": beta,
                             "alpha_sim": sim["alpha"], "w_sim": sim["w"], "y_sim": sim.get("y"),
                             "alpha_closed": cf["alpha"], "w_closed": cf["w"], "y_closed": cf.get("y"),
                             "abs_err": max(abs(sim["alpha"] - cf["alpha"]), abs(sim["w"] - cf["w"])),
                             "dist_to_optimum": float(np.hypot(sim["alpha"] - 1, sim["w"] - 1))})
    return pd.DataFrame(rows)


def make_fig1(spec: dict, png, pdf=None, csv=None) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for ax, (vary, key) in zip(axes, (("beta", "beta"), ("lam", "lam"), ("y0", "y0"))):
        _toy_panel(ax, spec, vary, spec["panels"][key])
    fig.suptitle(f"Fig. 1: RARTS vs DARTS-1 on the solvable model, start (α, w) = "
                 f"({spec['alpha0']:g}, {spec['w0']:g}), step size {spec['lr']:g}, "
                 f"{spec['steps']} steps", fontsize=11)
    fig.tight_layout()
    save_figure(fig, png)
    if pdf:
        save_figure(fig, pdf)
    plt.close(fig)
    if csv:
        write_csv(csv, toy_equilibria(spec))


# -- cells and Fig. 2 -------------------------------------------------------------------------
INPUT, NODE, OUTPUT = "#a6dba0", "#9ecae1", "#fdb863"


def draw_dag(ax, names: list[str], colors: list[str], edges: list[tuple], plain: list[tuple] = ()) -> dict:
    """A cell as a layered drawing: nodes left to right in order (inputs first, output last) on
    one row; each labelled edge (src, dst, op) runs on a lane of its own (above and below the row,
    alternating, further out for later nodes) with its op in a box on that lane just left of
    `dst`; `plain` edges (unlabelled) share the lowest lane. Lines leave and enter nodes
    vertically, so no line crosses a label box and no two labels share a place.

    Returns the artists: nodes (texts), edges (lines) and labels ((text, its lines) pairs)."""
    gap = 2.0
    x = {i: gap * i for i in range(len(names))}
    lanes = [(e // 2 + 1) * (1 if e % 2 == 0 else -1) for e in range(len(edges))]
    low = -max((abs(v) for v in lanes), default=0) - 1  # the plain edges' lane
    fan: dict[int, int] = {}

    def trunk(node):  # lines at one node spread sideways a little, so they stay apart
        fan[node] = fan.get(node, -1) + 1
        return x[node] + 0.09 * (fan[node] - 1.5)

    def line(points, arrow, **kw):
        (xs, ys) = zip(*points)
        drawn = ax.plot(xs[:-1] if arrow else xs, ys[:-1] if arrow else ys, **kw)
        if arrow:  # the last leg ends in an arrowhead at the node
            drawn.append(ax.annotate("", xy=points[-1], xytext=points[-2], arrowprops=dict(
                arrowstyle="-|>", shrinkA=0, shrinkB=9, lw=kw["lw"], color=kw["color"], ls=kw["ls"])).arrow_patch)
        return drawn

    nodes = [ax.text(x[i], 0, n, ha="center", va="center", fontsize=9, zorder=3,
                     bbox=dict(boxstyle="round,pad=0.3", fc=colors[i], ec="0.3")) for i, n in enumerate(names)]
    labels, lines = [], []
    for (src, dst, op), lane in zip(edges, lanes):
        y, box_x = 0.55 * lane, x[dst] - gap / 2
        style = dict(color="0.55" if op == "none" else "0.25", lw=1.0, ls="--" if op == "none" else "-")
        a, b = trunk(src), trunk(dst)
        drawn = line([(a, 0), (a, y), (box_x, y)], False, **style) + line([(box_x, y), (b, y), (b, 0)], True, **style)
        label = ax.text(box_x, y, op, ha="center", va="center", fontsize=7, zorder=4,
                        bbox=dict(boxstyle="round,pad=0.25", fc="white", ec="0.5", lw=0.6))
        labels.append((label, drawn))
        lines += drawn
    for src, dst in plain:
        a, b = trunk(src), trunk(dst)
        lines += line([(a, 0), (a, 0.55 * low), (b, 0.55 * low), (b, 0)], True, color="0.6", lw=0.8, ls="-")
    ax.set_xlim(-0.8, x[len(names) - 1] + 0.8)
    ax.set_ylim(0.55 * (low if plain else min([*lanes, 0])) - 0.35, 0.55 * max([*lanes, 0]) + 0.35)
    ax.axis("off")
    return {"nodes": nodes, "edges": lines, "labels": labels}


def draw_cell(ax, cell: list, concat: list, title: str) -> dict:
    """A DARTS cell: inputs c_{k-2}, c_{k-1}, nodes 0..n-1, output c_{k} (the concatenation)."""
    steps = len(cell) // 2
    names = ["$c_{k-2}$", "$c_{k-1}$", *map(str, range(steps)), "$c_{k}$"]
    colors = [INPUT, INPUT, *[NODE] * steps, OUTPUT]
    edges = [(j, i + 2, op) for i in range(steps) for op, j in cell[2 * i:2 * i + 2]]
    drawn = draw_dag(ax, names, colors, edges, plain=[(c, steps + 2) for c in concat])
    ax.set_title(title, fontsize=10)
    return drawn


def cell_figure(genotype, title: str):
    steps = len(genotype.normal) // 2
    fig, axes = plt.subplots(2, 1, figsize=(1.6 * (steps + 3), 1.1 * steps + 2.4), layout="constrained")
    fig.drawn = [draw_cell(axes[0], genotype.normal, genotype.normal_concat, "normal cell"),
                 draw_cell(axes[1], genotype.reduce, genotype.reduce_concat, "reduction cell")]
    fig.suptitle(title, fontsize=10)
    return fig


def save_cell_figure(genotype, path, title: str) -> None:
    fig = cell_figure(genotype, title)
    save_figure(fig, path)
    plt.close(fig)


def nats_cell_figure(cell, title: str):
    """A NATS-Bench cell: node 0 the input, node 3 the output, every edge j→i with its operation
    (`none` dashed)."""
    from rarts.spaces.nats import EDGES

    fig, ax = plt.subplots(figsize=(7, 3.4))
    fig.drawn = [draw_dag(ax, ["0", "1", "2", "3"], [INPUT, NODE, NODE, OUTPUT],
                          [(j, i, op) for (i, j), op in zip(EDGES, cell.ops)])]
    ax.set_title(f"{title}\n{cell.arch_str()}", fontsize=8)
    return fig


def save_nats_cell_figure(cell, path, title: str) -> None:
    fig = nats_cell_figure(cell, title)
    save_figure(fig, path)
    plt.close(fig)


def search_summary(run_dirs) -> pd.DataFrame:
    """One row per search run: algorithm, seed, final search val accuracy, skip counts."""
    import pandas as pd

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
    from rarts.spaces.genotypes import Genotype

    summary = search_summary(run_dirs)
    if csv:
        write_csv(csv, summary)
    rarts_runs = summary[summary.algorithm == "rarts"]
    if rarts_runs.empty:
        raise ValueError("Fig. 2 needs at least one RARTS search among --runs")
    best = rarts_runs.loc[rarts_runs.final_val_acc.idxmax()]
    genotype = Genotype.from_json(read_json(Path(best.run_dir) / "genotype.json"))
    title = (f"Fig. 2: cells found by RARTS (seed {best.seed}, best search validation accuracy "
             f"{best.final_val_acc:.3f} of {len(rarts_runs)} seeds; skip connections: normal "
             f"{best.skip_connect_normal}, reduce {best.skip_connect_reduce})")
    if best.standin:
        title += "\nstand-in data (scikit-learn digits), not CIFAR-10"
    elif best.rehearsal:
        title += "\nrehearsal data (synthetic images at CIFAR-10's size), not CIFAR-10"
    fig = cell_figure(genotype, title)
    save_figure(fig, png)
    if pdf:
        save_figure(fig, pdf)
    plt.close(fig)


# -- the tables as figures: ours beside the paper's ----------------------------------------------
# table → (the columns naming a row, our mean, our std or None, the paper's value, the axis label)
TABLE_FIGURES = {
    "table1": (["method"], "test_error_mean", "test_error_std", "paper_test_error", "CIFAR-10 test error (%)"),
    "table2": (["setting"], "latency_ms_mean", "latency_ms_std", "paper_latency_ms", "latency of the found model (ms)"),
    "table3": (["method"], "top1_error", None, "paper_top1_error", "ImageNet top-1 error (%)"),
    "table4": (["dataset", "method"], "error_mean", "error_std", "paper_error", "test error (%)"),
    "table5": (["dataset", "method"], "test_error_mean", "test_error_std", "paper_test_error", "test error (%)"),
    "table6": (["method"], "test_error_mean", "test_error_std", "paper_test_error", "ImageNet-R test error (%)"),
}


def mean_and_std(value) -> tuple[float, float]:
    """A number, or a quoted "mean ± std" string, as (mean, std); NaN where there is none."""
    if isinstance(value, str):
        parts = [float(p) for p in value.split("±")]
        return parts[0], parts[1] if len(parts) > 1 else np.nan
    return float(value), np.nan


def table_rows(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """Our rows of a table (those quoting only the paper left out): a label, our mean and std,
    the paper's mean and std (where it quotes one), the chance-level error."""
    import pandas as pd

    keys, mean, std, paper, _ = TABLE_FIGURES[table]
    ours = df[df["source"].ne("paper")] if "source" in df else df
    quoted = [mean_and_std(v) for v in ours[paper]]
    return pd.DataFrame({"label": ours[keys].astype(str).agg(" · ".join, axis=1).tolist(),
                         "mean": ours[mean].tolist(), "std": (ours[std] if std else np.nan * ours[mean]).tolist(),
                         "paper": [m for m, _ in quoted], "paper_std": [sd for _, sd in quoted],
                         "chance": (ours["chance_error"] if "chance_error" in ours else np.nan * ours[mean]).tolist()})


def make_table_view(table: str, csv, md, png, pdf, html) -> None:
    """The table as a figure (ours, mean ± std over seeds, beside the paper's value, one axis) and
    as an HTML page (title, the table, its notes) for the Snakemake report."""
    import pandas as pd

    df = pd.read_csv(csv)
    lines = Path(md).read_text().splitlines()
    title, notes = lines[0].lstrip("# "), [ln[2:] for ln in lines if ln.startswith("- ")]
    standin = next((ln.strip("*") for ln in lines if ln.startswith("**")), "")
    synthetic = "stand-in" if standin.startswith("STAND-IN") else "rehearsal" if standin else ""
    rows = table_rows(table, df)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 * len(rows) + 2), 4.4))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, rows["mean"], 0.4, yerr=rows["std"], capsize=3, color="tab:blue",
           label="ours (mean ± std over seeds)" if rows["std"].notna().any() else "ours (one run a row)")
    ax.bar(x + 0.2, rows["paper"], 0.4, yerr=rows["paper_std"], capsize=3, color="0.75", hatch="//",
           edgecolor="0.4", label="paper (± its std where quoted)")
    chance = sorted(set(rows["chance"].dropna()))
    if chance:  # in the legend, not as a line: at 80-90% it would squash every bar
        ax.plot([], [], " ", label="chance-level error: " + ", ".join(f"{c:g}%" for c in chance))
    ax.set_xticks(x, [textwrap.fill(label, 22) for label in rows["label"]], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(TABLE_FIGURES[table][4])
    ax.set_title(title + (f"\n({synthetic} data: not comparable with the paper's values)" if synthetic else ""), fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes: it hid tall bars
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    for path in (png, pdf):
        save_figure(fig, path)
    plt.close(fig)
    from rarts.io import write_text

    body = df.astype(object).where(df.notna(), "").to_html(index=False, border=0)
    write_text(html, f"<h3>{title}</h3>" + (f"<p><b>{standin}</b></p>" if standin else "") + body
               + "<ul>" + "".join(f"<li>{n}</li>" for n in notes) + "</ul>")


# -- search dynamics -------------------------------------------------------------------------------
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
    import pandas as pd

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
