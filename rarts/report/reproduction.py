"""Reproduction verdicts: for every row of ours that has a paper value, ours (mean ± std, n), the paper's
(± std where quoted, n where stated), the difference and a verdict by one stated rule; and whether our
runs show the paper's search claims (fewer skip connections for RARTS, the orderings of Tables 2, 4
and 6). Built from the tables' CSVs (rarts.report.tables), the paper's run counts from rarts.report.paper.

The rule: the difference is judged against the combined standard error of the two means,
se = sqrt(s_ours² / n_ours + s_paper² / n_paper), a side without a spread (n = 1, or no std quoted)
adding nothing; the row agrees when |ours − paper| ≤ 2 se (about 95% under normal noise). A row with
no spread on either side cannot be judged, and says so. On stand-in or rehearsal data nothing is
comparable.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from rarts.pipeline import names
from rarts.pipeline.io import write_csv, write_text
from rarts.report.paper import PAPER_RUNS, quoted
from rarts.report.tables import HEADLINES

TOLERANCE_SE = 2.0
# table → (the columns naming a row, our mean, our std, our run count, the paper's value, what is compared)
NOT_COMPARABLE = {"table2": "latency measured on another device: compare the trend (the claims below)"}


def verdict(ours: float, s_ours: float, n_ours: float, paper: float, s_paper: float, n_paper: float,
            data: str = "") -> tuple[float, float, str]:
    """(difference, combined standard error, verdict) by the module's rule; a paper std without a stated
    run count is taken as one run's."""
    diff = ours - paper
    known = lambda v: not math.isnan(v)  # noqa: E731
    terms = ([s_ours ** 2 / n_ours] if known(s_ours) else []) + \
            ([s_paper ** 2 / (n_paper if known(n_paper) else 1.0)] if known(s_paper) else [])
    se = math.sqrt(sum(terms)) if terms else math.nan
    if data:
        return diff, se, f"not comparable: {data}"
    if not terms:
        return diff, se, "cannot judge: no spread on either side (n = 1, or no std)"
    side = (" (the paper quotes no std)" if not known(s_paper) else " (ours n = 1)" if not known(s_ours)
            else " (the paper's n not stated: its std taken as one run's)" if not known(n_paper) else "")
    return diff, se, ("agrees" if abs(diff) <= TOLERANCE_SE * se else "disagrees") + side


def data_kind(spec: dict) -> str:
    """What keeps a comparison from counting: "stand-in data", "rehearsal data", or "" (real data)."""
    kind = names.data_kind(spec)
    return "" if kind == "real" else f"{kind} data"


def paper_runs(table: str, row: str) -> float:
    """How many runs the paper says a value averages (NaN where it does not say)."""
    runs = PAPER_RUNS.get(table, {})
    return float(runs if isinstance(runs, int) else runs.get(row, math.nan))


def table_rows(table: str, df: pd.DataFrame, data: str) -> list[dict]:
    keys, mean, std, n, paper, what, _ = HEADLINES[table]
    ours = df[df["source"].ne("paper")] if "source" in df else df
    rows = []
    for _, r in ours.iterrows():
        p, sp = quoted(r.get(paper))
        if math.isnan(p) or pd.isna(r.get(mean)):
            continue
        label = " · ".join(str(r[k]) for k in keys)
        o, so = float(r[mean]), float(r[std]) if std and not pd.isna(r.get(std)) else math.nan
        no = float(r[n]) if n and not pd.isna(r.get(n)) else 1.0
        np_ = paper_runs(table, str(r.get("paper_method", r[keys[-1]])))
        why = data or NOT_COMPARABLE.get(table, "")
        diff, se, v = verdict(o, so, no, p, sp, np_, why)
        rows.append({"table": table, "row": label, "compared": what, "ours_mean": o, "ours_std": so, "ours_n": no,
                     "paper": p, "paper_std": sp, "paper_n": np_, "difference": diff, "combined_se": se,
                     "verdict": v})
    return rows


