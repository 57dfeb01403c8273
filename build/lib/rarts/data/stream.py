"""In-memory mini-batch streams with on-device augmentation and exact, resumable order.

The whole split is held as one normalised tensor (on the GPU when it fits), so a step costs an
index and a gather; the shuffling generator and position are part of the checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def storage_device(nbytes: int, device) -> torch.device:
    """Where to hold a dataset whose preparation peaks at `nbytes`: on the GPU when that fits in half
    its free memory, else in host memory (batches then move to the GPU one at a time)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if nbytes > free // 2:
            return torch.device("cpu")
    return device


PREPARE_CHUNK = 2048  # images converted at a time: the preparation's peak is the result and one chunk


def prepare_images(x_uint8: torch.Tensor, mean, std, resolution: int, device) -> torch.Tensor:
    """uint8 (N, 3, H, W) → normalised float32, area-resized to `resolution`, held on `device` when its
    peak fits there (see `storage_device`). Converted a chunk at a time into the result, so the peak is
    the result plus one chunk's copies, not three full-size float temporaries."""
    n, c, h, w = x_uint8.shape
    out_bytes = n * c * resolution ** 2 * 4
    chunk_bytes = min(n, PREPARE_CHUNK) * c * (h * w * 5 + resolution ** 2 * 4)  # uint8 + float, resized
    device = storage_device(out_bytes + chunk_bytes, device)
    out = torch.empty(n, c, resolution, resolution, device=device)
    mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(std, device=device).view(1, -1, 1, 1)
    for i in range(0, n, PREPARE_CHUNK):
        x = x_uint8[i:i + PREPARE_CHUNK].to(device=device, dtype=torch.float32).div_(255.0)
        if h != resolution:
            x = F.interpolate(x, size=(resolution, resolution), mode="area")
        out[i:i + PREPARE_CHUNK] = x.sub_(mean).div_(std)
    return out


def random_draws(gen: torch.Generator, n: int, h: int, w: int, crop_padding: int, hflip: bool, cutout: int,
                 device) -> dict:
    """A batch's random numbers, drawn on the CPU generator `gen` (so the stream replays after a resume
    and the draws are the same on every device), copied to `device` in one pinned, non-blocking copy:
    no host wait per batch."""
    names, parts = [], []
    if crop_padding:
        names += ["oy", "ox"]
        parts += [torch.randint(0, 2 * crop_padding + 1, (n,), generator=gen) for _ in range(2)]
    if hflip:
        names.append("flip")
        parts.append((torch.rand(n, generator=gen) < 0.5).long())
    if cutout:
        names += ["cy", "cx"]
        parts += [torch.randint(0, h, (n,), generator=gen), torch.randint(0, w, (n,), generator=gen)]
    if not parts:
        return {}
    host = torch.stack(parts)
    if torch.device(device).type == "cuda":
        host = host.pin_memory()
    return dict(zip(names, host.to(device, non_blocking=True).unbind(0)))


def augment(x: torch.Tensor, gen: torch.Generator, crop_padding: int = 0, hflip: bool = False,
            cutout: int = 0, pad_value=None, fill: torch.Tensor | None = None) -> torch.Tensor:
    """Random crop, horizontal flip and cutout, vectorised over the batch.

    The crop pads with `pad_value` per channel (`rarts.data.black`: the raw image padded with black,
    as torchvision pads before normalising; default 0), or with `fill`, that value as a (1, C, 1, 1)
    tensor on x's device (a stream builds it once); cutout zeroes normalised values, as the DARTS
    cutout does after normalising. The random draws come from `gen` (see `random_draws`).
    """
    n, c, h, w = x.shape
    r = random_draws(gen, n, h, w, crop_padding, hflip, cutout, x.device)
    if crop_padding:
        p = crop_padding
        if fill is None:
            fill = torch.tensor(pad_value or (0.0,) * c, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
        padded = fill.expand(n, c, h + 2 * p, w + 2 * p).clone()
        padded[:, :, p:p + h, p:p + w] = x
        rows = (r["oy"][:, None] + torch.arange(h, device=x.device))[:, :, None]  # (n, h, 1)
        cols = (r["ox"][:, None] + torch.arange(w, device=x.device))[:, None, :]  # (n, 1, w)
        idx = torch.arange(n, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[idx, rows, cols].permute(0, 3, 1, 2)
    if hflip:
        x = torch.where(r["flip"].bool()[:, None, None, None], x.flip(3), x)
    if cutout:
        cy, cx = r["cy"], r["cx"]
        ys = torch.arange(h, device=x.device)[None, :, None]
        xs = torch.arange(w, device=x.device)[None, None, :]
        half = cutout // 2
        # The DARTS cutout: a length×length square centred anywhere, clipped at the border.
        inside = ((ys >= (cy - half)[:, None, None]) & (ys < (cy + half)[:, None, None])
                  & (xs >= (cx - half)[:, None, None]) & (xs < (cx + half)[:, None, None]))
        x = x * (~inside)[:, None].to(x.dtype)
    return x


class BatchStream:
    """Endless shuffled mini-batches over (x, y); one reshuffle per pass over the data."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int,
                 crop_padding: int = 0, hflip: bool = False, cutout: int = 0, pad_value=None, device=None):
        if len(x) == 0:
            raise ValueError("empty dataset")
        self.x, self.y = x, y
        self.device = torch.device(device) if device is not None else x.device  # batches go here
        self.batch_size = min(batch_size, len(x))
        self.aug = dict(crop_padding=crop_padding, hflip=hflip, cutout=cutout)
        self.fill = None  # the crop's border on the compute device, made once (see `augment`)
        if crop_padding:
            c = x.shape[1]
            self.fill = torch.tensor(pad_value or (0.0,) * c, dtype=x.dtype, device=self.device).view(1, c, 1, 1)
        self.gen = torch.Generator().manual_seed(seed)
        self.perm = self._shuffle()
        self.pos = 0

    def _shuffle(self) -> torch.Tensor:
        """A new order (drawn on the CPU generator, so it replays) held beside the data."""
        return torch.randperm(len(self.x), generator=self.gen).to(self.x.device)

    @property
    def batches_per_pass(self) -> int:
        return len(self.x) // self.batch_size  # the last partial batch is dropped

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pos + self.batch_size > len(self.x):
            self.perm = self._shuffle()
            self.pos = 0
        idx = self.perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        xb = self.x.index_select(0, idx).to(self.device, non_blocking=True)
        if any(self.aug.values()):
            xb = augment(xb, self.gen, **self.aug, fill=self.fill)  # on the compute device
        return xb, self.y.index_select(0, idx).to(self.device, non_blocking=True)

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state(), "perm": self.perm.cpu().clone(), "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
        self.perm = state["perm"].to(self.x.device)
        self.pos = state["pos"]


def iterate_once(x: torch.Tensor, y: torch.Tensor, batch_size: int, limit: int = 0, device=None):
    """Ordered batches over the data, for evaluation, moved to `device` if given; `limit` > 0 caps
    the number of batches."""
    n_batches = -(-len(x) // batch_size)
    if limit:
        n_batches = min(n_batches, limit)
    for b in range(n_batches):
        xb, yb = x[b * batch_size:(b + 1) * batch_size], y[b * batch_size:(b + 1) * batch_size]
        yield (xb, yb) if device is None else (xb.to(device, non_blocking=True), yb.to(device, non_blocking=True))
