"""Figures: Fig. 1 (the solvable model), cell drawings and Fig. 2 (the RARTS cells)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rarts import toy  # noqa: E402
from rarts.io import read_json, save_figure, write_csv  # noqa: E402


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
def draw_cell(ax, cell: list, concat: list, title: str) -> None:
    """A DARTS cell as a labelled DAG: inputs c_{k-2}, c_{k-1}, nodes 0..n-1, output c_{k}."""
    steps = len(cell) // 2
    pos = {0: (0.0, 1.2), 1: (0.0, -1.2)}
    for i in range(steps):
        pos[i + 2] = (1.8 + 1.8 * i, 1.0 if i % 2 == 0 else -1.0)
    out = steps + 2
    pos[out] = (1.8 + 1.8 * steps + 0.4, 0.0)
    names = {0: "c_{k-2}", 1: "c_{k-1}", out: "c_{k}", **{i + 2: str(i) for i in range(steps)}}
    colors = {0: "#a6dba0", 1: "#a6dba0", out: "#fdb863"}

    def arrow(a, b, label=None, rad=0.0):
        ax.annotate("", xy=pos[b], xytext=pos[a],
                    arrowprops=dict(arrowstyle="-|>", color="0.35", lw=1.1, shrinkA=14, shrinkB=14,
                                    connectionstyle=f"arc3,rad={rad}"))
        if label:
            # a point 60% along matplotlib's arc3 Bézier (control point M + rad·(dy, −dx)),
            # nearer the target, where edges leaving one input have spread apart
            (x0, y0), (x1, y1) = pos[a], pos[b]
            cx, cy = (x0 + x1) / 2 + rad * (y1 - y0), (y0 + y1) / 2 - rad * (x1 - x0)
            t = 0.6
            lx = (1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t ** 2 * x1
            ly = (1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t ** 2 * y1
            ax.text(lx, ly, label, fontsize=7, ha="center", va="center",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))

    for i in range(steps):
        for k, (op, j) in enumerate(cell[2 * i:2 * i + 2]):
            arrow(j, i + 2, op, rad=0.25 if k else -0.25)
    for c in concat:
        arrow(c, out)
    for node, (x, y) in pos.items():
        ax.text(x, y, f"${names[node]}$" if "_" in names[node] else names[node], ha="center",
                va="center", fontsize=9,
                bbox=dict(boxstyle="round,pad=0.35", fc=colors.get(node, "#9ecae1"), ec="0.3"))
    ax.set_xlim(-0.7, pos[out][0] + 0.7)
    ax.set_ylim(-1.9, 1.9)
    ax.set_aspect("equal")  # arc3 bends in display space: keep it equal to data space
    ax.set_title(title, fontsize=10)
    ax.axis("off")


def cell_figure(genotype, title: str):
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.6))
    draw_cell(axes[0], genotype.normal, genotype.normal_concat, "normal cell")
    draw_cell(axes[1], genotype.reduce, genotype.reduce_concat, "reduction cell")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def save_cell_figure(genotype, path, title: str) -> None:
    fig = cell_figure(genotype, title)
    save_figure(fig, path)
    plt.close(fig)


def save_nats_cell_figure(cell, path, title: str) -> None:
    """A NATS-Bench cell: nodes 0..3, every edge j→i labelled with its operation."""
    from rarts.spaces.nats import EDGES

    fig, ax = plt.subplots(figsize=(7, 3.2))
    pos = {0: (0.0, 0.0), 1: (1.5, 1.0), 2: (3.0, -1.0), 3: (4.5, 0.0)}
    for (i, j), op in zip(EDGES, cell.ops):
        rad = 0.25 if (i - j) > 1 else 0.0
        ax.annotate("", xy=pos[i], xytext=pos[j], arrowprops=dict(
            arrowstyle="-|>", color="0.6" if op == "none" else "0.3", lw=1.1, shrinkA=12, shrinkB=12,
            ls="--" if op == "none" else "-", connectionstyle=f"arc3,rad={rad}"))
        (x0, y0), (x1, y1) = pos[j], pos[i]
        cx, cy = (x0 + x1) / 2 + rad * (y1 - y0), (y0 + y1) / 2 - rad * (x1 - x0)
        lx, ly = 0.25 * x0 + 0.5 * cx + 0.25 * x1, 0.25 * y0 + 0.5 * cy + 0.25 * y1
        ax.text(lx, ly, op, fontsize=7, ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    for node, (x, y) in pos.items():
        ax.text(x, y, str(node), ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="circle,pad=0.3", fc="#9ecae1", ec="0.3"))
    ax.set_xlim(-0.6, 5.1)
    ax.set_ylim(-1.8, 1.8)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{title}\n{cell.arch_str()}", fontsize=8)
    save_figure(fig, path)
    plt.close(fig)


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
                     "standin": m["standin"], "run_dir": str(d)})
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
    fig = cell_figure(genotype, title)
    save_figure(fig, png)
    if pdf:
        save_figure(fig, pdf)
    plt.close(fig)
