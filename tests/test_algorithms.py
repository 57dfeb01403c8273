"""The update equations, checked numerically against hand-written and autograd computations."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from rarts.latency import LatencyPenalty
from rarts.search.algorithms import build_algorithm
from rarts.spaces import DartsSearchSpace
from rarts.spaces import darts_search


def hp(**over):
    base = dict(epochs=4, w_lr=0.05, w_lr_min=0.001, w_momentum=0.0, w_weight_decay=0.0,
                w_nesterov=False, grad_clip=1e9, arch_lr=0.01, arch_betas=[0.5, 0.999],
                arch_weight_decay=0.0, milenas={"lam": 0.7}, darts2={"perturbed_bn_stats": "update"},
                rarts={"lam": 0.8, "beta": 0.3, "y_init": "seed"})
    base.update(over)
    return base


def tiny_space():
    return DartsSearchSpace(init_channels=2, num_classes=3, layers=3)


def batches(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    mk = lambda: (torch.randn(6, 3, 8, 8, generator=g, dtype=dtype),  # noqa: E731
                  torch.randint(0, 3, (6,), generator=g))
    return mk(), mk()


def loss_of(net, params, arch, batch):
    x, y = batch
    return F.cross_entropy(functional_call(net, params, (x, arch)), y)


def params_of(net):
    return {n: p.detach().clone() for n, p in net.named_parameters()}


def test_darts2_hypergradient_matches_exact_second_order_autograd():
    torch.manual_seed(0)
    algo = build_algorithm("darts2", tiny_space(), hp(w_momentum=0.9, w_weight_decay=3e-4), "cpu")
    algo.net.double()
    with torch.no_grad():
        algo.arch = [a.double().requires_grad_() for a in algo.arch]
    train, val = batches(torch.float64)
    # one ordinary weight step so the momentum buffer takes part in the virtual step
    algo.weight_step(algo.net, algo.w_opt, F.cross_entropy(algo.net(train[0], algo.arch), train[1]))
    xi = algo.w_lr
    # The official radius (0.01) straddles ReLU/max-pool kinks of this 2-channel network; a
    # small radius makes the finite difference exact in float64, so the whole assembly
    # (virtual step with momentum and weight decay, sign, ξ) is checked to 1e-6.
    algo.fd_radius = 1e-5
    approx = algo.hypergradient(train, val, xi)

    # exact: d/dα L_v(w'(α), α), w'(α) = w − ξ(m·buf + ∇_w L_t(w, α) + wd·w), by autograd
    names, params = zip(*algo.net.named_parameters())
    g = torch.autograd.grad(loss_of(algo.net, dict(zip(names, params)), algo.arch, train), params,
                            create_graph=True)
    virtual = {}
    for n, p, gi in zip(names, params, g):
        buf = algo.w_opt.state[p]["momentum_buffer"]
        virtual[n] = p.detach() - xi * (0.9 * buf + gi + 3e-4 * p.detach())
    exact = torch.autograd.grad(loss_of(algo.net, virtual, algo.arch, val), algo.arch)
    for a, e in zip(approx, exact):
        assert torch.allclose(a, e, rtol=1e-6, atol=1e-8), (a - e).abs().max()
    # and the second-order term is not negligible, so the check has teeth
    first_order = torch.autograd.grad(loss_of(algo.net, {n: v.detach() for n, v in virtual.items()},
                                              algo.arch, val), algo.arch)
    assert max((f - e).abs().max() for f, e in zip(first_order, exact)) > 1e-5


class _DropoutNet(torch.nn.Module):
    """Smooth, float64, with dropout (as MobileNetV2's classifier): x → tanh(Ax)·α → dropout → B."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(5, 6, dtype=torch.float64)
        self.drop = torch.nn.Dropout(0.5)
        self.b = torch.nn.Linear(6, 3, dtype=torch.float64)

    def forward(self, x, arch):
        return self.b(self.drop(torch.tanh(self.a(x)) * arch[0]))


class _DropoutSpace:
    kw: dict = {}

    def build_network(self):
        return _DropoutNet()

    def init_arch(self, device="cpu"):
        return [torch.ones(6, dtype=torch.float64, requires_grad=True)]


def test_darts2_finite_difference_sees_the_same_dropout_masks_in_both_passes():
    torch.manual_seed(0)
    algo = build_algorithm("darts2", _DropoutSpace(), hp(), "cpu")
    algo.fd_radius = 1e-6
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(8, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (8,), generator=g))
    names, params = algo.params(algo.net)
    v = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in params]
    torch.manual_seed(1)
    approx = algo.hessian_vector_product(v, batch)
    torch.manual_seed(1)  # the exact value under the same mask: ∇_α (∇_w L_t · v)
    gw = torch.autograd.grad(loss_of(algo.net, dict(zip(names, params)), algo.arch, batch), params,
                             create_graph=True)
    exact = torch.autograd.grad(sum((a * b).sum() for a, b in zip(gw, v)), algo.arch)
    assert torch.allclose(approx[0], exact[0], rtol=1e-5, atol=1e-8), (approx[0] - exact[0]).abs().max()


