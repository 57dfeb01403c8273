"""The correctness half of `rarts gpu-check`, on the device itself: DARTS-2's hypergradient against the
exact one in float64, a tiny search run twice (identical α, or the largest difference and why), the
finite difference under bf16, host syncs in the search steps, the normalisation's peak, the latency
table's timing and SyncBatchNorm."""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from rarts.planning import search_timing


def darts2_hypergradient_check(device) -> dict:
    """DARTS-2's finite-difference hypergradient against d/dα L_v(w'(α), α) by autograd, in
    float64 on the device (a tiny network; the radius shrunk so the difference is exact)."""
    from rarts.search.algorithms import Darts2
    from rarts.spaces import DartsSearchSpace

    torch.manual_seed(0)
    algo = Darts2(DartsSearchSpace(init_channels=2, num_classes=3, layers=3), search_timing.HP, device)
    algo.net.double()
    with torch.no_grad():
        algo.arch = [a.double().requires_grad_() for a in algo.arch]
    g = torch.Generator().manual_seed(0)
    train, val = [(torch.randn(6, 3, 8, 8, generator=g, dtype=torch.float64).to(device),
                   torch.randint(0, 3, (6,), generator=g).to(device)) for _ in range(2)]
    algo.fd_radius, xi = 1e-5, algo.w_lr
    approx = algo.hypergradient(train, val, xi)
    names, params = zip(*algo.net.named_parameters())
    loss_t = F.cross_entropy(torch.func.functional_call(algo.net, dict(zip(names, params)), (train[0], algo.arch)),
                             train[1])
    grads = torch.autograd.grad(loss_t, params, create_graph=True)
    wd = search_timing.HP["w_weight_decay"]
    virtual = {n: p.detach() - xi * (gi + wd * p.detach()) for n, p, gi in zip(names, params, grads)}
    loss_v = F.cross_entropy(torch.func.functional_call(algo.net, virtual, (val[0], algo.arch)), val[1])
    exact = torch.autograd.grad(loss_v, algo.arch)
    err = max(float((a - e).abs().max()) for a, e in zip(approx, exact))
    scale = max(float(e.abs().max()) for e in exact)
    return {"max_abs_error": err, "max_abs_hypergradient": scale, "ok": err <= 1e-6 * max(1.0, scale)}


def repeat_search_check(device, deterministic=False) -> dict:
    """A tiny RARTS search run twice from the same seed: identical α, or the largest difference
    (cuDNN's autotuned, non-deterministic kernels are the usual reason on a GPU; `deterministic` runs
    with the config's `deterministic: true` switch)."""
    from rarts.core.devices import set_determinism

    set_determinism(deterministic)
    from rarts.search.loop import SearchData, SearchLoop
    from rarts.spaces import DartsSearchSpace

    hp = {**search_timing.HP, "epochs": 1, "batch_size": 8, "max_steps_per_epoch": 4, "eval_batches": 1,
          "augment": {"crop_padding": 1, "hflip": True}}
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, 8, 8, generator=g).to(device), torch.randint(0, 10, (64,), generator=g).to(device)
    archs = []
    logging.getLogger("rarts").setLevel(logging.ERROR)  # random labels: its near-chance warning is expected
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(2):
            loop = SearchLoop(DartsSearchSpace(init_channels=2, layers=3, steps=2, multiplier=2), "rarts", 0, hp,
                              SearchData(x[:32], y[:32], x[32:], y[32:]), device, Path(tmp) / f"{run}.pt")
            loop.run()
            archs.append([a.detach().cpu() for a in loop.algo.arch])
    set_determinism(False)
    diff = max(float((a - b).abs().max()) for a, b in zip(*archs))
    out = {"identical": diff == 0.0, "max_abs_difference": diff, "deterministic": deterministic}
    if diff and device.type == "cuda" and not deterministic:
        out["why"] = ("cuDNN's autotuned kernels are not deterministic (set `deterministic: true` for runs that "
                      "must repeat); results agree to float rounding, not bit for bit")
    return out


