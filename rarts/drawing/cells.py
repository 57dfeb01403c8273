"""Cells as drawings: DARTS and NATS-Bench cells, a width search's kept channels. The search jobs draw
with this module, so it imports neither torch nor pandas; a cell is read by its fields (a genotype's
`normal`, …, a NATS-Bench cell's `ops` along its `edges`)."""

from __future__ import annotations

import matplotlib.pyplot as plt

from rarts.pipeline.io import save_figure

INPUT, NODE, OUTPUT = "#a6dba0", "#9ecae1", "#fdb863"


def draw_dag(ax, names: list[str], colors: list[str], edges: list[tuple], plain: list[tuple] = ()) -> dict:
    """A cell as a layered drawing: nodes left to right in order (inputs first, output last) on
    one row; each labelled edge (src, dst, op) runs on a lane of its own (above and below the row,
    alternating, further out for later nodes) with its op in a box on that lane just left of
    `dst`; `plain` edges (unlabelled) share the lowest lane. Lines leave and enter nodes
    vertically, so no line crosses a label box and no two labels share a place.

    Returns the artists: nodes (texts), edges (lines) and labels ((text, its lines) pairs)."""
    gap = 2.0
    x = {i: gap * i for i in range(len(names))}
    lanes = [(e // 2 + 1) * (1 if e % 2 == 0 else -1) for e in range(len(edges))]
    low = -max((abs(v) for v in lanes), default=0) - 1  # the plain edges' lane
    fan: dict[int, int] = {}

    def trunk(node):  # lines at one node spread sideways a little, so they stay apart
        fan[node] = fan.get(node, -1) + 1
        return x[node] + 0.09 * (fan[node] - 1.5)

    def line(points, arrow, **kw):
        (xs, ys) = zip(*points)
        drawn = ax.plot(xs[:-1] if arrow else xs, ys[:-1] if arrow else ys, **kw)
        if arrow:  # the last leg ends in an arrowhead at the node
            drawn.append(ax.annotate("", xy=points[-1], xytext=points[-2], arrowprops=dict(
                arrowstyle="-|>", shrinkA=0, shrinkB=9, lw=kw["lw"], color=kw["color"], ls=kw["ls"])).arrow_patch)
        return drawn

    nodes = [ax.text(x[i], 0, n, ha="center", va="center", fontsize=9, zorder=3,
                     bbox=dict(boxstyle="round,pad=0.3", fc=colors[i], ec="0.3")) for i, n in enumerate(names)]
    labels, lines = [], []
    for (src, dst, op), lane in zip(edges, lanes):
        y, box_x = 0.55 * lane, x[dst] - gap / 2
        style = dict(color="0.55" if op == "none" else "0.25", lw=1.0, ls="--" if op == "none" else "-")
        a, b = trunk(src), trunk(dst)
        drawn = line([(a, 0), (a, y), (box_x, y)], False, **style) + line([(box_x, y), (b, y), (b, 0)], True, **style)
        label = ax.text(box_x, y, op, ha="center", va="center", fontsize=7, zorder=4,
                        bbox=dict(boxstyle="round,pad=0.25", fc="white", ec="0.5", lw=0.6))
        labels.append((label, drawn))
        lines += drawn
    for src, dst in plain:
        a, b = trunk(src), trunk(dst)
        lines += line([(a, 0), (a, 0.55 * low), (b, 0.55 * low), (b, 0)], True, color="0.6", lw=0.8, ls="-")
    ax.set_xlim(-0.8, x[len(names) - 1] + 0.8)
    ax.set_ylim(0.55 * (low if plain else min([*lanes, 0])) - 0.35, 0.55 * max([*lanes, 0]) + 0.35)
    ax.axis("off")
    return {"nodes": nodes, "edges": lines, "labels": labels}


def draw_cell(ax, cell: list, concat: list, title: str) -> dict:
    """A DARTS cell: inputs c_{k-2}, c_{k-1}, nodes 0..n-1, output c_{k} (the concatenation)."""
    steps = len(cell) // 2
    names = ["$c_{k-2}$", "$c_{k-1}$", *map(str, range(steps)), "$c_{k}$"]
    colors = [INPUT, INPUT, *[NODE] * steps, OUTPUT]
    edges = [(j, i + 2, op) for i in range(steps) for op, j in cell[2 * i:2 * i + 2]]
    drawn = draw_dag(ax, names, colors, edges, plain=[(c, steps + 2) for c in concat])
    ax.set_title(title, fontsize=10)
    return drawn


def cell_figure(genotype, title: str):
    steps = len(genotype.normal) // 2
    fig, axes = plt.subplots(2, 1, figsize=(1.6 * (steps + 3), 1.1 * steps + 2.4), layout="constrained")
    fig.drawn = [draw_cell(axes[0], genotype.normal, genotype.normal_concat, "normal cell"),
                 draw_cell(axes[1], genotype.reduce, genotype.reduce_concat, "reduction cell")]
    fig.suptitle(title, fontsize=10)
    return fig


def save_cell_figure(genotype, path, title: str) -> None:
    fig = cell_figure(genotype, title)
    save_figure(fig, path)
    plt.close(fig)


def nats_cell_figure(cell, title: str):
    """A NATS-Bench cell: node 0 the input, node 3 the output, every edge j→i with its operation
    (`none` dashed)."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    fig.drawn = [draw_dag(ax, ["0", "1", "2", "3"], [INPUT, NODE, NODE, OUTPUT],
                          [(j, i, op) for (i, j), op in zip(cell.edges, cell.ops)])]
    ax.set_title(f"{title}\n{cell.arch_str()}", fontsize=8)
    return fig


def save_nats_cell_figure(cell, path, title: str) -> None:
    fig = nats_cell_figure(cell, title)
    save_figure(fig, path)
    plt.close(fig)


def save_width_figure(fractions: list[float], path, title: str) -> None:
    """A width search's result: the fraction of channels kept in each prunable layer."""
    fig, ax = plt.subplots(figsize=(10, 3))
    ax.bar(range(len(fractions)), fractions, width=1.0)
    ax.set_xlabel("prunable layer")
    ax.set_ylabel("fraction of channels kept")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)
    plt.close(fig)
