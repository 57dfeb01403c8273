"""The paper's tables, assembled from our runs. The paper's own numbers live only in columns
named `paper_*` (and in rows whose `source` is "paper"); ours are never filled from them."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from rarts.pipeline import layout
from rarts.pipeline.names import ALGORITHMS, chance_error
from rarts.pipeline.io import read_json, write_csv, write_text
from rarts.report.paper import (PAPER_TABLE1, PAPER_TABLE2, PAPER_TABLE3, PAPER_TABLE4, PAPER_TABLE5,
                         PAPER_TABLE6, PAPER_TAS)

class Headline(NamedTuple):
    """A table's headline numbers: the columns naming a row, our mean, std and run count, the paper's
    column, what the verdicts compare, and the axis the table's figure plots them on."""
    keys: list
    mean: str
    std: str | None
    n: str | None
    paper: str
    compared: str
    axis: str


HEADLINES = {
    "table1": Headline(["method"], "test_error_mean", "test_error_std", "n_runs", "paper_test_error", "test error (%)",
                       "CIFAR-10 test error (%)"),
    "table2": Headline(["setting"], "latency_ms_mean", "latency_ms_std", "n_runs", "paper_latency_ms", "latency (ms)",
                       "latency of the found model (ms)"),
    "table3": Headline(["method"], "top1_error", None, None, "paper_top1_error", "top-1 error (%)",
                       "ImageNet top-1 error (%)"),
    "table4": Headline(["dataset", "method"], "error_mean", "error_std", "n_runs", "paper_error", "test error (%)",
                       "test error (%)"),
    "table5": Headline(["dataset", "method"], "test_error_mean", "test_error_std", "n_runs", "paper_test_error",
                       "test error (%)", "test error (%)"),
    "table6": Headline(["method"], "test_error_mean", "test_error_std", "n_runs", "paper_test_error", "test error (%)",
                       "ImageNet-R test error (%)"),
}

STANDIN_NOTE = ("STAND-IN DATA: these numbers come from the offline config (scikit-learn digits "
                "written in the real dataset formats, tiny networks, few steps). They exercise the "
                "pipeline; they are not a reproduction of the paper's numbers.")

# Which paper row each of our methods is compared with.
OURS_TO_PAPER1 = {"random": "Random baseline", "darts1": "DARTS-1", "darts2": "DARTS-2",
                  "milenas": "MiLeNAS", "rarts": "RARTS", "DARTS_V1": "DARTS-1", "DARTS_V2": "DARTS-2"}
LABELS = {"random": "Random baseline", "darts1": "DARTS-1", "darts2": "DARTS-2",
          "milenas": "MiLeNAS", "rarts": "RARTS",
          "DARTS_V1": "DARTS-1 (published DARTS_V1 cell, retrained)",
          "DARTS_V2": "DARTS-2 (published DARTS_V2 cell, retrained)"}

CHANCE_NOTE = ("chance_error: the error of guessing among the classes the runs trained on; a row near it "
               "did not learn.")


def chance(recs: list[dict]) -> float:
    """Chance-level error (%) of the runs behind a row, from the classes their training saw."""
    return round(chance_error(recs[0]["history"][-1]["classes"]), 1)


