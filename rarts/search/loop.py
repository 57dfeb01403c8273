"""The search loop shared by every algorithm: data streams, schedules, per-epoch history,
atomic checkpoints with exact resume, SIGTERM handling and the non-finite-loss stop."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from rarts import checkpoint
from rarts.data.stream import BatchStream, iterate_once
from rarts.runtime import LossWatch, Preempted, PreemptionGuard, with_fault_injection
from rarts.search.algorithms import build_algorithm

log = logging.getLogger("rarts.search")


@dataclass
class SearchData:
    x_train: torch.Tensor  # D_t, normalised, on the device
    y_train: torch.Tensor
    x_val: torch.Tensor    # D_v
    y_val: torch.Tensor


@torch.no_grad()
def evaluate(net, arch, x, y, batch_size: int, limit: int = 0) -> tuple[float, float]:
    was_training = net.training
    net.eval()
    loss_sum, correct, count = 0.0, 0, 0
    device = arch[0].device
    for xb, yb in iterate_once(x, y, batch_size, limit):
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        logits = net(xb, arch)
        loss_sum += float(torch.nn.functional.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
        count += len(yb)
    net.train(was_training)
    return loss_sum / count, correct / count


class SearchLoop:
    """Runs one (algorithm, seed) search to completion, resuming from `ckpt_path` if present."""

    def __init__(self, space, algo_name: str, seed: int, hp: dict, data: SearchData, device,
                 ckpt_path, arch_penalty=None, on_step=None, on_epoch=None):
        self.algo_name, self.seed, self.hp = algo_name, seed, hp
        self.device, self.ckpt_path = torch.device(device), Path(ckpt_path)
        self.on_step = on_step  # test hook: called with the global step number
        self.on_epoch = on_epoch  # e.g. live MLflow logging: called with each epoch's record
        self.fingerprint = checkpoint.fingerprint({"algo": algo_name, "seed": seed, "hp": hp,
                                                   "space": space.kw, "n_train": len(data.x_train)})
        checkpoint.seed_everything(seed)
        self.algo = build_algorithm(algo_name, space, hp, self.device, arch_penalty)
        aug = dict(crop_padding=hp["augment"]["crop_padding"], hflip=hp["augment"]["hflip"])
        self.data = data
        self.train_stream = BatchStream(data.x_train, data.y_train, hp["batch_size"], seed,
                                        device=self.device, **aug)
        self.val_stream = BatchStream(data.x_val, data.y_val, hp["batch_size"], seed + 1,
                                      device=self.device, **aug)
        self.steps_per_epoch = self.train_stream.batches_per_pass
        if hp.get("max_steps_per_epoch"):
            self.steps_per_epoch = min(self.steps_per_epoch, hp["max_steps_per_epoch"])
        self.epoch, self.step_in_epoch, self.elapsed = 0, 0, 0.0
        self.history: list[dict] = []
        self.meters = self._fresh_meters()
        self.guard = PreemptionGuard()
        self.losses = LossWatch(f"{algo_name} search, seed {seed}", self.device)

    # -- state ------------------------------------------------------------------------------
    def _fresh_meters(self) -> dict:
        return {k: torch.zeros((), device=self.device, dtype=torch.float64)
                for k in ("loss", "correct", "count")}

    def state_dict(self) -> dict:
        return {"fingerprint": self.fingerprint, "epoch": self.epoch, "step": self.step_in_epoch,
                "elapsed": self.elapsed, "history": self.history, "algo": self.algo.state_dict(),
                "streams": {"train": self.train_stream.state_dict(),
                            "val": self.val_stream.state_dict()},
                "meters": {k: v.cpu() for k, v in self.meters.items()}}

    def save_checkpoint(self) -> None:
        self.losses.check()  # never checkpoint non-finite weights
        checkpoint.save(self.ckpt_path, self.state_dict())

    def try_resume(self) -> bool:
        state = checkpoint.load(self.ckpt_path, self.fingerprint)
        if state is None:
            return False
        self.algo.load_state_dict(state["algo"])
        self.train_stream.load_state_dict(state["streams"]["train"])
        self.val_stream.load_state_dict(state["streams"]["val"])
        self.meters = {k: v.to(self.device) for k, v in state["meters"].items()}
        self.epoch, self.step_in_epoch = state["epoch"], state["step"]
        self.elapsed, self.history = state["elapsed"], state["history"]
        checkpoint.set_rng_state(state["rng"])
        log.info("%s seed %d: resumed from %s at epoch %d, step %d", self.algo_name, self.seed,
                 self.ckpt_path, self.epoch, self.step_in_epoch)
        return True

    def request_stop(self) -> None:
        """What SIGTERM does: checkpoint at the next step boundary, then exit."""
        self.guard.request()

    # -- running ----------------------------------------------------------------------------

    def _train_epoch(self) -> None:
        algo = self.algo
        algo.net.train()
        bar = tqdm(total=self.steps_per_epoch, initial=self.step_in_epoch, leave=False,
                   desc=f"{self.algo_name} s{self.seed} e{self.epoch}", disable=None)
        while self.step_in_epoch < self.steps_per_epoch:
            t0 = time.perf_counter()
            train_batch = self.train_stream.next()
            out = algo.step(train_batch, self.val_stream.next())
            self.losses.add(out["loss"], self.epoch, self.step_in_epoch)
            n = len(train_batch[1])
            self.meters["loss"] += out["loss"].double() * n
            self.meters["count"] += n
            self.meters["correct"] += (out["logits"].argmax(1) == train_batch[1]).sum()
            self.step_in_epoch += 1
            self.elapsed += time.perf_counter() - t0
            bar.update(1)
            if self.on_step is not None:
                self.on_step(self.epoch * self.steps_per_epoch + self.step_in_epoch)
            if self.guard.requested:
                bar.close()
                self.save_checkpoint()
                log.warning("%s seed %d: stop requested; checkpoint written at epoch %d step %d",
                            self.algo_name, self.seed, self.epoch, self.step_in_epoch)
                raise Preempted()
        bar.close()
        self.losses.check()

    def _end_epoch(self) -> dict:
        t0 = time.perf_counter()
        algo, m = self.algo, self.meters
        val_loss, val_acc = evaluate(algo.eval_net(), algo.arch, self.data.x_val, self.data.y_val,
                                     self.hp["batch_size"], self.hp.get("eval_batches", 0))
        weights = self.algo.space.edge_weights(algo.arch)
        genotype = self.algo.space.derive(algo.arch)
        record = {
            "epoch": self.epoch + 1,
            "lr": algo.w_lr,
            "arch_lr": algo.arch_opt.param_groups[0]["lr"],
            "train_loss": float(m["loss"] / m["count"]),
            "train_acc": float(m["correct"] / m["count"]),
            "val_loss": val_loss,
            "val_acc": val_acc,
            "alpha": {name: w.round(6).tolist()
                      for name, w in zip(self.algo.space.arch_names, weights)},
            # a width genotype's brief form: its full channel lists would swamp the history
            "genotype": genotype.brief() if hasattr(genotype, "brief") else genotype.to_json(),
        }
        if algo.arch_penalty is not None and hasattr(algo.arch_penalty, "expected_latency"):
            record["expected_latency"] = algo.arch_penalty.expected_latency(algo.arch)
        for s in algo.schedulers:
            s.step()
        self.elapsed += time.perf_counter() - t0
        record["wall_s"] = self.elapsed
        return record

    def run(self) -> dict:
        """Search for hp['epochs'] epochs; returns the final history record."""
        self.try_resume()
        self.on_step = with_fault_injection(self.on_step)
        with self.guard:
            while self.epoch < self.hp["epochs"]:
                self._train_epoch()
                record = self._end_epoch()
                self.history.append(record)
                if self.on_epoch is not None:
                    self.on_epoch(record)
                log.info("%s seed %d epoch %d/%d: train loss %.4f acc %.3f | val loss %.4f acc "
                         "%.3f | lr %.5f | %.1fs", self.algo_name, self.seed, record["epoch"],
                         self.hp["epochs"], record["train_loss"], record["train_acc"],
                         record["val_loss"], record["val_acc"], record["lr"], record["wall_s"])
                self.epoch, self.step_in_epoch = self.epoch + 1, 0
                self.meters = self._fresh_meters()
                self.save_checkpoint()
        return self.history[-1] if self.history else {}
