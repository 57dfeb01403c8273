"""Figures a reader compares at a glance: cell drawings whose labels never sit on another edge,
another label or a node; paper-vs-ours figures of the tables; search dynamics."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from rarts.plots import cell_figure, nats_cell_figure
from rarts.spaces import DartsSearchSpace
from rarts.spaces.genotypes import DARTS_V1, DARTS_V2
from rarts.spaces.nats import NatsSearchSpace


def display_path(artist) -> MplPath:
    path = artist.get_transform().transform_path(artist.get_path())
    return MplPath(path.to_polygons(closed_only=False)[0]) if path.codes is not None else path


def clashes(fig) -> list:
    """Every (label, what it overlaps) on the rendered figure: another label's or a node's box,
    or a line of another edge; and labels outside the figure."""
    fig.canvas.draw()
    renderer, found = fig.canvas.get_renderer(), []
    page = fig.bbox
    for drawn in fig.drawn:
        labels = drawn["labels"]
        for i, (label, own) in enumerate(labels):
            box = label.get_bbox_patch().get_window_extent(renderer)
            if not (page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1):
                found.append((label.get_text(), "outside the figure"))
            for other in [t for t, _ in labels[i + 1:]] + drawn["nodes"]:
                if box.overlaps(other.get_bbox_patch().get_window_extent(renderer)):
                    found.append((label.get_text(), other.get_text()))
            for line in drawn["edges"]:
                if not any(line is mine for mine in own) and display_path(line).intersects_bbox(box, filled=False):
                    found.append((label.get_text(), "an edge"))
    plt.close(fig)
    return found


@pytest.mark.parametrize("steps", [4, 2])
def test_darts_cells_have_every_label_clear(steps):
    space = DartsSearchSpace(steps=steps, multiplier=steps)
    genotypes = [DARTS_V1, DARTS_V2] if steps == 4 else []
    genotypes += [space.random_genotype(np.random.default_rng(seed)) for seed in range(12)]
    for g in genotypes:
        assert clashes(cell_figure(g, "a cell")) == [], g


def test_nats_cells_have_every_label_clear():
    space = NatsSearchSpace()
    for seed in range(12):
        assert clashes(nats_cell_figure(space.random_genotype(np.random.default_rng(seed)), "a cell")) == []


def test_the_checker_sees_a_label_placed_on_an_edge():
    fig = cell_figure(DARTS_V2, "a cell")
    label, _ = fig.drawn[0]["labels"][0]
    node = fig.drawn[0]["nodes"][3]
    label.set_position(node.get_position())  # onto node 1, where edges arrive
    assert clashes(fig)
