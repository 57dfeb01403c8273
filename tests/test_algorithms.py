"""The update equations, checked numerically against hand-written and autograd computations."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from rarts.spaces.penalties import LatencyPenalty
from rarts.search.algorithms import build_algorithm
from rarts.spaces import DartsSearchSpace
from rarts.models import darts_search


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


# -- the production path: the paper config's optimizers, checked against a reference by hand ------
class HandSGD:
    """torch.optim.SGD's update (momentum, L2 weight decay, no dampening), written out."""

    def __init__(self, lr, momentum, wd):
        self.lr, self.momentum, self.wd, self.buf = lr, momentum, wd, {}

    def step(self, params: dict, grads: dict) -> dict:
        out = {}
        for k, p in params.items():
            d = grads[k] + self.wd * p
            self.buf[k] = d if k not in self.buf else self.momentum * self.buf[k] + d
            out[k] = p - self.lr * self.buf[k]
        return out


class HandAdam:
    """torch.optim.Adam's update (L2 weight decay added to the gradient), written out."""

    def __init__(self, lr, betas, wd, eps=1e-8):
        self.lr, (self.b1, self.b2), self.wd, self.eps, self.t, self.m, self.v = lr, betas, wd, eps, 0, None, None

    def step(self, arch: list, grads: list) -> list:
        self.t += 1
        grads = [g + self.wd * a for a, g in zip(arch, grads)]
        self.m = [g * (1 - self.b1) if self.m is None else self.b1 * m + (1 - self.b1) * g
                  for g, m in zip(grads, self.m or grads)]
        self.v = [g * g * (1 - self.b2) if self.v is None else self.b2 * v + (1 - self.b2) * g * g
                  for g, v in zip(grads, self.v or grads)]
        return [a - self.lr * (m / (1 - self.b1 ** self.t)) / ((v / (1 - self.b2 ** self.t)).sqrt() + self.eps)
                for a, m, v in zip(arch, self.m, self.v)]


def clipped(grads: dict, max_norm: float) -> tuple[dict, float]:
    total = torch.sqrt(sum((g * g).sum() for g in grads.values()))
    coef = min(1.0, max_norm / (float(total) + 1e-6))
    return {k: g * coef for k, g in grads.items()}, float(total)


def paper_hp() -> dict:
    import yaml

    from conftest import REPO

    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())["search"]["darts"]


