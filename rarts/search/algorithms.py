"""DARTS-1, DARTS-2, MiLeNAS and RARTS as strategies over one search step.

Each algorithm owns its networks, α and optimizers and exposes `step(train_batch, val_batch)`.
Networks take α as a forward argument (see `rarts.spaces`), so:
- DARTS-2 evaluates its virtual and perturbed weights with `torch.func.functional_call` on a
  dictionary of tensors, never copying the model;
- RARTS keeps two weight copies (w on D_t, y on D_v) over one shared α.
"""

from __future__ import annotations

import contextlib
import copy
from abc import ABC, abstractmethod

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from rarts.pipeline.names import PASSES


@contextlib.contextmanager
def exact_fp32(device):
    """The block in plain fp32: outside autocast, with TF32 off for convolutions and matmuls (cuDNN
    uses TF32 for fp32 convolutions by default)."""
    backends = (torch.backends.cudnn.conv, torch.backends.cuda.matmul)
    before = [b.fp32_precision for b in backends]
    for b in backends:
        b.fp32_precision = "ieee"
    try:
        with torch.autocast(torch.device(device).type, enabled=False):
            yield
    finally:
        for b, value in zip(backends, before):
            b.fp32_precision = value


def cross_entropy(net, params, arch, batch):
    """Loss and logits of `net` on `batch`; `params` (a name → tensor dict) overrides weights."""
    x, y = batch
    logits = net(x, arch) if params is None else functional_call(net, params, (x, arch))
    return F.cross_entropy(logits, y), logits


