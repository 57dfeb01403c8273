import json
import subprocess

import numpy as np
import pytest

from rarts.search import toy


@pytest.mark.parametrize("lam,beta", [(15, 15), (10, 10), (2, 10), (10, 2), (5, 20)])
def test_rarts_reaches_its_closed_form(lam, beta):
    final = toy.simulate("rarts", lam=lam, beta=beta, steps=20000).final
    cf = toy.closed_form("rarts", lam=lam, beta=beta)
    for k in ("alpha", "w", "y"):
        assert final[k] == pytest.approx(cf[k], abs=1e-6)


def test_paper_equilibrium_at_lambda_beta_15():
    cf = toy.closed_form("rarts", lam=15, beta=15)
    assert (round(cf["alpha"], 3), round(cf["w"], 3), round(cf["y"], 3)) == (1.053, 1.018, 0.947)


@pytest.mark.parametrize("method", ["darts1", "milenas"])
@pytest.mark.parametrize("start", [(2.0, 2.0), (0.5, 3.0), (1.0, 1.0)])
def test_first_order_methods_reach_the_spurious_point(method, start):
    final = toy.simulate(method, lam=3.0, alpha0=start[0], w0=start[1], steps=20000).final
    assert final["alpha"] == pytest.approx(2.0, abs=1e-6)
    assert final["w"] == pytest.approx(2.0, abs=1e-6)


def test_darts2_reaches_its_closed_form_and_hypergradient_is_exact():
    final = toy.simulate("darts2", steps=20000, lr=0.01).final
    assert final["alpha"] == pytest.approx(toy.closed_form("darts2", xi=0.01)["alpha"], abs=1e-6)
    # d/dα L_v(w − ξ∇_w L_t(w, α), α) against a central finite difference in α
    w, a, xi, h = 1.3, 0.7, 0.05, 1e-6
    f = lambda a_: toy.L_v(w - xi * toy.dLt_dw(w, a_), a_)  # noqa: E731
    assert toy.darts2_hypergradient(w, a, xi) == pytest.approx((f(a + h) - f(a - h)) / (2 * h), rel=1e-7)


def test_rarts_equilibrium_is_stationary_for_theorem_1():
    lam, beta = 7.0, 3.0
    cf = toy.closed_form("rarts", lam=lam, beta=beta)
    a, w, y = cf["alpha"], cf["w"], cf["y"]
    assert lam * toy.dLt_dw(w, a) + beta * (w - y) == pytest.approx(0, abs=1e-12)
    assert toy.dLv_dw(y, a) + beta * (y - w) == pytest.approx(0, abs=1e-12)
    assert lam * toy.dLt_da(w, a) + toy.dLv_da(y, a) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("lam,beta,y0", [(10, 10, 0.0), (2, 5, 3.0), (15, 15, -1.0)])
def test_lagrangian_never_increases_along_rarts(lam, beta, y0):
    traj = toy.simulate("rarts", lam=lam, beta=beta, y0=y0, lr=0.005, steps=4000).trajectory
    L = toy.lagrangian(traj[:, 0], traj[:, 1], traj[:, 2], lam, beta)
    assert np.all(np.diff(L) <= 1e-12), "Theorem 1: L must not increase for small steps"
    assert L[-1] < L[0]


def test_toy_cli_prints_json_on_last_line(cli_env):
    out = subprocess.run(["rarts", "toy", "--method", "rarts", "--lam", "15", "--beta", "15",
                          "--steps", "20000", "--json"], capture_output=True, text=True,
                         check=True, env=cli_env).stdout
    final = json.loads(out.strip().splitlines()[-1])
    assert set(final) == {"alpha", "w", "y"}
    assert final["alpha"] == pytest.approx(1.0526, abs=1e-3)
    out = subprocess.run(["rarts", "toy", "--method", "darts1", "--json"], capture_output=True,
                         text=True, check=True, env=cli_env).stdout
    assert json.loads(out.strip().splitlines()[-1]) == pytest.approx({"alpha": 2.0, "w": 2.0})


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="unknown method"):
        toy.simulate("enas")
