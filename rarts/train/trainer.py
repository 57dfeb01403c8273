"""The training loop for fixed networks: SGD with a per-epoch schedule, auxiliary loss, drop path,
gradient clipping, optional bf16 autocast and channels_last on GPU, DistributedDataParallel under
torchrun, per-epoch history, atomic checkpoints with exact resume (every rank's RNG included)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from rarts import checkpoint
from rarts.runtime import LossWatch, Preempted, PreemptionGuard, with_fault_injection

log = logging.getLogger("rarts.train")


def make_scheduler(opt, hp: dict):
    if hp["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=hp["epochs"], eta_min=hp["lr_min"])
    if hp["schedule"] == "exponential":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=hp["lr_gamma"])
    if hp["schedule"] == "multistep":
        milestones = [int(f * hp["epochs"]) for f in hp["milestones"]]
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=hp["lr_gamma"])
    raise ValueError(f"unknown schedule {hp['schedule']!r}")


class Trainer:
    """hp: epochs, lr, momentum, weight_decay, grad_clip, schedule (+ lr_min / lr_gamma /
    milestones), auxiliary_weight, drop_path_prob, label_smoothing, amp, channels_last."""

    def __init__(self, model: nn.Module, hp: dict, device, dist, ckpt_path, name: str,
                 fingerprint: str, on_step=None, grad_hook=None, on_epoch=None):
        self.hp, self.device, self.dist, self.name = hp, torch.device(device), dist, name
        self.gpu = self.device.type == "cuda"
        self.channels_last = bool(hp.get("channels_last")) and self.gpu  # off on CPU
        self.amp = bool(hp.get("amp")) and self.gpu
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net = self.model
        if dist.world > 1:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.gpu else None)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=hp["lr"], momentum=hp["momentum"],
                                   weight_decay=hp["weight_decay"])
        self.sched = make_scheduler(self.opt, hp)
        self.ckpt_path, self.fingerprint = Path(ckpt_path), fingerprint
        self.on_step, self.grad_hook = on_step, grad_hook  # grad_hook: e.g. sparsity on BN γ
        self.on_epoch = on_epoch  # e.g. live MLflow logging (rank 0)
        self.epoch, self.step, self.elapsed, self.history = 0, 0, 0.0, []
        self.meters = self._fresh_meters()
        self.guard = PreemptionGuard()
        self.losses = LossWatch(f"training {name}", self.device)

    def _fresh_meters(self):
        return torch.zeros(3, dtype=torch.float64, device=self.device)  # loss·n, correct, n

    # -- checkpoints ---------------------------------------------------------------------------
    def _rank_rng_path(self) -> Path:
        return self.ckpt_path.with_name(f"{self.ckpt_path.stem}.rng{self.dist.rank}.pt")

    def save_checkpoint(self, source) -> None:
        self.losses.check()  # never checkpoint non-finite weights
        if self.dist.world > 1:  # every rank keeps its own RNG (drop-path masks differ per rank)
            checkpoint.save_torch_rng(self._rank_rng_path())
            torch.distributed.barrier()
        if self.dist.main:
            checkpoint.save(self.ckpt_path, {
                "fingerprint": self.fingerprint, "epoch": self.epoch, "step": self.step,
                "elapsed": self.elapsed, "history": self.history, "meters": self.meters.cpu(),
                "model": self.model.state_dict(), "opt": self.opt.state_dict(),
                "sched": self.sched.state_dict(), "source": source.state_dict()})
        if self.dist.world > 1:
            torch.distributed.barrier()

    def try_resume(self, source) -> bool:
        state = checkpoint.load(self.ckpt_path, self.fingerprint)
        if state is None:
            return False
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        source.load_state_dict(state["source"])
        self.epoch, self.step, self.elapsed = state["epoch"], state["step"], state["elapsed"]
        self.history, self.meters = state["history"], state["meters"].to(self.device)
        checkpoint.set_rng_state(state["rng"])
        if self.dist.world > 1 and self._rank_rng_path().is_file():
            checkpoint.set_rng_state(torch.load(self._rank_rng_path(), weights_only=False))
        log.info("%s: resumed from %s at epoch %d, step %d", self.name, self.ckpt_path, self.epoch, self.step)
        return True

    # -- steps ---------------------------------------------------------------------------------
    def _loss(self, x, y):
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            out = self.net(x)
            logits, aux = out if isinstance(out, tuple) else (out, None)
            loss = F.cross_entropy(logits, y, label_smoothing=self.hp.get("label_smoothing", 0.0))
            if aux is not None and self.hp.get("auxiliary_weight", 0) > 0:
                loss = loss + self.hp["auxiliary_weight"] * F.cross_entropy(
                    aux, y, label_smoothing=self.hp.get("label_smoothing", 0.0))
        return loss, logits

    def train_step(self, x, y):
        loss, logits = self._loss(x, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_hook is not None:
            self.grad_hook(self.model)
        if self.hp.get("grad_clip"):
            nn.utils.clip_grad_norm_(self.model.parameters(), self.hp["grad_clip"])
        self.opt.step()
        return loss.detach(), logits.detach()

    @torch.no_grad()
    def evaluate(self, batches) -> dict:
        self.model.eval()
        sums = torch.zeros(4, dtype=torch.float64, device=self.device)  # loss, top1, top5, n
        for x, y in batches:
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
                out = self.model(x)
            logits = (out[0] if isinstance(out, tuple) else out).float()
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices
            sums[0] += F.cross_entropy(logits, y, reduction="sum").double()
            sums[1] += (top[:, 0] == y).sum()
            sums[2] += (top == y[:, None]).any(1).sum()
            sums[3] += len(y)
        if self.dist.world > 1:
            torch.distributed.all_reduce(sums)
        self.model.train()
        loss, top1, top5, n = sums.tolist()
        return {"test_loss": loss / n, "test_acc": top1 / n, "test_top5": top5 / n}

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, source, eval_batches_fn) -> list[dict]:
        """Train to hp['epochs'], evaluating after every epoch; returns the history."""
        self.try_resume(source)
        self.on_step = with_fault_injection(self.on_step)
        steps = source.steps_per_epoch
        if self.hp.get("max_steps_per_epoch"):
            steps = min(steps, self.hp["max_steps_per_epoch"])
        with self.guard:
            while self.epoch < self.hp["epochs"]:
                self.model.train()
                self.model.drop_path_prob = self.hp.get("drop_path_prob", 0.0) * self.epoch / self.hp["epochs"]
                source.start_epoch(self.epoch, self.step)
                bar = tqdm(total=steps, initial=self.step, leave=False, disable=None if self.dist.main else True,
                           desc=f"{self.name} e{self.epoch}")
                while self.step < steps:
                    t0 = time.perf_counter()
                    x, y = source.next()
                    loss, logits = self.train_step(x, y)
                    self.losses.add(loss, self.epoch, self.step)
                    self.meters[0] += loss.double() * len(y)
                    self.meters[1] += (logits.argmax(1) == y).sum()
                    self.meters[2] += len(y)
                    self.step += 1
                    self.elapsed += time.perf_counter() - t0
                    bar.update(1)
                    if self.on_step is not None:
                        self.on_step(self.epoch * steps + self.step)
                    if self.guard.requested:
                        bar.close()
                        self.save_checkpoint(source)
                        raise Preempted()
                bar.close()
                self.losses.check()
                self._end_epoch(eval_batches_fn, source)
        return self.history

    def _end_epoch(self, eval_batches_fn, source) -> None:
        t0 = time.perf_counter()
        meters = self.meters.clone()
        if self.dist.world > 1:
            torch.distributed.all_reduce(meters)
        loss, correct, n = meters.tolist()
        record = {"epoch": self.epoch + 1, "lr": self.opt.param_groups[0]["lr"],
                  "train_loss": loss / n, "train_acc": correct / n, **self.evaluate(eval_batches_fn())}
        self.sched.step()
        self.elapsed += time.perf_counter() - t0
        record["wall_s"] = self.elapsed
        self.history.append(record)
        if self.dist.main and self.on_epoch is not None:
            self.on_epoch(record)
        if self.dist.main:
            log.info("%s epoch %d/%d: train loss %.4f acc %.3f | test loss %.4f acc %.3f | lr %.5f | %.1fs",
                     self.name, record["epoch"], self.hp["epochs"], record["train_loss"], record["train_acc"],
                     record["test_loss"], record["test_acc"], record["lr"], record["wall_s"])
        self.epoch, self.step, self.meters = self.epoch + 1, 0, self._fresh_meters()
        self.save_checkpoint(source)

    def weights_in_sync(self) -> bool:
        """Under DDP: do all ranks hold the same weights? (a checksum compared across ranks)"""
        if self.dist.world == 1:
            return True
        flat = torch.cat([p.detach().double().flatten() for p in self.model.parameters()])
        sig = torch.stack([flat.sum(), (flat * torch.arange(len(flat), device=flat.device)).sum()])
        sigs = [torch.zeros_like(sig) for _ in range(self.dist.world)]
        torch.distributed.all_gather(sigs, sig)
        return all(torch.equal(s, sigs[0]) for s in sigs)
