"""Training a fixed network on the epoch engine: SGD with a per-epoch schedule, auxiliary loss,
drop path, gradient clipping, optional bf16 autocast and channels_last on GPU, and
DistributedDataParallel under torchrun (BatchNorm over the global batch, every rank's RNG in the
checkpoint)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from rarts.core.engine import EpochLoop, evaluate
from rarts.models.layers import global_batchnorm
from rarts.pipeline.costs import steps_per_epoch


def make_scheduler(opt, hp: dict):
    if hp["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=hp["epochs"], eta_min=hp["lr_min"])
    if hp["schedule"] == "exponential":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=hp["lr_gamma"])
    if hp["schedule"] == "multistep":
        milestones = [int(f * hp["epochs"]) for f in hp["milestones"]]
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=hp["lr_gamma"])
    raise ValueError(f"unknown schedule {hp['schedule']!r}")


class Trainer(EpochLoop):
    """A fixed network on the epoch engine. hp: epochs, lr, momentum, weight_decay, grad_clip,
    schedule (+ lr_min / lr_gamma / milestones), auxiliary_weight, drop_path_prob,
    label_smoothing, amp, channels_last. `source` gives training batches, `eval_batches_fn()` one
    pass over the test set (this rank's share)."""

    def __init__(self, model: nn.Module, hp: dict, device, dist, ckpt_path, name: str, fingerprint: dict,
                 source, eval_batches_fn, on_step=None, grad_hook=None, on_epoch=None):
        self.hp, device = hp, torch.device(device)
        self.gpu = device.type == "cuda"
        self.channels_last = bool(hp.get("channels_last")) and self.gpu  # off on CPU
        self.amp = bool(hp.get("amp")) and self.gpu
        # BN statistics over the global batch whatever the process count (the paper's one GPU): torch's
        # fused SyncBatchNorm on NCCL, our all-reduced sums on gloo (SyncBatchNorm runs on GPUs only)
        if dist.world > 1:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model) if self.gpu else global_batchnorm(model)
        self.model = model.to(device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net = self.model
        if dist.world > 1:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if self.gpu else None)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=hp["lr"], momentum=hp["momentum"],
                                   weight_decay=hp["weight_decay"])
        self.sched = make_scheduler(self.opt, hp)
        self.source, self.eval_batches_fn = source, eval_batches_fn
        self.grad_hook = grad_hook  # e.g. Network Slimming's sparsity on BN γ
        steps = steps_per_epoch(hp, source.steps_per_epoch)
        super().__init__(f"training {name}", name, hp["epochs"], steps, device, ckpt_path, fingerprint,
                         dist, on_step=on_step, on_epoch=on_epoch)

    # -- the job's part of the engine -----------------------------------------------------------
    def start_epoch(self) -> None:
        self.model.train()
        self.model.drop_path_prob = self.hp.get("drop_path_prob", 0.0) * self.epoch / self.hp["epochs"]
        self.source.start_epoch(self.epoch, self.step)

    def train_step(self):
        x, y = self.source.next()
        logits, aux = self._forward(self.net, x)
        smoothing = self.hp.get("label_smoothing", 0.0)
        loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
        if aux is not None and self.hp.get("auxiliary_weight", 0) > 0:
            loss = loss + self.hp["auxiliary_weight"] * F.cross_entropy(aux, y, label_smoothing=smoothing)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_hook is not None:
            self.grad_hook(self.model)
        if self.hp.get("grad_clip"):
            nn.utils.clip_grad_norm_(self.model.parameters(), self.hp["grad_clip"])
        self.opt.step()
        return loss.detach(), logits.detach(), y

    def learning_rates(self) -> dict:
        return {"lr": self.opt.param_groups[0]["lr"]}

    def epoch_metrics(self) -> dict:
        self.model.eval()
        res = evaluate(lambda x: self._forward(self.model, x)[0], self.eval_batches_fn(), self.device, self.dist)
        self.model.train()
        return {"test_loss": res["loss"], "test_acc": res["acc"], "test_top5": res["top5"]}

    def schedulers(self) -> list:
        return [self.sched]

    def weights(self) -> list:
        return list(self.model.parameters())

    def job_state(self) -> dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(),
                "sched": self.sched.state_dict(), "source": self.source.state_dict()}

    def load_job_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.source.load_state_dict(state["source"])

    def _forward(self, net, x):
        """Float32 logits and the auxiliary head's (None outside training), under bf16 autocast
        when configured; channels-last inputs when configured."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            out = net(x)
        logits, aux = out if isinstance(out, tuple) else (out, None)
        return logits.float(), None if aux is None else aux.float()

    def weights_in_sync(self) -> bool:
        """Under DDP: do all ranks hold the same weights? (a checksum compared across ranks)"""
        if self.dist.world == 1:
            return True
        flat = torch.cat([p.detach().double().flatten() for p in self.model.parameters()])
        sig = torch.stack([flat.sum(), (flat * torch.arange(len(flat), device=flat.device)).sum()])
        sigs = [torch.zeros_like(sig) for _ in range(self.dist.world)]
        torch.distributed.all_gather(sigs, sig)
        return all(torch.equal(s, sigs[0]) for s in sigs)
