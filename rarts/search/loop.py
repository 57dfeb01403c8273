"""One (algorithm, seed) search on the epoch engine: the algorithm's step over the D_t and D_v
streams, and the epoch's evaluation on D_v, softmax(α) and genotype."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rarts.core import checkpoint
from rarts.data.stream import BatchStream, iterate_once
from rarts.core.engine import EpochLoop, eval_batch_size, evaluate
from rarts.search.algorithms import build_algorithm
from rarts.search.hparams import search_hp
from rarts.pipeline.costs import steps_per_epoch


@dataclass
class SearchData:
    x_train: torch.Tensor  # D_t, normalised, on the device
    y_train: torch.Tensor
    x_val: torch.Tensor    # D_v
    y_val: torch.Tensor
    pad_value: tuple | None = None  # the crop's border per channel (rarts.data.black); None: 0


def penalty_identity(penalty) -> dict:
    """The architecture penalty's values for the fingerprint (none without a penalty, or for one whose
    settings are all in `hp`: fingerprints of such searches stay as they were)."""
    identity = getattr(penalty, "identity", None)
    return {"penalty": identity()} if identity else {}


class SearchLoop(EpochLoop):
    """Runs one (algorithm, seed) search to completion, resuming from `ckpt_path` if present."""

    def __init__(self, space, algo_name: str, seed: int, hp: dict | None, data: SearchData, device,
                 ckpt_path, arch_penalty=None, on_step=None, on_epoch=None):
        """hp: what differs from the paper's settings (rarts.search.hparams; None: the paper's)."""
        given = hp or {}
        hp = search_hp(given)
        self.algo_name, self.seed, self.hp, self.data = algo_name, seed, hp, data
        device = torch.device(device)
        checkpoint.seed_everything(seed)
        self.algo = build_algorithm(algo_name, space, hp, device, arch_penalty)
        # opt-in GPU switches, as in training: bf16 autocast, channels_last networks and batches
        self.amp = bool(hp.get("amp")) and device.type == "cuda"
        self.channels_last = bool(hp.get("channels_last")) and device.type == "cuda"
        if self.channels_last:
            for net in self.algo.networks().values():
                net.to(memory_format=torch.channels_last)
        aug = dict(crop_padding=hp["augment"]["crop_padding"], hflip=hp["augment"]["hflip"],
                   pad_value=data.pad_value)
        self.train_stream = BatchStream(data.x_train, data.y_train, hp["batch_size"], seed, device=device, **aug)
        self.val_stream = BatchStream(data.x_val, data.y_val, hp["batch_size"], seed + 1, device=device, **aug)
        steps = steps_per_epoch(hp, self.train_stream.batches_per_pass)
        super().__init__(f"{algo_name} search, seed {seed}", f"{algo_name} s{seed}", hp["epochs"], steps,
                         device, ckpt_path, {"algo": algo_name, "seed": seed, "hp": given, "space": space.kw,
                                             "n_train": len(data.x_train), **penalty_identity(arch_penalty)},
                         on_step=on_step, on_epoch=on_epoch)

    def train_step(self):
        train_batch, val_batch = self._layout(self.train_stream.next()), self._layout(self.val_stream.next())
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.algo.step(train_batch, val_batch)
        return out["loss"].float(), out["logits"].float(), train_batch[1]

    def _layout(self, batch):
        x, y = batch
        return (x.contiguous(memory_format=torch.channels_last) if self.channels_last else x), y

    def start_epoch(self) -> None:
        self.algo.net.train()

    def learning_rates(self) -> dict:
        return {"lr": self.algo.w_lr, "arch_lr": self.algo.arch_opt.param_groups[0]["lr"]}

    def epoch_metrics(self) -> dict:
        algo, space, net = self.algo, self.algo.space, self.algo.eval_net()
        net.eval()  # the weights trained on D_t, measured on D_v
        n = self.hp.get("eval_batches", 0) * self.hp["batch_size"] or len(self.data.y_val)  # images measured
        val = evaluate(lambda x: net(x, algo.arch), iterate_once(self.data.x_val[:n], self.data.y_val[:n],
                       eval_batch_size(self.hp["batch_size"]), device=self.device), self.device)
        net.train()
        weights, genotype = space.edge_weights(algo.arch), space.derive(algo.arch)
        skips = space.skip_connections(genotype)
        return {"val_loss": val["loss"], "val_acc": val["acc"],
                "alpha": {name: w.round(6).tolist() for name, w in zip(space.arch_names, weights)},
                "genotype": genotype.brief(), **({} if skips is None else {"skip_connections": skips}),
                **(algo.arch_penalty.record(algo.arch) if algo.arch_penalty is not None else {})}

    def schedulers(self) -> list:
        return self.algo.schedulers

    def weights(self) -> list:
        return [*self.algo.arch, *(p for net in self.algo.networks().values() for p in self.algo.params(net)[1])]

    def job_state(self) -> dict:
        return {"algo": self.algo.state_dict(),
                "streams": {"train": self.train_stream.state_dict(), "val": self.val_stream.state_dict()}}

    def load_job_state(self, state: dict) -> None:
        self.algo.load_state_dict(state["algo"])
        self.train_stream.load_state_dict(state["streams"]["train"])
        self.val_stream.load_state_dict(state["streams"]["val"])
