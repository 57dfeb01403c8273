"""The epoch engine that searches and trainings run on.

It owns what every long job needs: resume from an atomic checkpoint, the step loop with its
meters and progress bar, the non-finite-loss stop, SIGTERM (checkpoint at the next step, then
exit 143), per-epoch history and the per-epoch checkpoint. A job supplies only its step, its
epoch-end metrics and its state (see `EpochLoop`'s abstract methods).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
import logging
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from rarts.core import checkpoint
from rarts.pipeline import locks
from rarts.pipeline.names import chance_error
from rarts.pipeline.errors import NonFiniteLoss
from rarts.core.distributed import Dist, StopAgreement
from rarts.core.losses import LossWatch
from rarts.core.signals import Preempted, PreemptionGuard
from rarts.core.faults import with_fault_injection

log = logging.getLogger("rarts")

FORMAT = 4  # of the checkpoint layout: a checkpoint of another layout is not resumed
SUMMARY = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr", "wall_s")


class EpochLoop(ABC):
    """Runs `epochs` epochs of `steps_per_epoch` steps, resuming from `ckpt_path` when it holds a
    checkpoint of the same `fingerprint`. A job implements the abstract methods below (one lacking
    one fails when it is built)."""

    @abstractmethod
    def train_step(self):
        """One update on the next batch(es): (loss, logits, labels)."""

    @abstractmethod
    def start_epoch(self) -> None:
        """Before an epoch's first step, or its next step after a resume."""

    @abstractmethod
    def learning_rates(self) -> dict:
        """The epoch record's learning rates."""

    @abstractmethod
    def epoch_metrics(self) -> dict:
        """After the epoch's last step: evaluation and whatever else the history holds."""

    @abstractmethod
    def schedulers(self) -> list:
        """Stepped after each epoch."""

    @abstractmethod
    def job_state(self) -> dict:
        """The job's part of the checkpoint."""

    @abstractmethod
    def load_job_state(self, state: dict) -> None:
        """Restore `job_state()`'s part from a checkpoint."""

    @abstractmethod
    def weights(self) -> list:
        """Tensors checked to be finite before any checkpoint."""

    def __init__(self, name: str, label: str, epochs: int, steps_per_epoch: int, device, ckpt_path,
                 fingerprint: dict, dist: Dist | None = None, on_step=None, on_epoch=None):
        self.name, self.label = name, label  # e.g. "rarts search, seed 0" / "rarts s0" (the bar)
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.device, self.dist = torch.device(device), dist or Dist()
        self.ckpt_path = Path(ckpt_path)
        self.fingerprint = checkpoint.fingerprint({**fingerprint, "format": FORMAT})
        self.on_step = on_step  # called with the global step number (tests: kills, stops)
        self.on_epoch = on_epoch  # called with each epoch's record (live MLflow logging)
        self.epoch, self.step, self.elapsed, self.history = 0, 0, 0.0, []
        self.meters = self._fresh_meters()
        self.seen = None  # which labels the run has trained on: chance level is 1 / their number
        self.step_s = 0.0  # the last epoch's seconds a training step
        self.guard = PreemptionGuard()
        self.stop = StopAgreement(self.dist, self.device)
        self.losses = LossWatch(name, self.device)

    # -- checkpoints --------------------------------------------------------------------------
    def _fresh_meters(self) -> torch.Tensor:
        return torch.zeros(3, dtype=torch.float64, device=self.device)  # loss·n, correct, n

    def check_weights(self) -> None:
        """Stop with NonFiniteLoss if any weight is NaN or infinite (one host sync)."""
        norms = torch._foreach_norm([w.detach() for w in self.weights()])
        if not bool(torch.isfinite(torch.stack(norms)).all()):
            raise NonFiniteLoss(f"non-finite weights in {self.name} at epoch {self.epoch}, step {self.step} "
                                "(a diverged update): nothing is checkpointed or written; lower the learning rates")

    def save_checkpoint(self) -> None:
        """One file, written by rank 0, with every rank's RNG (drop-path masks differ per rank); the
        file format and the rule for damaged files are `rarts.core.checkpoint`'s."""
        self.losses.check()  # never checkpoint non-finite state
        self.check_weights()
        mine = {"rng": checkpoint.rng_state(), "meters": self.meters.cpu(),
                "seen": None if self.seen is None else self.seen.cpu()}
        ranks = [mine]
        if self.dist.world > 1:
            ranks = [None] * self.dist.world
            torch.distributed.all_gather_object(ranks, mine)
        if self.dist.main:
            checkpoint.save(self.ckpt_path, {
                **self.job_state(), "fingerprint": self.fingerprint, "epoch": self.epoch, "step": self.step,
                "elapsed": self.elapsed, "history": self.history, "ranks": ranks})
        if self.dist.world > 1:
            torch.distributed.barrier()

    def _load_agreed(self) -> dict | None:
        """The checkpoint to resume from, the same decision on every rank: rank 0 reads it first and
        alone moves a damaged one aside; the others read it only if rank 0 could."""
        if self.dist.world == 1:
            return checkpoint.load(self.ckpt_path, self.fingerprint)
        state = checkpoint.load(self.ckpt_path, self.fingerprint) if self.dist.main else None
        usable = [state is not None]
        torch.distributed.broadcast_object_list(usable, src=0)
        if not usable[0]:
            return None
        return state if self.dist.main else checkpoint.load(self.ckpt_path, self.fingerprint, move_aside=False)

    def try_resume(self) -> bool:
        state = self._load_agreed()
        if state is None:
            return False
        self.load_job_state(state)
        self.epoch, self.step, self.elapsed = state["epoch"], state["step"], state["elapsed"]
        self.history, ranks = state["history"], state["ranks"]
        if len(ranks) == self.dist.world:  # each rank its own meters, seen labels and RNG
            mine = ranks[self.dist.rank]
            self.meters = mine["meters"].to(self.device)
            self.seen = None if mine["seen"] is None else mine["seen"].to(self.device)
            checkpoint.set_rng_state(mine["rng"])
        else:  # another process count: the epoch's sums go to rank 0; per-rank random draws start anew
            self.meters = sum(r["meters"] for r in ranks).to(self.device) * float(self.dist.main)
            seen = [r["seen"] for r in ranks if r["seen"] is not None]
            self.seen = torch.stack(seen).any(0).to(self.device) if seen else None
            checkpoint.set_rng_state(ranks[0]["rng"])
            torch.manual_seed(hash((self.epoch, self.step, self.dist.rank)) % 2**63)
            log.warning("%s: resumed on %d processes from a checkpoint written by %d: weights, optimizers, sample "
                        "order and the epoch's meters continue exactly; drop-path masks (drawn per rank) follow "
                        "a new stream", self.name, self.dist.world, len(ranks))
        log.info("%s: resumed from %s at epoch %d, step %d", self.name, self.ckpt_path, self.epoch, self.step)
        return True

    def request_stop(self) -> None:
        """What SIGTERM does: checkpoint at the next step boundary, then exit."""
        self.guard.request()

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> list[dict]:
        """Run to the last epoch (resuming if a checkpoint is there); returns the history. A second
        process on the same checkpoint stops at once (locks.Busy)."""
        lock = locks.exclusive(self.ckpt_path.with_name(self.ckpt_path.name + ".lock"), self.name) \
            if self.dist.main else contextlib.nullcontext()
        with lock:
            self.try_resume()
            on_step = with_fault_injection(self.on_step, self.request_stop, self.dist.rank)
            with self.guard:
                while self.epoch < self.epochs:
                    self.start_epoch()
                    self._train_epoch(on_step)
                    self._end_epoch()
        self.warn_if_near_chance()
        return self.history

    def _train_epoch(self, on_step) -> None:
        bar = tqdm(total=self.steps_per_epoch, initial=self.step, leave=False,
                   desc=f"{self.label} e{self.epoch}", disable=None if self.dist.main else True)
        first, started = self.step, time.perf_counter()
        while self.step < self.steps_per_epoch:
            t0 = time.perf_counter()
            loss, logits, labels = self.train_step()
            self.losses.add(loss, self.epoch, self.step)
            self.meters[0] += loss.double() * len(labels)
            self.meters[1] += (logits.argmax(1) == labels).sum()
            self.meters[2] += len(labels)
            if self.seen is None:
                self.seen = torch.zeros(logits.shape[1], dtype=torch.bool, device=self.device)
            self.seen[labels] = True
            self.step += 1
            self.elapsed += time.perf_counter() - t0
            bar.update(1)
            if on_step is not None:
                on_step(self.epoch * self.steps_per_epoch + self.step)
            if self.stop.stop_now(self.guard.requested):  # every rank after the same step
                bar.close()
                self.save_checkpoint()
                log.warning("%s: stop requested; checkpoint written at epoch %d step %d", self.name,
                            self.epoch, self.step)
                raise Preempted()
        bar.close()
        self.losses.check()  # waits for the device: the time below is the steps' own
        self.step_s = (time.perf_counter() - started) / max(1, self.step - first)

    def _end_epoch(self) -> None:
        t0 = time.perf_counter()
        meters = self.meters.clone()
        if self.dist.world > 1:
            torch.distributed.all_reduce(meters)
        loss, correct, n = meters.tolist()
        record = {"epoch": self.epoch + 1, **self.learning_rates(), "train_loss": loss / n,
                  "train_acc": correct / n, "classes": int(self.seen.sum()), **self.epoch_metrics()}
        for key in [k for k in record if k.endswith("_loss")]:  # e.g. an update that diverged at the last step
            if not math.isfinite(record[key]):
                raise NonFiniteLoss(f"non-finite {key} ({record[key]}) in {self.name} at the end of epoch "
                                    f"{self.epoch} (after step {self.step}): lower the learning rates or check the data")
        for s in self.schedulers():
            s.step()
        self.elapsed += time.perf_counter() - t0
        record["wall_s"] = self.elapsed
        record["step_s"] = self.step_s  # seconds a training step took in this epoch (this process)
        self.history.append(record)
        if self.dist.main:
            if self.on_epoch is not None:
                self.on_epoch(record)
            log.info("%s epoch %d/%d: %s", self.name, record["epoch"], self.epochs,
                     " | ".join(f"{k} {record[k]:.4g}" for k in SUMMARY if k in record))
        self.epoch, self.step, self.meters = self.epoch + 1, 0, self._fresh_meters()
        self.save_checkpoint()

    def warn_if_near_chance(self) -> None:
        """A run that ends within 5 points of chance error learned nothing: say so by name."""
        last = self.history[-1] if self.history and self.dist.main else {}
        acc = last.get("test_acc", last.get("val_acc"))
        if acc is None:
            return
        error, chance = 100 * (1 - acc), chance_error(last["classes"])
        if error >= chance - 5:
            log.warning("%s: final error %.1f%% is within 5 points of chance (%.1f%% with %d classes): "
                        "this run did not learn", self.name, error, chance, last["classes"])


# Evaluation runs in eval mode (BatchNorm on its running statistics), so its batch size changes no
# result; on a CPU the small networks cost per call, and 256 images a call are 3× faster than 32.
EVAL_BATCH = 256


def eval_batch_size(train_batch: int) -> int:
    return max(train_batch, EVAL_BATCH)


@torch.no_grad()
def evaluate(forward, batches, device, dist: Dist | None = None) -> dict:
    """Mean loss, top-1 and top-5 accuracy of `forward` (inputs → logits) over `batches`, summed
    over the ranks under DDP."""
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, top1, top5, n
    for x, y in batches:
        logits = forward(x).float()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        sums[0] += torch.nn.functional.cross_entropy(logits, y, reduction="sum").double()
        sums[1] += (top[:, 0] == y).sum()
        sums[2] += (top == y[:, None]).any(1).sum()
        sums[3] += len(y)
    if dist is not None and dist.world > 1:
        torch.distributed.all_reduce(sums)
    loss, top1, top5, n = sums.tolist()
    return {"loss": loss / n, "acc": top1 / n, "top5": top5 / n}
