"""Checks of a run's config beyond its JSON schema (the Snakefile runs them after validation)."""

from __future__ import annotations

import math


def check_finite(node, key: str = "config") -> None:
    """Reject NaN and infinities anywhere, naming the key (`.nan` and `.inf` are valid YAML numbers and
    pass every range check of a JSON schema)."""
    if isinstance(node, dict):
        for k, v in node.items():
            check_finite(v, f"{key}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            check_finite(v, f"{key}[{i}]")
    elif isinstance(node, float) and not math.isfinite(node):
        raise ValueError(f"{key} is {node}: every number in the config must be finite")