def test_darts2_never_builds_a_model_copy(monkeypatch):
    torch.manual_seed(0)
    algo = build_algorithm("darts2", tiny_space(), hp(), "cpu")
    built = []
    orig = darts_search.SearchNetwork.__init__
    monkeypatch.setattr(darts_search.SearchNetwork, "__init__",
                        lambda self, *a, **k: (built.append(1), orig(self, *a, **k)))
    import copy
    monkeypatch.setattr(copy, "deepcopy", lambda *a, **k: pytest.fail("deepcopy in darts2"))
    algo.step(*batches())
    assert built == []


def test_rarts_step_is_equation_7_by_hand():
    torch.manual_seed(0)
    h = hp()
    algo = build_algorithm("rarts", tiny_space(), h, "cpu")
    eta, eta_a, lam, beta = h["w_lr"], 0.02, 0.8, 0.3
    algo.arch_opt = torch.optim.SGD(algo.arch, lr=eta_a)  # plain gradient steps for the check
    train, val = batches()
    w, y = params_of(algo.net), params_of(algo.net_y)
    assert any(not torch.equal(w[k], y[k]) for k in w), "y has its own initialisation"
    alpha = [a.detach().clone().requires_grad_() for a in algo.arch]
    net = algo.net

    def grad_w(params, batch, scale):
        ps = {k: v.clone().requires_grad_() for k, v in params.items()}
        g = torch.autograd.grad(scale * loss_of(net, ps, alpha, batch), list(ps.values()))
        return dict(zip(ps, g))

    gw = grad_w(w, train, lam)
    w_new = {k: w[k] - eta * (gw[k] + beta * (w[k] - y[k])) for k in w}
    gy = grad_w(y, val, 1.0)
    y_new = {k: y[k] - eta * (gy[k] + beta * (y[k] - w_new[k])) for k in y}
    obj = lam * loss_of(net, w_new, alpha, train) + loss_of(net, y_new, alpha, val)
    ga = torch.autograd.grad(obj, alpha)
    alpha_new = [a - eta_a * g for a, g in zip(alpha, ga)]

    algo.step(train, val)
    for k, p in algo.net.named_parameters():
        assert torch.allclose(p, w_new[k], atol=1e-6)
    for k, p in algo.net_y.named_parameters():
        assert torch.allclose(p, y_new[k], atol=1e-6)
    for a, e in zip(algo.arch, alpha_new):
        assert torch.allclose(a, e, atol=1e-6)


@pytest.mark.parametrize("name", ["darts1", "milenas"])
def test_first_order_steps_by_hand(name):
    torch.manual_seed(0)
    algo = build_algorithm(name, tiny_space(), hp(), "cpu")
    algo.arch_opt = torch.optim.SGD(algo.arch, lr=0.02)
    train, val = batches()
    w = params_of(algo.net)
    alpha = [a.detach().clone().requires_grad_() for a in algo.arch]
    net = algo.net
    # α first (the official orders), then w at the new α
    ga = torch.autograd.grad(loss_of(net, w, alpha, val), alpha)
    if name == "milenas":  # ∇_α L_v + λ∇_α L_t, both at (w, α)
        gt = torch.autograd.grad(loss_of(net, w, alpha, train), alpha)
        ga = [v + 0.7 * t for v, t in zip(ga, gt)]
    alpha_new = [a - 0.02 * g for a, g in zip(alpha, ga)]
    ps = {k: v.clone().requires_grad_() for k, v in w.items()}
    gw = torch.autograd.grad(loss_of(net, ps, [a.detach() for a in alpha_new], train), list(ps.values()))
    w_new = {k: w[k] - 0.05 * g for k, g in zip(w, gw)}
    algo.step(train, val)
    for a, e in zip(algo.arch, alpha_new):
        assert torch.allclose(a, e, atol=1e-6)
    for k, p in algo.net.named_parameters():
        assert torch.allclose(p, w_new[k], atol=1e-6)


def test_latency_penalty_gradient_is_the_softmax_jacobian():
    torch.manual_seed(0)
    arch = [torch.randn(14, 8, requires_grad=True), torch.randn(14, 8, requires_grad=True)]
    tables = [torch.rand(14, 8), torch.rand(14, 8)]
    pen = LatencyPenalty(tables, weight=2e-3)
    grads = torch.autograd.grad(pen(arch), arch)
    for a, t, g in zip(arch, tables, grads):
        s = F.softmax(a.detach(), dim=-1)
        analytic = 2e-3 * s * (t - (s * t).sum(-1, keepdim=True))
        assert torch.allclose(g, analytic, atol=1e-9)


def test_latency_penalty_enters_the_arch_step():
    torch.manual_seed(0)
    tables = [torch.rand(14, 8), torch.rand(14, 8)]
    algo = build_algorithm("rarts", tiny_space(), hp(), "cpu", LatencyPenalty(tables, 0.5))
    algo.arch_opt = torch.optim.SGD(algo.arch, lr=1.0)
    before = [a.detach().clone() for a in algo.arch]
    zero = [torch.zeros_like(a) for a in algo.arch]
    algo.apply_arch_step(zero)
    expected = torch.autograd.grad(LatencyPenalty(tables, 0.5)([b.requires_grad_() for b in before]), before)
    for a, b, g in zip(algo.arch, before, expected):
        assert torch.allclose(a, b - g, atol=1e-7)
