"""Atomic, exact-resume checkpoints: module/optimizer state plus every RNG and data position."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path

import numpy as np
import torch

from rarts.io import save_torch

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
    save_torch(path, {**payload, "rng": rng_state()})


def load(path, expected_fingerprint: str) -> dict | None:
    """The checkpoint at `path` if it exists and belongs to these settings, else None."""
    path = Path(path)
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != expected_fingerprint:
        log.warning("checkpoint %s was written for other settings; starting afresh", path)
        return None
    return state

