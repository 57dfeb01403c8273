"""The solvable model of paper §2 (Fig. 1).

    L_t(w, α) = w² − 2αw + α² = (w − α)²,   L_v(w, α) = αw − 2α + 1.

The bilevel optimum is (α, w) = (1, 1). DARTS-1 and MiLeNAS settle at the spurious (2, 2);
RARTS at α* = 4λβ/(4λβ − β − 2λ), w* = α*(2λ−1)/(2λ), y* = 2 − α*. All iterations are plain
gradient steps with one step size, as in the paper's figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rarts.pipeline.names import ALGORITHMS as METHODS  # the same four methods as the searches


# Partial derivatives of the two losses.
def dLt_dw(w, a):
    return 2.0 * (w - a)


def dLt_da(w, a):
    return 2.0 * (a - w)


def dLv_dw(w, a):
    return a


def dLv_da(w, a):
    return w - 2.0


def L_t(w, a):
    return (w - a) ** 2


def L_v(w, a):
    return a * w - 2.0 * a + 1.0


def lagrangian(a, w, y, lam, beta):
    """The relaxed Lagrangian of eq. (4): L_v(y, α) + λ L_t(w, α) + β/2 (y − w)²."""
    return L_v(y, a) + lam * L_t(w, a) + 0.5 * beta * (y - w) ** 2


def darts2_hypergradient(w, a, xi):
    """Exact DARTS-2 α-gradient: d/dα L_v(w'(α), α) with w' = w − ξ ∇_w L_t(w, α).

    Here dw'/dα = 2ξ, so the mixed second-order term is exact (no finite difference needed).
    """
    w_virtual = w - xi * dLt_dw(w, a)
    return dLv_da(w_virtual, a) + dLv_dw(w_virtual, a) * 2.0 * xi


@dataclass
class ToyResult:
    method: str
    trajectory: np.ndarray  # (steps + 1, 3): α, w, y (y = w for single-network methods)

    @property
    def final(self) -> dict:
        a, w, y = self.trajectory[-1]
        out = {"alpha": float(a), "w": float(w)}
        if self.method == "rarts":
            out["y"] = float(y)
        return out


def simulate(method: str, lam=1.0, beta=1.0, alpha0=2.0, w0=2.0, y0=0.0, lr=0.01, steps=1000,
             xi=None) -> ToyResult:
    """Run `steps` iterations of `method` and return the whole trajectory."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    xi = lr if xi is None else xi
    a, w = float(alpha0), float(w0)
    y = float(y0) if method == "rarts" else w
    traj = np.empty((steps + 1, 3))
    traj[0] = a, w, y
    for t in range(1, steps + 1):
        # α first, then w at the new α: the order of the search algorithms and the official code
        if method == "darts1":
            a = a - lr * dLv_da(w, a)
            w = w - lr * dLt_dw(w, a)
        elif method == "darts2":
            a = a - lr * darts2_hypergradient(w, a, xi)
            w = w - lr * dLt_dw(w, a)
        elif method == "milenas":
            # MiLeNAS is RARTS with y tied to w: α-gradient λ∇_α L_t + ∇_α L_v at the same w.
            a = a - lr * (lam * dLt_da(w, a) + dLv_da(w, a))
            w = w - lr * dLt_dw(w, a)
        else:  # rarts: Gauss–Seidel, eqs. (6)–(8)
            w = w - lr * (lam * dLt_dw(w, a) + beta * (w - y))
            y = y - lr * (dLv_dw(y, a) + beta * (y - w))
            a = a - lr * (lam * dLt_da(w, a) + dLv_da(y, a))
        if method != "rarts":
            y = w
        traj[t] = a, w, y
        if not np.all(np.isfinite(traj[t])):
            raise FloatingPointError(f"toy {method} diverged at step {t} (lr={lr}, λ={lam}, β={beta})")
    return ToyResult(method, traj)


def closed_form(method: str, lam=1.0, beta=1.0, xi=0.01) -> dict:
    """The equilibrium each method's iteration converges to (when it converges)."""
    if method in ("darts1", "milenas"):
        return {"alpha": 2.0, "w": 2.0}
    if method == "darts2":
        a = 2.0 / (1.0 + 2.0 * xi)  # w = α and (α − 2) + 2ξα = 0
        return {"alpha": a, "w": a}
    if method == "rarts":
        a = 4 * lam * beta / (4 * lam * beta - beta - 2 * lam)
        return {"alpha": a, "w": a * (2 * lam - 1) / (2 * lam), "y": 2 - a}
    raise ValueError(f"unknown method {method!r}")
