"""Search spaces (see `rarts.spaces.base.SearchSpace`): each builds a network of `rarts.models` taking
its architecture tensors as an argument, derives, summarises, draws and saves its result, so the
search algorithms and the search job stay space-agnostic."""

from rarts.spaces.darts import DartsSearchSpace
from rarts.spaces.nats import NatsSearchSpace
from rarts.spaces.width import WidthSpace

SPACES = {cls.name: cls for cls in (DartsSearchSpace, NatsSearchSpace, WidthSpace)}