class SearchAlgorithm(ABC):
    """Common state: one weight network w, α, SGD for weights, Adam for α, cosine schedules; an
    algorithm implements `step` (one lacking it fails when it is built)."""

    name = "base"
    passes_per_step = 0  # forward+backward passes of the network per step (sets the speed limit)

    def __init__(self, space, hp: dict, device, arch_penalty=None):
        self.space, self.hp, self.device = space, hp, torch.device(device)
        self._param_cache: dict[int, tuple[list[str], list[torch.Tensor]]] = {}
        self.net = space.build_network().to(self.device)
        self.arch = space.init_arch(self.device)
        self.arch_penalty = arch_penalty  # callable(arch) -> scalar, e.g. the latency term
        self.w_opt = self._weight_optimizer(self.net)
        self.arch_opt = torch.optim.Adam(self.arch, lr=hp["arch_lr"], betas=tuple(hp["arch_betas"]),
                                         weight_decay=hp["arch_weight_decay"])
        self.schedulers = [self._cosine(self.w_opt)]

    # -- construction helpers ------------------------------------------------------------
    def _weight_optimizer(self, net):
        return torch.optim.SGD(net.parameters(), lr=self.hp["w_lr"], momentum=self.hp["w_momentum"],
                               weight_decay=self.hp["w_weight_decay"],
                               nesterov=self.hp.get("w_nesterov", False))

    def _cosine(self, opt):
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.hp["epochs"],
                                                          eta_min=self.hp["w_lr_min"])

    # -- pieces shared by the algorithms --------------------------------------------------
    def params(self, net) -> tuple[list[str], list[torch.Tensor]]:
        """Names and parameters of `net`, listed once: walking ~2,000 modules on every call of
        `net.parameters()` costs more than a small network's forward pass on CPU."""
        if id(net) not in self._param_cache:
            names, params = zip(*net.named_parameters())
            self._param_cache[id(net)] = (list(names), list(params))
        return self._param_cache[id(net)]

    @property
    def w_lr(self) -> float:
        return self.w_opt.param_groups[0]["lr"]

    def eval_net(self) -> nn.Module:
        """The network whose weights were trained on D_t (evaluated on D_v for the history)."""
        return self.net

    def arch_grads(self, loss) -> list[torch.Tensor]:
        return list(torch.autograd.grad(loss, self.arch))

    def penalty_grads(self) -> list[torch.Tensor] | None:
        if self.arch_penalty is None:
            return None
        return list(torch.autograd.grad(self.arch_penalty(self.arch), self.arch))

    def apply_arch_step(self, grads) -> None:
        extra = self.penalty_grads()
        for i, (a, g) in enumerate(zip(self.arch, grads)):
            a.grad = g if extra is None else g + extra[i]
        self.arch_opt.step()

    def weight_step(self, net, opt, loss, coupling=None) -> None:
        """One SGD step on `net` for `loss` (+ β(w − other) when `coupling` = (β, other net))."""
        params = self.params(net)[1]
        opt.zero_grad(set_to_none=True)
        loss.backward(inputs=params)
        if coupling is not None:
            beta, other = coupling
            with torch.no_grad():
                grads = [p.grad for p in params]
                torch._foreach_add_(grads, torch._foreach_sub(params, self.params(other)[1]), alpha=beta)
        nn.utils.clip_grad_norm_(params, self.hp["grad_clip"], foreach=True)
        opt.step()

    @abstractmethod
    def step(self, train_batch, val_batch) -> dict:
        """One search step on a D_t and a D_v batch: {"loss", "logits"} of the training pass."""

    # -- checkpointing ---------------------------------------------------------------------
    def optimizers(self) -> dict:
        return {"w_opt": self.w_opt, "arch_opt": self.arch_opt}

    def networks(self) -> dict:
        return {"net": self.net}

    def state_dict(self) -> dict:
        return {"arch": [a.detach().clone() for a in self.arch],
                "nets": {k: n.state_dict() for k, n in self.networks().items()},
                "opts": {k: o.state_dict() for k, o in self.optimizers().items()},
                "schedulers": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for a, saved in zip(self.arch, state["arch"]):
                a.copy_(saved)
        for k, n in self.networks().items():
            n.load_state_dict(state["nets"][k])
        for k, o in self.optimizers().items():
            o.load_state_dict(state["opts"][k])
        for s, saved in zip(self.schedulers, state["schedulers"]):
            s.load_state_dict(saved)


class Darts1(SearchAlgorithm):
    """First-order DARTS: α ← α − η∇_α L_v(w, α), then w ← w − η∇_w L_t(w, α) (official order)."""

    name = "darts1"
    passes_per_step = PASSES[name]

    def arch_gradient(self, train_batch, val_batch) -> list[torch.Tensor]:
        return self.arch_grads(cross_entropy(self.net, None, self.arch, val_batch)[0])

    def step(self, train_batch, val_batch):
        self.apply_arch_step(self.arch_gradient(train_batch, val_batch))
        loss_t, logits = cross_entropy(self.net, None, self.arch, train_batch)
        self.weight_step(self.net, self.w_opt, loss_t)
        return {"loss": loss_t.detach(), "logits": logits.detach()}


class Darts2(Darts1):
    """Second-order DARTS: the unrolled hypergradient of the official DARTS code
    (cnn/architect.py), without copying the model.

    w' = w − ξ(momentum·buf + ∇_w L_t(w) + wd·w),  ξ = current weight lr;
    ∇_α = ∇_α L_v(w') − ξ (∇_α L_t(w⁺) − ∇_α L_t(w⁻)) / 2R,  w± = w ± R∇_{w'}L_v(w'),
    R = 0.01 / ‖∇_{w'} L_v(w')‖.
    """

    name = "darts2"
    passes_per_step = PASSES[name]
    fd_radius = 0.01  # R·‖v‖ of the finite difference (official value); tests shrink it

    def __init__(self, space, hp, device, arch_penalty=None):
        super().__init__(space, hp, device, arch_penalty)
        self.perturbed_bn_stats = hp["darts2"]["perturbed_bn_stats"]  # update (official) | keep

    def stats_copies(self) -> dict:
        """The BatchNorm buffers, cloned: a pass given these leaves the real statistics alone."""
        return {n: b.clone() for n, b in self.net.named_buffers()}

    def virtual_weights(self, train_batch, xi: float) -> dict:
        names, params = self.params(self.net)
        loss_t, _ = cross_entropy(self.net, None, self.arch, train_batch)
        grads = torch.autograd.grad(loss_t, params)
        momentum, wd = self.hp["w_momentum"], self.hp["w_weight_decay"]
        bufs = [self.w_opt.state.get(p, {}).get("momentum_buffer") for p in params]
        with torch.no_grad():
            d = torch._foreach_add(list(grads), params, alpha=wd)  # ∇_w L_t + wd·w
            if all(b is not None for b in bufs):  # no buffers before the first weight step
                torch._foreach_add_(d, bufs, alpha=momentum)
            return dict(zip(names, torch._foreach_add(params, d, alpha=-xi)))

    def hypergradient(self, train_batch, val_batch, xi: float) -> list[torch.Tensor]:
        virtual = {n: v.requires_grad_() for n, v in self.virtual_weights(train_batch, xi).items()}
        # the official unrolled model is a copy: its BatchNorm statistics are thrown away
        loss_v, _ = cross_entropy(self.net, {**virtual, **self.stats_copies()}, self.arch, val_batch)
        grads = torch.autograd.grad(loss_v, [*self.arch, *virtual.values()])
        g_arch, g_w = grads[:len(self.arch)], grads[len(self.arch):]
        implicit = self.hessian_vector_product(g_w, train_batch)
        return [ga - xi * h for ga, h in zip(g_arch, implicit)]

    def hessian_vector_product(self, vector, train_batch) -> list[torch.Tensor]:
        """(∇_α L_t(w + Rv) − ∇_α L_t(w − Rv)) / 2R, a finite difference of ∇²_{α,w} L_t · v.

        As in the official code, both passes update the real network's statistics (its in-place
        perturbation runs the real network), unless `perturbed_bn_stats` is `keep`. They run one
        after the other, so one graph is alive at a time, and in fp32 without TF32 whatever the
        step's precision: w ± Rv moves each weight by about 1e-5, below bf16's (and TF32's) spacing at
        weight scale, where g₊ − g₋ would be rounding noise times 1/2R. R stays a tensor: no host sync."""
        with torch.no_grad():
            r = self.fd_radius / torch.linalg.vector_norm(torch.stack(torch._foreach_norm(vector)))
            step = torch._foreach_mul(vector, r)
        names, params = self.params(self.net)

        def arch_grad_at(sign):
            with torch.no_grad():
                perturbed = dict(zip(names, torch._foreach_add(params, step, alpha=sign)))
            if self.perturbed_bn_stats == "keep":
                perturbed.update(self.stats_copies())
            return torch.autograd.grad(cross_entropy(self.net, perturbed, self.arch, train_batch)[0], self.arch)

        # both passes draw the same random numbers (dropout masks): otherwise the difference of
        # two masks, divided by 2R, swamps the Hessian-vector product
        with exact_fp32(self.device):
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                g_plus = arch_grad_at(1.0)
            g_minus = arch_grad_at(-1.0)
        return [(gp - gm) / (2 * r) for gp, gm in zip(g_plus, g_minus)]

    def arch_gradient(self, train_batch, val_batch) -> list[torch.Tensor]:
        return self.hypergradient(train_batch, val_batch, xi=self.w_lr)


class MiLeNAS(Darts1):
    """Mixed-level: α ← α − η(∇_α L_v + λ∇_α L_t) at (w, α), then w ← w − η∇_w L_t at the new α.

    The published order (MiLeNAS's architect.step_milenas, then the weight step of its search
    loop): two α-only passes, train then validation, and a fresh train pass for the weights.
    """

    name = "milenas"
    passes_per_step = PASSES[name]

    def arch_gradient(self, train_batch, val_batch) -> list[torch.Tensor]:
        g_t = self.arch_grads(cross_entropy(self.net, None, self.arch, train_batch)[0])
        g_v = super().arch_gradient(train_batch, val_batch)
        return [gv + self.hp["milenas"]["lam"] * gt for gv, gt in zip(g_v, g_t)]


class RARTS(SearchAlgorithm):
    """Relaxed architecture search: Gauss–Seidel on L_v(y) + λL_t(w) + β/2‖y − w‖² (eqs. 6–8).

    w ← w − η[λ∇_w L_t(w, α) + β(w − y)]
    y ← y − η[∇_y L_v(y, α) + β(y − w)]          (new w)
    α ← α − η[λ∇_α L_t(w, α) + ∇_α L_v(y, α)]    (new w and y; + latency term)
    """

    name = "rarts"
    passes_per_step = PASSES[name]

    def __init__(self, space, hp, device, arch_penalty=None):
        super().__init__(space, hp, device, arch_penalty)
        cfg = hp["rarts"]
        self.lam, self.beta = cfg["lam"], cfg["beta"]
        if cfg["y_init"] == "copy":
            self.net_y = copy.deepcopy(self.net)
        else:  # its own initialisation, drawn after w's and α's
            self.net_y = space.build_network().to(self.device)
        self.y_opt = self._weight_optimizer(self.net_y)
        self.schedulers.append(self._cosine(self.y_opt))

    def networks(self):
        return {"net": self.net, "net_y": self.net_y}

    def optimizers(self):
        return {"w_opt": self.w_opt, "y_opt": self.y_opt, "arch_opt": self.arch_opt}

    def step(self, train_batch, val_batch):
        loss_t, logits = cross_entropy(self.net, None, self.arch, train_batch)
        self.weight_step(self.net, self.w_opt, self.lam * loss_t, coupling=(self.beta, self.net_y))
        loss_v, _ = cross_entropy(self.net_y, None, self.arch, val_batch)
        self.weight_step(self.net_y, self.y_opt, loss_v, coupling=(self.beta, self.net))
        # ∇_α of λL_t(w) + L_v(y) as two backward passes: one graph alive at a time (at paper size a
        # graph of the search network is most of the step's memory)
        g_t = self.arch_grads(self.lam * cross_entropy(self.net, None, self.arch, train_batch)[0])
        g_v = self.arch_grads(cross_entropy(self.net_y, None, self.arch, val_batch)[0])
        self.apply_arch_step([gt + gv for gt, gv in zip(g_t, g_v)])
        return {"loss": loss_t.detach(), "logits": logits.detach()}


ALGORITHMS = {cls.name: cls for cls in (Darts1, Darts2, MiLeNAS, RARTS)}


def build_algorithm(name: str, space, hp: dict, device, arch_penalty=None) -> SearchAlgorithm:
    if name not in ALGORITHMS:
        raise ValueError(f"unknown search algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    return ALGORITHMS[name](space, hp, device, arch_penalty)
