"""The checkpoint file: atomic writes, a settings fingerprint, the RNG states, and what happens to a
damaged file. What goes into a checkpoint and how a job resumes from it is `rarts.core.engine.EpochLoop`'s
(`save_checkpoint`, `try_resume`)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from pathlib import Path

import numpy as np
import torch

from rarts.pipeline.io import save_torch

log = logging.getLogger(__name__)


def fingerprint(obj) -> str:
    """A stable hash of the settings a checkpoint belongs to; a mismatch means start afresh."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save(path, payload: dict) -> None:
    save_torch(path, payload)


def load(path, expected_fingerprint: str, move_aside: bool = True) -> dict | None:
    """The checkpoint at `path` if it exists and belongs to these settings, else None. One that
    cannot be read (truncated, garbage) is moved aside with a warning (by the one process that
    `move_aside`), so a retry starts afresh."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes torch/pickle raise
        if not move_aside:
            log.warning("checkpoint %s cannot be read (%s); starting afresh", path, exc)
            return None
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, aside)
        log.warning("checkpoint %s cannot be read (%s: %s); moved to %s, starting afresh", path,
                    type(exc).__name__, exc, aside)
        return None
    if state.get("fingerprint") != expected_fingerprint:
        log.warning("checkpoint %s was written for other settings; starting afresh", path)
        return None
    return state

