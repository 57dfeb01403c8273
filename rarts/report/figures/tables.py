"""The paper's tables as figures (ours, mean ± std over seeds, beside the paper's values, one axis) and
as HTML pages for the Snakemake report."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rarts.pipeline.io import save_figure, write_text
from rarts.report.paper import quoted
from rarts.report.tables import HEADLINES


# table → (the columns naming a row, our mean, our std or None, the paper's value, the axis label)
def table_rows(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """Our rows of a table (those quoting only the paper left out): a label, our mean and std,
    the paper's mean and std (where it quotes one), the chance-level error."""
    keys, mean, std, _, paper, _, _ = HEADLINES[table]
    ours = df[df["source"].ne("paper")] if "source" in df else df
    values = [quoted(v) for v in ours[paper]]
    return pd.DataFrame({"label": ours[keys].astype(str).agg(" · ".join, axis=1).tolist(),
                         "mean": ours[mean].tolist(), "std": (ours[std] if std else np.nan * ours[mean]).tolist(),
                         "paper": [m for m, _ in values], "paper_std": [sd for _, sd in values],
                         "chance": (ours["chance_error"] if "chance_error" in ours else np.nan * ours[mean]).tolist()})


ROW_INCHES, LABEL_CHARS = 1.6, 16
# compact cells that wrap, so that a wide table fits a report's page without scrolling sideways
STYLE = ("<style>table{border-collapse:collapse;font:12px sans-serif}td,th{padding:2px 6px;"
         "border-bottom:1px solid #ddd;text-align:left;vertical-align:top}th{background:#f4f4f4}"
         "</style>")


def beside_ours(df: pd.DataFrame) -> pd.DataFrame:
    """The table's columns with each paper_<name> moved right after our column(s) of that name
    (`paper_test_error` after `test_error_mean` and `test_error_std`): read side by side, not at the far
    right of a wide table. The CSV keeps its own order."""
    columns = [c for c in df.columns if not c.startswith("paper_")]
    for paper in [c for c in df.columns if c.startswith("paper_")]:
        stem = paper[len("paper_"):]
        ours = [i for i, c in enumerate(columns) if c == stem or c.startswith(stem + "_")]
        columns.insert(ours[-1] + 1 if ours else len(columns), paper)
    return df[columns]


def make_table_view(table: str, csv, md, png, pdf, html) -> None:
    """The table as a figure (ours, mean ± std over seeds, beside the paper's value, one axis) and
    as an HTML page (title, the table, its notes) for the Snakemake report."""
    df = pd.read_csv(csv)
    lines = Path(md).read_text().splitlines()
    title, notes = lines[0].lstrip("# "), [ln[2:] for ln in lines if ln.startswith("- ")]
    standin = next((ln.strip("*") for ln in lines if ln.startswith("**")), "")
    synthetic = "stand-in" if standin.startswith("STAND-IN") else "rehearsal" if standin else ""
    rows = table_rows(table, df)
    # a row's width holds its label wrapped at LABEL_CHARS, upright: labels never reach their neighbours
    fig, ax = plt.subplots(figsize=(max(6.0, ROW_INCHES * len(rows) + 2), 4.8))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, rows["mean"], 0.4, yerr=rows["std"], capsize=3, color="tab:blue",
           label="ours (mean ± std over seeds)" if rows["std"].notna().any() else "ours (one run a row)")
    ax.bar(x + 0.2, rows["paper"], 0.4, yerr=rows["paper_std"], capsize=3, color="0.75", hatch="//",
           edgecolor="0.4", label="paper (± its std where quoted)")
    chance = sorted(set(rows["chance"].dropna()))
    if chance:  # in the legend, not as a line: at 80-90% it would squash every bar
        ax.plot([], [], " ", label="chance-level error: " + ", ".join(f"{c:g}%" for c in chance))
    ax.set_xticks(x, [textwrap.fill(label, LABEL_CHARS) for label in rows["label"]], fontsize=8)
    ax.set_ylabel(HEADLINES[table].axis)
    ax.set_title(title + (f"\n({synthetic} data: not comparable with the paper's values)" if synthetic else ""), fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes: it hid tall bars
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    for path in (png, pdf):
        save_figure(fig, path)
    plt.close(fig)
    body = beside_ours(df).astype(object).where(df.notna(), "").to_html(index=False, border=0)
    # a whole page that names its encoding: opened from MLflow or a folder, "±" must not read "Â±"
    write_text(html, f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{title}</title>{STYLE}</head><body>'
               + f"<h3>{title}</h3>" + (f"<p><b>{standin}</b></p>" if standin else "") + body
               + "<ul>" + "".join(f"<li>{n}</li>" for n in notes) + "</ul></body></html>\n")
