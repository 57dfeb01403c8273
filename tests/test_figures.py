"""Figures a reader compares at a glance: cell drawings whose labels never sit on another edge,
another label or a node; paper-vs-ours figures of the tables; search dynamics."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from rarts.drawing.cells import cell_figure, nats_cell_figure
from rarts.spaces import DartsSearchSpace
from rarts.models.genotypes import DARTS_V1, DARTS_V2
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


def test_table_view_draws_ours_beside_the_papers_values(tmp_path, monkeypatch):
    """The bars are the table's numbers: our means (with their stds as error bars) and the
    paper's values; the paper-only rows are left out; the HTML holds the table and its notes."""
    import pandas as pd

    import rarts.report.figures.tables as plots

    df = pd.DataFrame({"method": ["DARTS-1", "RARTS", "ENAS"], "source": ["ours", "ours", "paper"],
                       "test_error_mean": [3.1, 2.7, None], "test_error_std": [0.2, 0.1, None],
                       "chance_error": [90.0, 90.0, None], "paper_test_error": [3.0, 2.61, 2.89]})
    df.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "t.md").write_text("# Table 1: CIFAR-10\n\n**STAND-IN DATA**\n\n| … |\n\n- a note on the protocol\n")
    captured, save = {}, plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: (captured.setdefault("fig", fig), save(fig, path)))
    plots.make_table_view("table1", tmp_path / "t.csv", tmp_path / "t.md", tmp_path / "t.png", tmp_path / "t.pdf",
                          tmp_path / "t.html")
    ax = captured["fig"].axes[0]
    heights = [round(b.get_height(), 4) for b in ax.patches]
    assert heights == [3.1, 2.7, 3.0, 2.61]  # ours, then the paper's, for the two rows of ours
    assert [t.get_text() for t in ax.get_xticklabels()] == ["DARTS-1", "RARTS"]
    assert "stand-in" in ax.get_title()
    assert "ours (mean ± std over seeds)" in [t.get_text() for t in ax.get_legend().get_texts()]
    html = (tmp_path / "t.html").read_text()
    assert "<table" in html and "a note on the protocol" in html and "ENAS" in html
    assert html.startswith("<!doctype html>") and '<meta charset="utf-8">' in html  # "±" reads as "±"
    header = __import__("re").findall(r"<th>(\w+)</th>", html)
    assert header == ["method", "source", "test_error_mean", "test_error_std", "paper_test_error", "chance_error"]
    assert pd.read_csv(tmp_path / "t.csv").columns[-1] == "paper_test_error"  # the CSV keeps its order
    assert (tmp_path / "t.png").stat().st_size > 0 and (tmp_path / "t.pdf").stat().st_size > 0

    # one run a row (the offline config's Table 6): the legend claims no spread over seeds
    df.assign(test_error_std=None).to_csv(tmp_path / "t.csv", index=False)
    captured.clear()
    plots.make_table_view("table1", tmp_path / "t.csv", tmp_path / "t.md", tmp_path / "t.png", tmp_path / "t.pdf",
                          tmp_path / "t.html")
    assert "ours (one run a row)" in [t.get_text() for t in captured["fig"].axes[0].get_legend().get_texts()]


def history(algo, seed, skips, edges=("c₋₂→0", "c₋₁→0"), ops=("none", "skip_connect")):
    alpha = [[[0.5, 0.5]] * len(edges)] * len(skips)
    return {"algorithm": algo, "seed": seed, "space": "darts", "dataset": "cifar10", "standin": True,
            "ops": list(ops), "edges": list(edges),
            "epochs": [{"epoch": i + 1, "alpha": {"normal": a, "reduce": a}, "skip_connections": s}
                       for i, (a, s) in enumerate(zip(alpha, skips))]}


def test_skip_comparison_plots_each_algorithms_mean_over_seeds(tmp_path):
    import json

    from rarts.report.figures.dynamics import make_dynamics, make_skip_comparison

    runs = {"d0": history("darts1", 0, [1, 2, 4]), "d1": history("darts1", 1, [1, 3, 4]),
            "r0": history("rarts", 0, [1, 1, 0])}
    for name, h in runs.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(h))
    means = make_skip_comparison([tmp_path / f"{n}.json" for n in runs], tmp_path / "s.png", tmp_path / "s.pdf", "t")
    assert means["darts1"].tolist() == [1.0, 2.5, 4.0] and means["rarts"].tolist() == [1.0, 1.0, 0.0]
    make_dynamics(tmp_path / "d0.json", tmp_path / "dyn.png")
    assert (tmp_path / "dyn.png").stat().st_size > 0


@pytest.mark.parametrize("table", ["table1", "table5"])
def test_table_figures_labels_never_overlap(tmp_path, monkeypatch, table):
    """The tables' figures with their real labels (Table 1's long "published cell, retrained" rows,
    Table 5's dataset · method pairs): no two tick labels share a pixel in the rendered figure."""
    import pandas as pd

    import rarts.report.figures.tables as views
    from rarts.report.tables import HEADLINES, LABELS, _width_label

    if table == "table1":
        rows = pd.DataFrame({"method": [LABELS[m] for m in ("random", "darts1", "darts2", "milenas", "rarts",
                                                            "DARTS_V1", "DARTS_V2")]})
    else:
        runs = ["baseline", "ns-40", "rarts-40", "ns-60", "rarts-60"]
        rows = pd.DataFrame({"dataset": ["cifar10"] * 5 + ["cifar100"] * 5, "method": [_width_label(r) for r in runs] * 2})
    keys, mean, std, _, paper, _, _ = HEADLINES[table]
    rows = rows.assign(source="ours", **{mean: 3.0, std: 0.1, paper: 2.9, "chance_error": 90.0})
    rows.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "t.md").write_text("# Table\n\n- a note\n")
    captured, save = {}, views.save_figure
    monkeypatch.setattr(views, "save_figure", lambda fig, path: (captured.setdefault("fig", fig), save(fig, path)))
    views.make_table_view(table, tmp_path / "t.csv", tmp_path / "t.md", tmp_path / "t.png", tmp_path / "t.pdf",
                          tmp_path / "t.html")
    fig = captured["fig"]
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in fig.axes[0].get_xticklabels()]
    assert len(boxes) == len(rows)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
