"""Fig. 1: RARTS against DARTS-1 on the solvable model of §2, and the equilibria table."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rarts.search import toy
from rarts.pipeline.io import save_figure, write_csv


_greek = {"lam": "λ", "beta": "β", "y0": "y₀"}


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