@pytest.mark.parametrize("name", ["darts1", "milenas", "rarts"])
def test_two_steps_with_the_paper_settings_match_a_hand_written_reference(name):
    """Momentum 0.9, weight decay 3e-4, clipping at 5 (of ∇L + β(w − y) for RARTS), Adam with
    weight decay for α, y starting as a copy of w: two steps of the algorithm equal the update
    equations written out with hand-made optimizers."""
    h = paper_hp()
    torch.manual_seed(0)
    # 16 channels: gradient norms above 5 in every update, so that clipping at 5 takes part
    algo = build_algorithm(name, DartsSearchSpace(init_channels=16, num_classes=3, layers=3), h, "cpu")
    net = algo.net  # a pure function of (params, α) here: BN runs on batch statistics in training
    w = params_of(algo.net)
    y = params_of(algo.net_y) if name == "rarts" else None
    if y is not None:
        assert all(torch.equal(w[k], y[k]) for k in w), "y_init: copy"
    alpha = [a.detach().clone() for a in algo.arch]
    sgd_w, sgd_y = (HandSGD(h["w_lr"], h["w_momentum"], h["w_weight_decay"]) for _ in range(2))
    adam = HandAdam(h["arch_lr"], h["arch_betas"], h["arch_weight_decay"])
    lam, beta, norms = h[name]["lam"] if name != "darts1" else 0.0, h["rarts"]["beta"], []

    def grads(params, arch, batch, scale=1.0):
        ps = {k: v.clone().requires_grad_() for k, v in params.items()}
        return dict(zip(ps, torch.autograd.grad(scale * loss_of(net, ps, arch, batch), list(ps.values()))))

    def arch_grad(params, arch, batch):
        a = [t.clone().requires_grad_() for t in arch]
        return torch.autograd.grad(loss_of(net, params, a, batch), a)

    for step in range(2):
        train, val = batches(seed=step)
        if name == "rarts":
            g, n = clipped({k: v + beta * (w[k] - y[k]) for k, v in grads(w, alpha, train, lam).items()}, h["grad_clip"])
            w_new = sgd_w.step(w, g)
            g, n2 = clipped({k: v + beta * (y[k] - w_new[k]) for k, v in grads(y, alpha, val).items()}, h["grad_clip"])
            w, y, norms = w_new, sgd_y.step(y, g), norms + [n, n2]
            ga = [lam * t + v for t, v in zip(arch_grad(w, alpha, train), arch_grad(y, alpha, val))]
            alpha = adam.step(alpha, ga)
        else:
            ga = arch_grad(w, alpha, val)
            if name == "milenas":
                ga = [v + lam * t for v, t in zip(ga, arch_grad(w, alpha, train))]
            alpha = adam.step(alpha, ga)
            g, n = clipped(grads(w, alpha, train), h["grad_clip"])
            w, norms = sgd_w.step(w, g), norms + [n]
        algo.step(train, val)
    assert min(norms) > h["grad_clip"], "every update must be clipped, or the check misses clipping"
    for a, e in zip(algo.arch, alpha):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-6)
    for k, p in algo.net.named_parameters():
        torch.testing.assert_close(p, w[k], rtol=1e-4, atol=1e-6, msg=k)
    if name == "rarts":
        for k, p in algo.net_y.named_parameters():
            torch.testing.assert_close(p, y[k], rtol=1e-4, atol=1e-6, msg=k)


def test_darts2_finite_difference_runs_in_fp32_under_bf16_autocast():
    """The search step may run under bf16 autocast (`amp: true`); the two perturbed passes w ± Rv
    must not: each weight moves by about 1e-5, below bf16's spacing. Under CPU autocast (the same
    dispatch as CUDA's) every convolution of the finite difference sees float32 inputs with TF32 off,
    the other passes bf16, and the Hessian-vector product is bit-identical to one computed with no
    autocast at all."""
    torch.manual_seed(0)
    algo = build_algorithm("darts2", tiny_space(), hp(w_momentum=0.9, w_weight_decay=3e-4), "cpu")
    train, val = batches()
    seen, in_fd = {"fd": set(), "other": set()}, [False]
    precision = []

    def record(module, args):
        seen["fd" if in_fd[0] else "other"].add(args[0].dtype)
        if in_fd[0]:
            precision.append(torch.backends.cudnn.conv.fp32_precision)

    hooks = [m.register_forward_pre_hook(record) for m in algo.net.modules() if isinstance(m, torch.nn.Conv2d)]
    hvp = algo.hessian_vector_product

    def marked(*args):
        in_fd[0] = True
        try:
            return hvp(*args)
        finally:
            in_fd[0] = False

    algo.hessian_vector_product = marked
    with torch.autocast("cpu", dtype=torch.bfloat16):
        algo.step(train, val)
    for h in hooks:
        h.remove()
    assert seen["fd"] == {torch.float32} and torch.bfloat16 in seen["other"], seen
    assert set(precision) == {"ieee"} and torch.backends.cudnn.conv.fp32_precision != "ieee"  # restored after

    vector = [torch.randn_like(p) for p in algo.params(algo.net)[1]]
    state = {k: v.clone() for k, v in algo.net.state_dict().items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_amp = hvp(vector, train)
    algo.net.load_state_dict(state)  # the passes update BN statistics: start both from the same
    plain = hvp(vector, train)
    assert all(torch.equal(a, b) for a, b in zip(under_amp, plain))