def mean_std(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan")


METHODS = ("random", *ALGORITHMS)  # the tables' order of the searched methods (rarts.pipeline.names)


def stat(column: str, values, digits: int = 2) -> dict:
    """A statistic as the tables give it: `column` ("mean ± std"), `column_mean`, `column_std`."""
    m, sd = mean_std(values)
    return {column: fmt(m, sd, digits), f"{column}_mean": m, f"{column}_std": sd}


def fmt(mean: float, std: float, digits: int = 2) -> str:
    if np.isnan(mean):
        return ""
    return f"{mean:.{digits}f}" if np.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


REHEARSAL_NOTE = ("REHEARSAL DATA: these numbers come from the dress rehearsal (`make rehearsal`: synthetic data in "
                  "the real formats at the real sizes, the paper's networks, a few steps of two epochs). They show "
                  "that every job runs at paper size; they are not a reproduction of the paper's numbers.")


def data_note(spec: dict) -> str:
    """What a table says of its data when it is not the real dataset ('' when it is)."""
    return STANDIN_NOTE if spec.get("standin") else REHEARSAL_NOTE if spec.get("rehearsal") else ""


def write_table(df: pd.DataFrame, csv, md, title: str, spec: dict, notes: list[str]) -> pd.DataFrame:
    """The table with the data it was made from in its `standin` and `rehearsal` columns (as the searches'
    skip_connections.csv has them), written as the CSV and the Markdown page (its title, that note, the
    table, `notes`), and returned."""
    df = df.assign(standin=bool(spec.get("standin")), rehearsal=bool(spec.get("rehearsal")))
    write_csv(csv, df)
    lines = [f"# {title}", ""]
    if data_note(spec):
        lines += [f"**{data_note(spec)}**", ""]
    shown = df.astype(object).where(df.notna(), "")
    shown = shown.map(lambda v: v.replace("|", "\\|") if isinstance(v, str) else v)  # arch strings
    lines += [shown.to_markdown(index=False), ""] + [f"- {n}" for n in notes]
    write_text(md, "\n".join(lines) + "\n")
    return df


def protocol_note(spec: dict, selections: dict[str, str]) -> str:
    """What Table 1's rows are the mean of, by the configured protocol."""
    if spec.get("protocol") == "best":
        chosen = ", ".join(f"{LABELS[a]} {sel.split('→')[-1].strip()}" for a, sel in sorted(selections.items()))
        return (f"Protocol `best` (the DARTS protocol): per algorithm the best of its {len(spec['seeds'])} searches by "
                f"final search validation accuracy ({chosen}), retrained with training seeds {spec['retrain_seeds']}; "
                "our rows are mean ± sample std over those trainings. The random baseline's sampled cells have no "
                f"search accuracy: each is retrained once (seed {spec['train_seed']}).")
    return (f"Protocol `searches`: every search's cell retrained once (training seed {spec.get('train_seed', 0)}); our "
            f"rows are mean ± sample std of the test error over the search seeds {spec.get('seeds', '')}.")


def table1(spec: dict, inputs, csv, md) -> pd.DataFrame:
    """spec: standin, rehearsal, protocol, seeds, train_seed, retrain_seeds. inputs: the CIFAR
    metrics.json of every retraining, the cost.json of every search, and (protocol `best`) each
    algorithm's best.json (which search was retrained)."""
    costs: dict[str, list[dict]] = {}
    for c in map(read_json, (p for p in inputs if Path(p).name == "cost.json")):
        costs.setdefault(c["algorithm"], []).append(c)
    selections = {read_json(p)["meta"]["algorithm"]: read_json(p)["meta"]["selection"]
                  for p in inputs if Path(p).name == "best.json"}
    runs: dict[str, list[dict]] = {}
    for p in (Path(p) for p in inputs if Path(p).name == "metrics.json"):
        name = p.parent.name  # results/train/cifar/<name>/metrics.json
        m = layout.TRAIN_RUN.fullmatch(name)
        runs.setdefault(m["algo"] if m else name, []).append(read_json(p))
    paper = {r[0]: r for r in PAPER_TABLE1}
    rows = []
    for method in [*METHODS, "DARTS_V1", "DARTS_V2"]:
        if method not in runs:
            continue
        recs, searched = runs[method], costs.get(method, [])
        gpu_days = [c["gpu_days"] for c in searched if c.get("gpu_days") is not None]
        p = paper[OURS_TO_PAPER1[method]]
        rows.append({
            "method": LABELS[method], "source": "ours", **stat("test_error", [r["test_error"] for r in recs]),
            "chance_error": chance(recs), "params_M": round(float(np.mean([r["params_M"] for r in recs])), 3),
            "search_gpu_days": float(np.mean(gpu_days)) if gpu_days else np.nan,
            "search_wall_hours": float(np.mean([c["wall_s"] for c in searched])) / 3600 if searched else np.nan,
            "search_device": searched[0]["device"] if searched else "— (published cell)",
            "train_device": recs[0]["device"], "n_runs": len(recs),
            "paper_method": p[0], "paper_test_error": p[1], "paper_params_M": p[2],
            "paper_v100": p[3], "paper_search_gpu_days": p[4]})
    for p in PAPER_TABLE1:  # the rows we do not run, quoted and labelled as the paper's
        rows.append({"method": p[0], "source": "paper", "paper_method": p[0], "paper_test_error": p[1],
                     "paper_params_M": p[2], "paper_v100": p[3], "paper_search_gpu_days": p[4]})
    df = pd.DataFrame(rows)
    return write_table(df, csv, md, "Table 1: CIFAR-10, DARTS search space", spec, [
        protocol_note(spec, selections),
        "The published cells are retrained once under the same training protocol; search cost: the mean over "
        "the algorithm's searches, measured on the device named.",
        "paper_* columns and rows with source 'paper' quote the RARTS paper (Table 1).",
        "Search GPU-days are empty for searches that ran on a CPU; see search_wall_hours.", CHANCE_NOTE])


def table3(spec: dict, inputs, csv, md) -> pd.DataFrame:
    """spec: standin. inputs: ImageNet metrics.json files and the transferred cell's JSON (its
    `meta.selection` says how the RARTS cell was chosen)."""
    paper = {r[0]: r for r in PAPER_TABLE3}
    compare = {"RARTS": "RARTS", "DARTS_V2": "DARTS"}
    selection = next(read_json(p)["meta"]["selection"] for p in inputs if Path(p).name != "metrics.json")
    rows = []
    for p in (Path(p) for p in inputs if Path(p).name == "metrics.json"):
        rec, name = read_json(p), p.parent.name
        pr = paper[compare.get(name, "RARTS")]
        rows.append({"method": "RARTS" if name == "RARTS" else f"{name} (published cell)",
                     "source": "ours", "top1_error": round(rec["test_error"], 2),
                     "top5_error": round(rec["test_top5_error"], 2), "chance_error": chance([rec]),
                     "params_M": round(rec["params_M"], 3),
                     "device": rec["device"], "gpus": rec["world_size"],
                     "cell": selection if name == "RARTS" else name,
                     "paper_method": pr[0], "paper_top1_error": pr[1], "paper_top5_error": pr[2],
                     "paper_params_M": pr[3]})
    for p in PAPER_TABLE3:
        rows.append({"method": p[0], "source": "paper", "paper_method": p[0], "paper_top1_error": p[1],
                     "paper_top5_error": p[2], "paper_params_M": p[3], "paper_v100": p[4],
                     "paper_direct_search": p[5]})
    df = pd.DataFrame(rows)
    return write_table(df, csv, md, "Table 3: transfer to ImageNet (mobile setting)", spec, [
        f"RARTS cell: {selection}.",
        "paper_* columns and rows with source 'paper' quote the RARTS paper (Table 3).", CHANCE_NOTE])


def table2(spec: dict, inputs, csv, md) -> pd.DataFrame:
    """spec: standin, settings {name: {weight, batch_size, arch_lr, arch_weight_decay}}, model.
    inputs: results/ablation/latency/<setting>/seed<k>/latency.json."""
    by_setting: dict[str, list[dict]] = {}
    for p in map(Path, inputs):
        by_setting.setdefault(layout.fields(layout.LATENCY_ABLATION_RUN, p)["setting"], []).append(read_json(p))
    rows = []
    paper_rows = list(PAPER_TABLE2)  # the paper's row order first, other settings after, as configured
    for name in sorted(spec["order"], key=lambda n: paper_rows.index(n) if n in paper_rows else len(paper_rows)):
        s, recs = spec["settings"][name], by_setting.get(name, [])
        rows.append({"setting": name, "latency_weight": s["weight"], "batch_size": s["batch_size"],
                     "arch_lr": s["arch_lr"], "arch_weight_decay": s["arch_weight_decay"],
                     **stat("latency_ms", [r["latency_ms"] for r in recs]),
                     "params_M": round(float(np.mean([r["params_M"] for r in recs])), 3) if recs else np.nan,
                     "device": recs[0]["device"] if recs else "", "n_runs": len(recs),
                     "paper_latency_ms": PAPER_TABLE2.get(name, np.nan)})
    df = pd.DataFrame(rows)
    mdl = spec["model"]
    return write_table(df, csv, md, "Table 2: latency ablation of RARTS", spec, [
        f"Latency: forward time of the derived evaluation network (C={mdl['init_channels']}, "
        f"{mdl['layers']} cells, batch {mdl['batch_size']}, {mdl['resolution']}x{mdl['resolution']}) "
        f"on the device named, median of {mdl['repeats']} runs after {mdl['warmup']} warm-up; "
        "mean ± std over search seeds.",
        "Absolute milliseconds depend on the device: compare the trend across settings, not the "
        "numbers, with paper_latency_ms (the paper's GTX 1080 Ti with PyTorch/TensorRT).",
        "paper_latency_ms is the paper's value for the setting of that name; arch_lr shows the α "
        "learning rate this run used (the paper's: 3e-4, 3e-3 and 3e-5)."])


SPLIT_NOTES = {
    "nats-bench": "Search split: NATS-Bench's fixed one, as in the searches behind the paper's DARTS rows "
                  "(CIFAR-10: weights on one fixed half of the training set, α on the other; CIFAR-100: "
                  "weights on the whole training set, α on the fixed half `xvalid` of the test set; a "
                  "stand-in gets the same rule with a fixed draw).",
    "halves": "Search split: random halves of the training set (the DARTS protocol), not NATS-Bench's "
              "fixed split behind the paper's DARTS rows."}


def table4(spec: dict, inputs, csv, md) -> pd.DataFrame:
    """inputs: results/nats/<dataset>/scores.json (rows per found cell)."""
    scores = pd.DataFrame([r for p in inputs for r in read_json(p)])
    rows = []
    for (ds, algo), grp in scores.groupby(["dataset", "algorithm"], sort=False):
        paper = PAPER_TABLE4.get((ds, algo), (np.nan, np.nan))
        rows.append({"dataset": ds, "method": LABELS[algo], **stat("error", grp.test_error), "chance_error": round(grp.chance_error.iloc[0], 1), "skip_ratio_pct": 100 * grp.skip_ratio.mean(),
                     "n_runs": len(grp), "source": ",".join(sorted(set(grp.source))),
                     "cells": " ; ".join(grp.arch), "paper_error": paper[0], "paper_skip_ratio_pct": paper[1]})
    df = pd.DataFrame(rows)
    return write_table(df, csv, md, "Table 4: NATS-Bench topology space", spec, [
        "error: mean ± std over search seeds of each found cell's test error; source `nats-bench` is a "
        "benchmark lookup (hp='200', mean over the benchmark's seeds), `local-train` a brief local "
        "training of the cell (offline, no benchmark).", SPLIT_NOTES[spec["split"]],
        "paper_* columns quote the RARTS paper (Table 4; its DARTS rows come from the NATS-Bench paper; "
        "it reports no MiLeNAS row).", CHANCE_NOTE])


WIDTH_LABELS = {**LABELS, "baseline": "Baseline", "ns": "Network Slimming", "random": "Random pruning"}


def _width_runs(inputs) -> dict[tuple[str, str], list[dict]]:
    """results/width/<table>/<dataset>/<method>/seed<k>/metrics.json → {(dataset, method): [metrics]}"""
    runs: dict[tuple[str, str], list[dict]] = {}
    for p in map(Path, inputs):
        run = layout.fields(layout.WIDTH_RUN, p)
        runs.setdefault((run["dataset"], run["method"]), []).append(read_json(p))
    return runs


def _width_label(method: str) -> str:
    algo, _, pct = method.partition("-")
    return WIDTH_LABELS[algo] + (f" ({pct}% PRC)" if pct else "")


BEST_NOTE = ("test_error (the last epoch) is the headline. test_error_best_epoch_on_test is the best epoch's error, "
             "that epoch chosen on the test set itself (optimistic): Network Slimming reports it, so the paper's "
             "baseline and NS rows, quoted from it, are best-epoch numbers.")


def best_error(recs: list[dict]) -> dict:
    """The best-epoch test error of the runs behind a row (mean ± std)."""
    return stat("test_error_best_epoch_on_test", [r["best_test_error"] for r in recs])


def table5(spec: dict, inputs, csv, md) -> pd.DataFrame:
    """spec: standin, width (config width.table5), sparsity. inputs: every run's metrics.json."""
    rows = []
    for (ds, method), recs in _width_runs(inputs).items():
        rows.append({"dataset": ds, "method": _width_label(method), "run": method, "source": "ours",
                     **stat("test_error", [r["test_error"] for r in recs]),
                     **best_error(recs), "chance_error": chance(recs), "params": int(np.mean([r["params"] for r in recs])),
                     "params_M": round(float(np.mean([r["params_M"] for r in recs])), 3),
                     "flops": int(np.mean([r["flops"] for r in recs])),
                     "prc_pct": 100 * float(np.mean([r["prc"] for r in recs])),
                     "n_runs": len(recs), "device": recs[0]["device"],
                     "paper_test_error": PAPER_TABLE5.get((ds, method), np.nan)})
    for ds in spec["width"]["datasets"]:
        rows.append({"dataset": ds, "method": "TAS (quoted from the paper)", "run": "", "source": "paper",
                     "paper_test_error": PAPER_TAS[ds]})
    df = pd.DataFrame(rows)
    order = {ds: i for i, ds in enumerate(spec["width"]["datasets"])}
    df = df.sort_values(["dataset", "source"], key=lambda c: c.map(order) if c.name == "dataset" else c,
                        kind="stable").reset_index(drop=True)
    w = spec["width"]
    return write_table(df, csv, md, f"Table 5: channel pruning of ResNet-{w['net']['kw']['depth']} on CIFAR",
                spec, [
        "test_error: of the pruned network after fine-tuning (baseline: unpruned); params and FLOPs "
        "(a multiply-add counts 2) measured on the rebuilt thin network; prc_pct: channels removed "
        "over all prunable channels.",
        f"Network Slimming: sparsity s = {spec['sparsity']} on every BN scale, global threshold on "
        "|γ_BN|. RARTS: channel scores searched with data and network splitting (λ = "
        f"{w['search']['rarts']['lam']}, β = {w['search']['rarts']['beta']}), global threshold on |score|.",
        "paper_test_error and the TAS rows quote the RARTS paper (Table 5; its baseline, NS and TAS "
        "rows come from those papers; TAS uses knowledge distillation and is not run here).", BEST_NOTE,
        CHANCE_NOTE])


def table6(spec: dict, inputs, csv, md) -> pd.DataFrame:
    """spec: standin, width (config width.table6). inputs: every run's metrics.json."""
    runs = {method: recs for (_, method), recs in _width_runs(inputs).items()}
    rows = []
    for method in ["baseline", *METHODS]:
        if method not in runs:
            continue
        recs = runs[method]
        paper = PAPER_TABLE6.get(method, ("", ""))
        prc = ({"prc_pct": "–", "prc_pct_mean": np.nan, "prc_pct_std": np.nan} if method == "baseline"
               else stat("prc_pct", [100 * r["prc_mean_over_pruned_layers"] for r in recs], 1))
        rows.append({"method": WIDTH_LABELS[method], "run": method, **stat("test_error", [r["test_error"] for r in recs]),
                     **best_error(recs), "chance_error": chance(recs), **prc,
                     "params_M": round(float(np.mean([r["params_M"] for r in recs])), 3),
                     "flops": int(np.mean([r["flops"] for r in recs])), "n_runs": len(recs),
                     "device": recs[0]["device"], "paper_test_error": paper[0], "paper_prc_pct": paper[1]})
    df = pd.DataFrame(rows)
    w = spec["width"]
    seeds = f"Mean ± std over seeds {w['seeds']}." if len(w["seeds"]) > 1 else f"One seed ({w['seeds'][0]})."
    return write_table(df, csv, md, f"Table 6: MobileNetV2 (width ×{w['net']['kw']['width_mult']}) on ImageNet-R",
                spec, [
        f"{seeds} Channel scores on the expansion channels, ℓ1 penalty "
        f"{w['search']['l1']} on the scores, no fixed ratio: channels with |score| ≤ {w['threshold']} "
        "are pruned, then the thin network is fine-tuned.",
        "prc_pct: channel pruning ratio averaged over the pruned layers. Random pruning removes random "
        f"channels of the trained baseline at {WIDTH_LABELS[w['random_like']]}'s per-layer ratio (same seed).",
        "paper_* columns quote the RARTS paper (Table 6).", BEST_NOTE, CHANCE_NOTE])


TABLES = {"table1": table1, "table2": table2, "table3": table3, "table4": table4, "table5": table5,
          "table6": table6}