def claims(tables: dict[str, pd.DataFrame], skips: pd.DataFrame | None) -> list[dict]:
    """The paper's qualitative claims and whether our numbers show them."""
    out = []

    def claim(what, shown, detail):
        out.append({"table": "claim", "row": what, "verdict": ("shown" if shown else "not shown") + f" ({detail})"})

    if skips is not None and not skips.empty:
        normal = skips.groupby("algorithm").skip_connect_normal.mean()
        darts = [a for a in ("darts1", "darts2") if a in normal]
        if "rarts" in normal and darts:
            claim("RARTS's normal cell has fewer skip connections than DARTS's (Fig. 2, the collapse argument)",
                  all(normal["rarts"] < normal[a] for a in darts),
                  ", ".join(f"{a} {normal[a]:.1f}" for a in ["rarts", *darts]))
    t4 = tables.get("table4")
    if t4 is not None:
        for ds, grp in t4.groupby("dataset"):
            err = dict(zip(grp.method, grp.error_mean))
            skip = dict(zip(grp.method, grp.skip_ratio_pct))
            darts = [m for m in ("DARTS-1", "DARTS-2") if m in err]
            if "RARTS" in err and darts:
                claim(f"Table 4, {ds}: RARTS errs less than DARTS-1 and DARTS-2",
                      all(err["RARTS"] < err[m] for m in darts), ", ".join(f"{m} {err[m]:.2f}" for m in ["RARTS", *darts]))
                claim(f"Table 4, {ds}: RARTS's cell has the smaller skip ratio",
                      all(skip["RARTS"] < skip[m] for m in darts), ", ".join(f"{m} {skip[m]:.0f}%" for m in ["RARTS", *darts]))
    t2 = tables.get("table2")
    if t2 is not None:
        lat = dict(zip(t2.setting, t2.latency_ms_mean))
        for chain, what in ((("weight_2e-2", "base", "weight_2e-4"), "a larger latency weight finds a faster model"),
                            (("batch_16", "batch_32", "base"), "a smaller search batch finds a faster model")):
            if all(c in lat for c in chain):
                claim(f"Table 2: {what}", lat[chain[0]] < lat[chain[1]] < lat[chain[2]],
                      " < ".join(f"{c} {lat[c]:.2f} ms" for c in chain))
    t6 = tables.get("table6")
    if t6 is not None:
        err = dict(zip(t6.run, t6.test_error_mean))
        others = [m for m in ("random", "darts1", "darts2") if m in err]
        if "rarts" in err and others:
            claim("Table 6: RARTS's pruned network errs less than random pruning, DARTS-1 and DARTS-2",
                  all(err["rarts"] < err[m] for m in others), ", ".join(f"{m} {err[m]:.2f}" for m in ["rarts", *others]))
    return out


def front_page(rows: pd.DataFrame, found: list[dict], data: str | None) -> str:
    """The report's first page (reStructuredText): the verdicts counted per table and the paper's
    claims, each shown or not, in two tables and no more. The report centres this page beside its rule
    graph, and what overflows the screen at the top cannot be scrolled to: it must stay short. Every row
    with its numbers is results/reproduction.md and the Tables category. Snakemake renders the page
    through Jinja, so no braces."""
    title = "RARTS reproduced"
    lines = [title, "=" * len(title), ""]
    if data:
        lines += [f"**Not comparable with the paper: the runs used {data}.**", ""]
    kinds = rows.verdict.str.split(" \\(").str[0]
    per_table = [{"table": t, "our rows, by verdict (results/reproduction.md)":
                  ", ".join(f"{n} {k}" for k, n in kinds[rows.table == t].value_counts().items())}
                 for t in sorted(rows.table.unique())]
    claims = [{"the paper's claim": r["row"], "on our runs": r["verdict"].split(" (")[0]} for r in found]
    for table in (per_table, claims):
        if table:
            lines += [pd.DataFrame(table).to_markdown(index=False, tablefmt="rst"), ""]
    return "\n".join(lines).replace("{", "(").replace("}", ")")


def reproduction_main(spec: dict, inputs, csv, md, rst=None) -> pd.DataFrame:
    """spec: standin, rehearsal. inputs: the tables' CSVs (results/tableN.csv) and the skip counts of
    the DARTS-space searches (results/search/darts/skip_connections.csv)."""
    data = data_kind(spec)
    tables = {Path(p).stem: pd.read_csv(p) for p in inputs if Path(p).stem in HEADLINES}
    skip_file = next((p for p in inputs if Path(p).name == "skip_connections.csv"), None)
    rows = [r for t, df in sorted(tables.items()) for r in table_rows(t, df, data)]
    found = claims(tables, pd.read_csv(skip_file) if skip_file else None)
    df = pd.DataFrame(rows + found)
    write_csv(csv, df)
    shown = df.astype(object).where(df.notna(), "")
    counts = df[df.table != "claim"].verdict.str.split(" \\(").str[0].value_counts().to_dict() if rows else {}
    lines = ["# Reproduction: our rows beside the paper's", ""]
    if data:
        lines += [f"**Every row is not comparable: the runs used {data}.**", ""]
    lines += [shown[shown.table != "claim"].round(3).to_markdown(index=False), "", "## The paper's claims", "",
              *[f"- {r['row']}: {r['verdict']}" for r in found], "", "## How the verdicts are made", "",
              f"- Agrees when |ours − paper| ≤ {TOLERANCE_SE:g} · se, se = sqrt(s_ours²/n_ours + s_paper²/n_paper): the "
              "combined standard error of the two means; a side with no spread (n = 1, or no std quoted) adds "
              "nothing, and a row with none on either side cannot be judged.",
              "- paper_n: the runs the paper says a value averages (its Table 1 RARTS row and Table 6: 5; Table 4: "
              "3); elsewhere not stated (empty), when a quoted std is taken as that of one run.",
              "- Table 1's rows follow the protocol its notes name; the DARTS authors report the best of 4 searches "
              "retrained 4 times, so their numbers may sit below a mean over searches.",
              "- Table 2's milliseconds depend on the device: compare the trend (the claims above).",
              f"- Verdict counts: {counts}.", ""]
    write_text(md, "\n".join(lines))
    if rst:
        write_text(rst, front_page(df[df.table != "claim"], found, data))
    return df
