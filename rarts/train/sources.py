"""Batch sources for training: in-memory tensors (CIFAR, on the device) or an ImageFolder read
by a DataLoader (ImageNet). Both give every rank its slice of the same global batch, so a run
on N GPUs sees the same samples in the same order as a run on one, and both resume mid-epoch."""

from __future__ import annotations

import torch

from rarts.data.stream import BatchStream, iterate_once
from rarts.core.signals import ignore_sigterm


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
    the same images come out whatever the worker count, and after a resume. Items are asked for as
    (epoch, index), so workers that live across epochs need no state of the main process."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, index = key
        with torch.random.fork_rng(devices=[]):  # loading in-process leaves the caller's RNG alone
            torch.manual_seed((self.seed * 1_000_003 + epoch) * 10_000_019 + index)
            return self.dataset[index]


class EpochBatches(torch.utils.data.Sampler):
    """The batch sampler of a FolderSource: this rank's share of each global batch of the current
    epoch (a permutation from (seed, epoch)), from the step it starts at."""

    def __init__(self, n: int, batch_size: int, seed: int, dist):
        self.n, self.batch_size, self.seed, self.dist = n, batch_size, seed, dist
        self.epoch = self.start = 0

    @property
    def steps(self) -> int:
        return self.n // self.batch_size

    def __len__(self):
        return self.steps - self.start

    def __iter__(self):
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        r, w, b = self.dist.rank, self.dist.world, self.batch_size
        for s in range(self.start, self.steps):
            yield [(self.epoch, i) for i in perm[s * b:(s + 1) * b][r::w].tolist()]


def folder_loader(dataset, workers=0, device="cpu", seed=0, **batching):
    """A DataLoader whose workers start once and serve every epoch: a worker forked again each epoch
    would copy the rank's memory as it stands then, activations' heap included (the rehearsal's
    4-rank ImageNet job ran out of memory so at 224 px). Its own generator: starting the workers must
    not draw from the global RNG, which a checkpoint restores mid-epoch (drop path draws from it)."""
    return torch.utils.data.DataLoader(
        dataset, **batching, num_workers=workers,
        pin_memory=torch.device(device).type == "cuda", persistent_workers=workers > 0,
        worker_init_fn=ignore_sigterm, generator=torch.Generator().manual_seed(seed))


class FolderSource:
    """ImageFolder batches: a per-epoch permutation from (seed, epoch), started at any step."""

    def __init__(self, dataset, batch_size, seed, dist, workers=4, device="cpu"):
        self.data = SeededSample(dataset, seed)
        self.order = EpochBatches(len(dataset), batch_size, seed, dist)
        self.loader = folder_loader(self.data, batch_sampler=self.order, workers=workers, device=device, seed=seed)
        self.device, self._it = torch.device(device), None

    @property
    def steps_per_epoch(self) -> int:
        return self.order.steps

    def start_epoch(self, epoch: int, step: int) -> None:
        self.order.epoch, self.order.start = epoch, step
        self._it = iter(self.loader)

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


class FolderEval:
    """This rank's share of an ImageFolder evaluation set, in order, through workers that serve every
    epoch (see `folder_loader`); calling it gives one pass."""

    def __init__(self, dataset, batch_size, dist, workers, device):
        subset = torch.utils.data.Subset(dataset, range(dist.rank, len(dataset), dist.world))
        self.loader, self.device = folder_loader(subset, batch_size=batch_size, workers=workers, device=device), device
        if workers:  # fork the workers now, while the rank's heap is small: forked at the first evaluation,
            iter(self.loader)  # they shared an epoch's heap, copied as training rewrote it (the rehearsal's OOM)

    def __call__(self):
        for x, y in self.loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
