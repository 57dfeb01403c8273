"""The paper's tables, assembled from our runs. The paper's own numbers live only in columns
named `paper_*` (and in rows whose `source` is "paper"); ours are never filled from them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from rarts.io import read_json, write_csv, write_text

STANDIN_NOTE = ("STAND-IN DATA: these numbers come from the offline profile (scikit-learn digits "
                "written in the real dataset formats, tiny networks, few steps). They exercise the "
                "pipeline; they are not a reproduction of the paper's numbers.")

# Table 1 of the paper (CIFAR-10): test error (%), params (M), V100?, search GPU-days.
PAPER_TABLE1 = [
    ("Random baseline", "3.29 ± 0.15", 3.2, "no", 4.0),
    ("AmoebaNet-B", "2.55 ± 0.05", 2.8, "no", 3150.0),
    ("SNAS-Mi", "2.98", 2.9, "no", 1.5),
    ("SNAS-Mo", "2.85 ± 0.02", 2.8, "no", 1.5),
    ("DARTS-1", "3.00 ± 0.14", 3.3, "no", 1.5),
    ("DARTS-2", "2.76 ± 0.09", 3.3, "no", 4.0),
    ("GDAS", "2.82", 2.5, "yes", 0.2),
    ("ProxylessNAS", "2.08", 5.7, "yes", 4.0),
    ("FairDARTS (V100)", "2.54 ± 0.05", 3.3, "yes", 0.4),
    ("FairDARTS", "2.94 ± 0.05", 3.2, "no", 0.3),
    ("P-DARTS", "2.50", 3.4, "yes", 0.3),
    ("PC-DARTS (V100)", "2.57 ± 0.07", 3.6, "yes", 0.1),
    ("PC-DARTS", "2.71", 2.9, "no", 0.1),
    ("MiLeNAS", "2.80 ± 0.04", 2.9, "yes", 0.3),
    ("MiLeNAS (3.9 M)", "2.51 ± 0.11", 3.9, "yes", 0.3),
    ("RARTS", "2.65 ± 0.07", 3.2, "no", 1.1),
]
# Which paper row each of our methods is compared with.
OURS_TO_PAPER1 = {"random": "Random baseline", "darts1": "DARTS-1", "darts2": "DARTS-2",
                  "milenas": "MiLeNAS", "rarts": "RARTS", "DARTS_V1": "DARTS-1", "DARTS_V2": "DARTS-2"}
LABELS = {"random": "Random baseline", "darts1": "DARTS-1", "darts2": "DARTS-2",
          "milenas": "MiLeNAS", "rarts": "RARTS",
          "DARTS_V1": "DARTS-1 (published DARTS_V1 cell, retrained)",
          "DARTS_V2": "DARTS-2 (published DARTS_V2 cell, retrained)"}

# Table 3 of the paper (ImageNet): top-1, top-5 error (%), params (M), V100?, direct search?
PAPER_TABLE3 = [
    ("SNAS", 27.3, 9.2, 4.3, "no", "no"), ("DARTS", 26.7, 8.7, 4.7, "no", "no"),
    ("GDAS", 26.0, 8.5, 5.3, "yes", "no"), ("ProxylessNAS", 24.9, 7.5, 7.1, "yes", "yes"),
    ("FairDARTS", 24.9, 7.5, 4.8, "yes", "no"), ("FairDARTS (direct)", 24.4, 7.4, 4.3, "yes", "yes"),
    ("P-DARTS", 24.4, 7.4, 4.9, "yes", "no"), ("PC-DARTS", 25.1, 7.8, 5.3, "yes", "no"),
    ("PC-DARTS (direct)", 24.2, 7.3, 5.3, "yes", "yes"), ("MiLeNAS", 25.4, 7.9, 4.9, "yes", "no"),
    ("RARTS", 25.9, 8.3, 4.7, "no", "no"),
]


def mean_std(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan")


def fmt(mean: float, std: float, digits: int = 2) -> str:
    if np.isnan(mean):
        return ""
    return f"{mean:.{digits}f}" if np.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def write_table(df: pd.DataFrame, csv, md, title: str, standin: bool, notes: list[str]) -> None:
    write_csv(csv, df)
    lines = [f"# {title}", ""]
    if standin:
        lines += [f"**{STANDIN_NOTE}**", ""]
    shown = df.astype(object).where(df.notna(), "")
    shown = shown.map(lambda v: v.replace("|", "\\|") if isinstance(v, str) else v)  # arch strings
    lines += [shown.to_markdown(index=False), ""] + [f"- {n}" for n in notes]
    write_text(md, "\n".join(lines) + "\n")


def _run_key(path: Path) -> str:
    return path.parent.name  # results/train/cifar/<name>/metrics.json


def table1(spec: dict, inputs, csv, md) -> pd.DataFrame:
    """spec: standin, search_root. inputs: CIFAR metrics.json of every retraining."""
    runs: dict[str, list[dict]] = {}
    for p in map(Path, inputs):
        name = _run_key(p)
        m = re.fullmatch(r"(?P<algo>\w+?)-seed(?P<seed>\d+)", name)
        method = m["algo"] if m else name
        rec = read_json(p)
        if m:  # searched genotype: attach its search cost
            cost = read_json(Path(spec["search_root"]) / m["algo"] / f"seed{m['seed']}" / "cost.json")
            rec = {**rec, "search_cost": cost}
        runs.setdefault(method, []).append(rec)
    paper = {r[0]: r for r in PAPER_TABLE1}
    rows = []
    for method in ["random", "darts1", "darts2", "milenas", "rarts", "DARTS_V1", "DARTS_V2"]:
        if method not in runs:
            continue
        recs = runs[method]
        err_m, err_s = mean_std([r["test_error"] for r in recs])
        costs = [r["search_cost"] for r in recs if "search_cost" in r]
        gpu_days = [c["gpu_days"] for c in costs if c.get("gpu_days") is not None]
        p = paper[OURS_TO_PAPER1[method]]
        rows.append({
            "method": LABELS[method], "source": "ours", "test_error": fmt(err_m, err_s),
            "test_error_mean": err_m, "test_error_std": err_s,
            "params_M": round(float(np.mean([r["params_M"] for r in recs])), 3),
            "search_gpu_days": float(np.mean(gpu_days)) if gpu_days else np.nan,
            "search_wall_hours": float(np.mean([c["wall_s"] for c in costs])) / 3600 if costs else np.nan,
            "search_device": costs[0]["device"] if costs else "— (published cell)",
            "train_device": recs[0]["device"], "n_runs": len(recs),
            "paper_method": p[0], "paper_test_error": p[1], "paper_params_M": p[2],
            "paper_v100": p[3], "paper_search_gpu_days": p[4]})
    for p in PAPER_TABLE1:  # the rows we do not run, quoted and labelled as the paper's
        rows.append({"method": p[0], "source": "paper", "paper_method": p[0], "paper_test_error": p[1],
                     "paper_params_M": p[2], "paper_v100": p[3], "paper_search_gpu_days": p[4]})
    df = pd.DataFrame(rows)
    write_table(df, csv, md, "Table 1: CIFAR-10, DARTS search space", spec["standin"], [
        "Our rows: mean ± sample std of the test error over search seeds (each genotype retrained "
        "once under one protocol); search cost measured on the device named.",
        "paper_* columns and rows with source 'paper' quote the RARTS paper (Table 1).",
        "Search GPU-days are empty for searches that ran on a CPU; see search_wall_hours."])
    return df


def table3(spec: dict, inputs, csv, md) -> pd.DataFrame:
    """spec: standin, selection (how the RARTS cell was chosen). inputs: ImageNet metrics.json."""
    paper = {r[0]: r for r in PAPER_TABLE3}
    compare = {"RARTS": "RARTS", "DARTS_V2": "DARTS"}
    rows = []
    for p in map(Path, inputs):
        rec, name = read_json(p), _run_key(p)
        pr = paper[compare.get(name, "RARTS")]
        rows.append({"method": "RARTS" if name == "RARTS" else f"{name} (published cell)",
                     "source": "ours", "top1_error": round(rec["test_error"], 2),
                     "top5_error": round(rec["test_top5_error"], 2), "params_M": round(rec["params_M"], 3),
                     "device": rec["device"], "gpus": rec["world_size"],
                     "cell": spec["selection"] if name == "RARTS" else name,
                     "paper_method": pr[0], "paper_top1_error": pr[1], "paper_top5_error": pr[2],
                     "paper_params_M": pr[3]})
    for p in PAPER_TABLE3:
        rows.append({"method": p[0], "source": "paper", "paper_method": p[0], "paper_top1_error": p[1],
                     "paper_top5_error": p[2], "paper_params_M": p[3], "paper_v100": p[4],
                     "paper_direct_search": p[5]})
    df = pd.DataFrame(rows)
    write_table(df, csv, md, "Table 3: transfer to ImageNet (mobile setting)", spec["standin"], [
        f"RARTS cell: {spec['selection']}.",
        "paper_* columns and rows with source 'paper' quote the RARTS paper (Table 3)."])
    return df


TABLES = {"table1": table1, "table3": table3}


# Table 2 of the paper: latency (ms) of the found model per search setting.
PAPER_TABLE2 = {  # (latency weight, batch, α lr, α wd) → ms
    (2e-3, 64, 3e-4, 1e-3): 21.7, (2e-2, 64, 3e-4, 1e-3): 12.4, (2e-4, 64, 3e-4, 1e-3): 23.4,
    (2e-3, 64, 3e-3, 1e-3): 21.0, (2e-3, 64, 3e-5, 1e-3): 23.1, (2e-3, 64, 3e-4, 1e-4): 21.3,
    (2e-3, 64, 3e-4, 1e-2): 22.9, (2e-3, 32, 3e-4, 1e-3): 20.1, (2e-3, 16, 3e-4, 1e-3): 16.5,
}


def table2(spec: dict, inputs, csv, md) -> pd.DataFrame:
    """spec: standin, settings {name: {weight, batch_size, arch_lr, arch_weight_decay}}, model.
    inputs: results/ablation/latency/<setting>/seed<k>/latency.json."""
    by_setting: dict[str, list[dict]] = {}
    for p in map(Path, inputs):
        by_setting.setdefault(p.parent.parent.name, []).append(read_json(p))
    rows = []
    for name in spec["order"]:  # the config's (the paper's) order; JSON specs sort their keys
        s, recs = spec["settings"][name], by_setting.get(name, [])
        key = (s["weight"], s["batch_size"], s["arch_lr"], s["arch_weight_decay"])
        m, sd = mean_std([r["latency_ms"] for r in recs]) if recs else (np.nan, np.nan)
        rows.append({"setting": name, "latency_weight": s["weight"], "batch_size": s["batch_size"],
                     "arch_lr": s["arch_lr"], "arch_weight_decay": s["arch_weight_decay"],
                     "latency_ms": fmt(m, sd), "latency_ms_mean": m, "latency_ms_std": sd,
                     "params_M": round(float(np.mean([r["params_M"] for r in recs])), 3) if recs else np.nan,
                     "device": recs[0]["device"] if recs else "", "n_runs": len(recs),
                     "paper_latency_ms": PAPER_TABLE2.get(key, np.nan)})
    df = pd.DataFrame(rows)
    mdl = spec["model"]
    write_table(df, csv, md, "Table 2: latency ablation of RARTS", spec["standin"], [
        f"Latency: forward time of the derived evaluation network (C={mdl['init_channels']}, "
        f"{mdl['layers']} cells, batch {mdl['batch_size']}, {mdl['resolution']}x{mdl['resolution']}) "
        f"on the device named, median of {mdl['repeats']} runs after {mdl['warmup']} warm-up; "
        "mean ± std over search seeds.",
        "Absolute milliseconds depend on the device: compare the trend across settings, not the "
        "numbers, with paper_latency_ms (the paper's GTX 1080 Ti with PyTorch/TensorRT)."])
    return df


TABLES["table2"] = table2


# Table 4 of the paper (NATS-Bench topology space): error (%), skip ratio (%).
PAPER_TABLE4 = {("cifar10", "darts1"): (40.16, 100.0), ("cifar10", "darts2"): (34.62, 100.0),
                ("cifar10", "rarts"): (11.48, 0.0), ("cifar100", "darts1"): (38.74, 38.9),
                ("cifar100", "darts2"): (39.51, 38.9), ("cifar100", "rarts"): (32.37, 0.0)}


def table4(spec: dict, inputs, csv, md) -> pd.DataFrame:
    """inputs: results/nats/<dataset>/scores.json (rows per found cell)."""
    scores = pd.DataFrame([r for p in inputs for r in read_json(p)])
    rows = []
    for (ds, algo), grp in scores.groupby(["dataset", "algorithm"], sort=False):
        m, sd = mean_std(grp.test_error)
        paper = PAPER_TABLE4.get((ds, algo), (np.nan, np.nan))
        rows.append({"dataset": ds, "method": LABELS[algo], "error": fmt(m, sd), "error_mean": m,
                     "error_std": sd, "skip_ratio_pct": 100 * grp.skip_ratio.mean(),
                     "n_runs": len(grp), "source": ",".join(sorted(set(grp.source))),
                     "cells": " ; ".join(grp.arch), "paper_error": paper[0], "paper_skip_ratio_pct": paper[1]})
    df = pd.DataFrame(rows)
    write_table(df, csv, md, "Table 4: NATS-Bench topology space", spec["standin"], [
        "error: mean ± std over search seeds of each found cell's test error; source `nats-bench` is a "
        "benchmark lookup (hp='200', mean over the benchmark's seeds), `local-train` a brief local "
        "training of the cell (offline, no benchmark).",
        "paper_* columns quote the RARTS paper (Table 4; its DARTS rows come from the NATS-Bench paper; "
        "it reports no MiLeNAS row)."])
    return df


TABLES["table4"] = table4


# Tables 5 and 6 of the paper: test error (%) of the pruned networks (Table 6: mean ± std, PRC %).
PAPER_TABLE5 = {("cifar10", "baseline"): 5.42, ("cifar10", "ns-40"): 5.08, ("cifar10", "rarts-40"): 4.58,
                ("cifar10", "ns-60"): 5.27, ("cifar10", "rarts-60"): 4.90,
                ("cifar100", "baseline"): 23.37, ("cifar100", "ns-40"): 22.87, ("cifar100", "rarts-40"): 22.64,
                ("cifar100", "ns-60"): 23.91, ("cifar100", "rarts-60"): 23.26}
PAPER_TAS = {"cifar10": 6.00, "cifar100": 22.24}  # TAS (with knowledge distillation): quoted only
PAPER_TABLE6 = {"baseline": ("12.3 ± 1.4", ""), "random": ("12.0 ± 1.1", "71.2 ± 1.9"),
                "darts1": ("10.1 ± 2.0", "69.0 ± 0.9"), "darts2": ("9.8 ± 1.7", "72.6 ± 2.0"),
                "rarts": ("8.2 ± 1.9", "71.2 ± 1.9")}
WIDTH_LABELS = {**LABELS, "baseline": "Baseline", "ns": "Network Slimming", "random": "Random pruning"}


def _width_runs(inputs) -> dict[tuple[str, str], list[dict]]:
    """results/width/<table>/<dataset>/<method>/seed<k>/metrics.json → {(dataset, method): [metrics]}"""
    runs: dict[tuple[str, str], list[dict]] = {}
    for p in map(Path, inputs):
        runs.setdefault((p.parent.parent.parent.name, p.parent.parent.name), []).append(read_json(p))
    return runs


def _width_label(method: str) -> str:
    algo, _, pct = method.partition("-")
    return WIDTH_LABELS[algo] + (f" ({pct}% PRC)" if pct else "")


def table5(spec: dict, inputs, csv, md) -> pd.DataFrame:
    """spec: standin, width (config width.table5), sparsity. inputs: every run's metrics.json."""
    rows = []
    for (ds, method), recs in _width_runs(inputs).items():
        err_m, err_s = mean_std([r["test_error"] for r in recs])
        rows.append({"dataset": ds, "method": _width_label(method), "run": method, "source": "ours",
                     "test_error": fmt(err_m, err_s), "test_error_mean": err_m, "test_error_std": err_s,
                     "params": int(np.mean([r["params"] for r in recs])),
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
    write_table(df, csv, md, f"Table 5: channel pruning of ResNet-{w['net']['kw']['depth']} on CIFAR",
                spec["standin"], [
        "test_error: of the pruned network after fine-tuning (baseline: unpruned); params and FLOPs "
        "(a multiply-add counts 2) measured on the rebuilt thin network; prc_pct: channels removed "
        "over all prunable channels.",
        f"Network Slimming: sparsity s = {spec['sparsity']} on every BN scale, global threshold on "
        "|γ_BN|. RARTS: channel scores searched with data and network splitting (λ = "
        f"{w['search']['rarts']['lam']}, β = {w['search']['rarts']['beta']}), global threshold on |score|.",
        "paper_test_error and the TAS rows quote the RARTS paper (Table 5; its baseline, NS and TAS "
        "rows come from those papers; TAS uses knowledge distillation and is not run here)."])
    return df


def table6(spec: dict, inputs, csv, md) -> pd.DataFrame:
    """spec: standin, width (config width.table6). inputs: every run's metrics.json."""
    runs = {method: recs for (_, method), recs in _width_runs(inputs).items()}
    rows = []
    for method in ["baseline", "random", "darts1", "darts2", "milenas", "rarts"]:
        if method not in runs:
            continue
        recs = runs[method]
        err_m, err_s = mean_std([r["test_error"] for r in recs])
        prc_m, prc_s = mean_std([100 * r["prc_mean_over_pruned_layers"] for r in recs])
        paper = PAPER_TABLE6.get(method, ("", ""))
        rows.append({"method": WIDTH_LABELS[method], "run": method, "test_error": fmt(err_m, err_s),
                     "test_error_mean": err_m, "test_error_std": err_s,
                     "prc_pct": "–" if method == "baseline" else fmt(prc_m, prc_s, 1),
                     "prc_pct_mean": np.nan if method == "baseline" else prc_m,
                     "prc_pct_std": np.nan if method == "baseline" else prc_s,
                     "params_M": round(float(np.mean([r["params_M"] for r in recs])), 3),
                     "flops": int(np.mean([r["flops"] for r in recs])), "n_runs": len(recs),
                     "device": recs[0]["device"], "paper_test_error": paper[0], "paper_prc_pct": paper[1]})
    df = pd.DataFrame(rows)
    w = spec["width"]
    write_table(df, csv, md, f"Table 6: MobileNetV2 (width ×{w['net']['kw']['width_mult']}) on ImageNet-R",
                spec["standin"], [
        f"Mean ± std over seeds {w['seeds']}. Channel scores on the expansion channels, ℓ1 penalty "
        f"{w['search']['l1']} on the scores, no fixed ratio: channels with |score| ≤ {w['threshold']} "
        "are pruned, then the thin network is fine-tuned.",
        "prc_pct: channel pruning ratio averaged over the pruned layers. Random pruning removes random "
        f"channels of the trained baseline at {WIDTH_LABELS[w['random_like']]}'s per-layer ratio (same seed).",
        "paper_* columns quote the RARTS paper (Table 6)."])
    return df


TABLES["table5"] = table5
TABLES["table6"] = table6