def darts2_fd_under_bf16(device) -> dict:
    """DARTS-2's finite difference with the step under bf16 autocast (`amp: true`): its two perturbed
    passes run in fp32 without TF32, so the Hessian-vector product equals the one computed with no
    autocast bit for bit; and how far the whole bf16 hypergradient is from the fp32 one."""
    from rarts.search.algorithms import Darts2
    from rarts.spaces import DartsSearchSpace

    torch.manual_seed(0)
    algo = Darts2(DartsSearchSpace(init_channels=4, num_classes=10, layers=3), search_timing.HP, device)
    g = torch.Generator().manual_seed(0)
    train, val = [(torch.randn(8, 3, 8, 8, generator=g).to(device), torch.randint(0, 10, (8,), generator=g).to(device))
                  for _ in range(2)]
    vector = [torch.randn(p.shape, generator=g).to(device) for p in algo.params(algo.net)[1]]
    state = {k: v.clone() for k, v in algo.net.state_dict().items()}
    amp = torch.autocast(device.type, dtype=torch.bfloat16)
    with amp:
        hvp_amp = algo.hessian_vector_product(vector, train)
    algo.net.load_state_dict(state)
    hvp = algo.hessian_vector_product(vector, train)
    algo.net.load_state_dict(state)
    with amp:
        hyper_amp = algo.hypergradient(train, val, algo.w_lr)
    algo.net.load_state_dict(state)
    hyper = algo.hypergradient(train, val, algo.w_lr)
    rel = max(float((a - b).norm() / b.norm()) for a, b in zip(hyper_amp, hyper))
    return {"hvp_identical_under_amp": all(torch.equal(a, b) for a, b in zip(hvp_amp, hvp)),
            "hypergradient_bf16_vs_fp32_relative_difference": rel}


def host_syncs(device) -> dict:
    """Steps of each algorithm with CUDA's sync debugging on: every operation that made the host wait
    for the GPU inside a step (none is expected; the loss check batches its own)."""
    if device.type != "cuda":
        return {"skipped": "CUDA only (a CPU has no host-device sync)"}
    import warnings

    from rarts.search.loop import SearchData, SearchLoop
    from rarts.spaces import DartsSearchSpace

    hp = {**search_timing.HP, "epochs": 1, "batch_size": 32, "max_steps_per_epoch": 0, "eval_batches": 1,
          "augment": {"crop_padding": 4, "hflip": True}, "latency": None}
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(512, 3, 32, 32, generator=g).to(device), torch.randint(0, 10, (512,), generator=g).to(device)
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for algo in ("darts1", "darts2", "milenas", "rarts"):
            loop = SearchLoop(DartsSearchSpace(init_channels=8, layers=5), algo, 0, hp,
                              SearchData(x[:256], y[:256], x[256:], y[256:]), device, Path(tmp) / f"{algo}.pt")
            loop.train_step()  # warm-up: the first step allocates and autotunes
            torch.cuda.synchronize(device)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    for _ in range(3):
                        loop.train_step()
                finally:
                    torch.cuda.set_sync_debug_mode("default")
            found[algo] = sorted({str(w.message).splitlines()[0][:200] for w in caught})
    return {"syncs_per_algorithm": found, "sync_free": not any(found.values())}


def normalisation_peak(device) -> dict:
    """The in-memory datasets' preparation on the device: its peak over the result's size (chunked and
    in place: about 1; the expression `(x/255 − mean)/std` on the whole set would be about 3)."""
    if device.type != "cuda":
        return {"skipped": "CUDA only (tests/test_data.py measures the CPU's peak RSS)"}
    from rarts.data.stream import prepare_images

    x = torch.randint(0, 256, (4000, 3, 224, 224), dtype=torch.uint8)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    out = prepare_images(x, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 224, device)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    return {"images": len(x), "result_GiB": out.numel() * 4 / 2**30, "peak_over_result": peak / (out.numel() * 4),
            "on": str(out.device)}


def latency_timing(device) -> dict:
    """One candidate op at the search's shape timed as the latency table times it (CUDA events around
    groups of calls), beside a synchronize after every call: the sync's share of a small op."""
    from rarts.measure import latency
    from rarts.models.darts_ops import OPS

    op = OPS["sep_conv_3x3"](16, 1, False).to(device).eval()
    x = torch.randn(64, 16, 32, 32, device=device)
    events = latency.time_forward(op, x, warmup=10, repeats=10)
    per_call = []
    with torch.no_grad():
        for _ in range(50):
            search_timing.sync(device)
            t0 = time.perf_counter()
            op(x)
            search_timing.sync(device)
            per_call.append((time.perf_counter() - t0) * 1e3)
    return {"table_ms": events, "synchronised_per_call_ms": statistics.median(per_call)}


def sync_batchnorm(device) -> dict:
    n = torch.cuda.device_count() if device.type == "cuda" else 0
    return {"skipped": f"{n} GPU(s): NCCL puts one rank on a GPU, so SyncBatchNorm over ranks needs 2; the gloo "
                       "path's statistics equal one process's on the global batch (tests/test_train.py)"}
