"""Batch sources for training: in-memory tensors (CIFAR, on the device) or an ImageFolder read
by a DataLoader (ImageNet). Both give every rank its slice of the same global batch, so a run
on N GPUs sees the same samples in the same order as a run on one, and both resume mid-epoch."""

from __future__ import annotations

import torch

from rarts.data.stream import BatchStream, iterate_once
from rarts.runtime import ignore_sigterm


class TensorSource:
    """Global batches from a BatchStream; rank r takes rows r::world."""

    def __init__(self, x, y, batch_size, seed, dist, crop_padding=0, hflip=False, cutout=0, pad_value=None,
                 device=None):
        self.stream = BatchStream(x, y, batch_size, seed, crop_padding=crop_padding, hflip=hflip,
                                  cutout=cutout, pad_value=pad_value, device=device)
        self.dist = dist

    @property
    def steps_per_epoch(self) -> int:
        return self.stream.batches_per_pass

    def start_epoch(self, epoch: int, step: int) -> None:
        pass  # the stream's own state (restored from the checkpoint) is the position

    def next(self):
        x, y = self.stream.next()
        r, w = self.dist.rank, self.dist.world
        return x[r::w], y[r::w]

    def state_dict(self):
        return self.stream.state_dict()

    def load_state_dict(self, state):
        self.stream.load_state_dict(state)


class SeededSample(torch.utils.data.Dataset):
    """Wraps a dataset so each sample's random augmentation is a function of (seed, epoch, index):
    the same images come out whatever the worker count, and after a resume."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        with torch.random.fork_rng(devices=[]):  # loading in-process leaves the caller's RNG alone
            torch.manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + index)
            return self.dataset[index]


class FolderSource:
    """ImageFolder batches: a per-epoch permutation from (seed, epoch), started at any step."""

    def __init__(self, dataset, batch_size, seed, dist, workers=4, device="cpu"):
        self.data = SeededSample(dataset, seed)
        self.batch_size, self.seed, self.dist = batch_size, seed, dist
        self.workers, self.device = workers, torch.device(device)
        self._it = None

    @property
    def steps_per_epoch(self) -> int:
        return len(self.data) // self.batch_size

    def _batches(self, epoch: int, step: int):
        perm = torch.randperm(len(self.data), generator=torch.Generator().manual_seed(self.seed + epoch))
        r, w, b = self.dist.rank, self.dist.world, self.batch_size
        for s in range(step, self.steps_per_epoch):
            yield perm[s * b:(s + 1) * b][r::w].tolist()

    def start_epoch(self, epoch: int, step: int) -> None:
        self.data.epoch = epoch
        # its own generator: starting the workers must not draw from the global RNG, which the
        # checkpoint restores mid-epoch (drop path draws from it)
        loader = torch.utils.data.DataLoader(
            self.data, batch_sampler=list(self._batches(epoch, step)), num_workers=self.workers,
            pin_memory=self.device.type == "cuda", persistent_workers=False, worker_init_fn=ignore_sigterm,
            generator=torch.Generator().manual_seed(self.seed + epoch))
        self._it = iter(loader)

    def next(self):
        x, y = next(self._it)
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def tensor_eval_batches(x, y, batch_size, dist, device):
    """This rank's share of the evaluation set, in order, moved to the compute device."""
    return iterate_once(x[dist.rank::dist.world], y[dist.rank::dist.world], batch_size, device=device)


def folder_eval_batches(dataset, batch_size, dist, workers, device):
    subset = torch.utils.data.Subset(dataset, range(dist.rank, len(dataset), dist.world))
    loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, num_workers=workers,
                                         pin_memory=torch.device(device).type == "cuda", worker_init_fn=ignore_sigterm)
    for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)
