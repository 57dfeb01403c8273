"""A search's hyper-parameters with the paper's defaults (DARTS-space search, paper §4; the pipeline's
config/config.yaml `search.darts` holds the same values, and a test holds the two together), so a
library user names only what differs. A misspelled key is named with the nearest known one."""

from __future__ import annotations

import copy
import difflib

from rarts.pipeline.errors import InputError

PAPER = {
    "epochs": 50,
    "batch_size": 64,
    "max_steps_per_epoch": 0,   # 0: a full pass over D_t per epoch
    "eval_batches": 0,          # 0: the whole of D_v at each epoch's end
    "w_lr": 0.025,              # the weights' SGD: cosine from w_lr to w_lr_min
    "w_lr_min": 0.001,
    "w_momentum": 0.9,
    "w_weight_decay": 3.0e-4,
    "w_nesterov": False,
    "grad_clip": 5.0,
    "arch_lr": 3.0e-4,          # α's Adam
    "arch_betas": [0.5, 0.999],
    "arch_weight_decay": 1.0e-3,
    "augment": {"crop_padding": 4, "hflip": True},
    "milenas": {"lam": 1.0},
    "darts2": {"perturbed_bn_stats": "update"},
    "rarts": {"lam": 1.0, "beta": 1.0, "y_init": "copy"},  # not given in the paper: our choice
    "amp": False,
    "channels_last": False,
}


def search_hp(given: dict | None = None, **overrides) -> dict:
    """The paper's hyper-parameters with `given` and `overrides` on top (nested sections merged key by
    key). Keys the search does not know pass through (a space's own settings: layers, resolution …),
    except one within a typo of a known key, or unknown inside a known section: InputError naming it
    and the nearest known keys."""
    given = {**(given or {}), **overrides}
    hp = copy.deepcopy(PAPER)
    for key, value in given.items():
        if key in PAPER and isinstance(PAPER[key], dict):
            if not isinstance(value, dict):
                raise InputError(f"search setting {key!r} is a section ({', '.join(PAPER[key])}), not {value!r}")
            for sub in value:
                if sub not in PAPER[key]:
                    raise InputError(f"unknown search setting {key}.{sub}{nearest(sub, PAPER[key])}")
            hp[key] = {**PAPER[key], **value}
        else:
            if key not in PAPER and difflib.get_close_matches(key, PAPER, n=1, cutoff=0.8):
                raise InputError(f"unknown search setting {key!r}{nearest(key, PAPER)}")
            hp[key] = value
    return hp


def nearest(key: str, known) -> str:
    near = difflib.get_close_matches(key, list(known), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(map(repr, near))}?" if near else f"; known: {', '.join(known)}"
