"""Search spaces. Each supplies a network taking its architecture tensors as an argument,
`init_arch`, `derive` and `random_genotype`, so the search algorithms stay space-agnostic."""

from rarts.spaces.darts_search import DartsSearchSpace
from rarts.spaces.nats import NatsSearchSpace
from rarts.spaces.width import WidthSpace

SPACES = {"darts": DartsSearchSpace, "nats": NatsSearchSpace, "width": WidthSpace}


def build_space(name: str, **kwargs):
    if name not in SPACES:
        raise ValueError(f"unknown search space {name!r}; choose from {sorted(SPACES)}")
    return SPACES[name](**kwargs)
