"""The pruned-and-fine-tuned runs of Tables 5 and 6, named and decoded in one place: which runs a table
has (`ns-40`, `rarts-60`, … at a fixed channel pruning ratio; `darts1`, `rarts`, `random` at the
learned one) and, for each, the run whose network it prunes, by which rule (`rarts.models.pruning`) and what
value. No torch here: the Snakefile reads it.
"""

from __future__ import annotations

from typing import NamedTuple


class Plan(NamedTuple):
    source: str  # the run whose saved network is pruned: "sparse", "baseline" or "search-ALGO"
    file: str  # its file: model.pt (a training) or searched.pt (a width search: weights and scores)
    rule: str  # rarts.models.pruning.choose_masks's rule
    value: float
    like: str | None  # random pruning: the run whose per-layer widths it copies


def percent(ratio: float) -> str:
    return str(round(100 * ratio))


def runs(ratios: list[float] | None, algorithms: list[str]) -> list[str]:
    """A table's fine-tuned runs: Network Slimming and each algorithm at each fixed ratio (Table 5), or
    each algorithm at its learned ratio and random pruning (Table 6, `ratios` None)."""
    if ratios is not None:
        return [f"{m}-{percent(r)}" for r in ratios for m in ["ns", *algorithms]]
    return [*algorithms, "random"]


def plan(run: str, fixed_ratio: bool, threshold: float = 0.0, random_like: str = "rarts") -> Plan:
    """How `run` gets its network. Fixed ratio (`ns-40`, `rarts-60`): Network Slimming prunes its
    sparsity-trained network by BN scale, an algorithm its width search's scores, at that ratio.
    Learned ratio: an algorithm's searched scores at |score| > `threshold`; `random` the trained
    baseline's random channels at `random_like`'s per-layer widths."""
    if fixed_ratio:
        method, _, pct = run.partition("-")
        if not pct.isdigit():
            raise ValueError(f"a fixed-ratio run is METHOD-PERCENT (e.g. ns-40), not {run!r}")
        source = "sparse" if method == "ns" else f"search-{method}"
        return Plan(source, "model.pt" if method == "ns" else "searched.pt", "ratio", int(pct) / 100, None)
    if run == "random":
        return Plan("baseline", "model.pt", "random", 0.0, f"search-{random_like}")
    return Plan(f"search-{run}", "searched.pt", "threshold", threshold, None)
