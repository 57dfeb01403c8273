"""The numbers the RARTS paper reports (Xue, Qi, Xin, IEEE Access 2022, Tables 1-6), as data.
Only `rarts.report.tables` reads them, into columns named `paper_*` and rows whose source is "paper"."""

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


# Table 3 of the paper (ImageNet): top-1, top-5 error (%), params (M), V100?, direct search?
PAPER_TABLE3 = [
    ("SNAS", 27.3, 9.2, 4.3, "no", "no"), ("DARTS", 26.7, 8.7, 4.7, "no", "no"),
    ("GDAS", 26.0, 8.5, 5.3, "yes", "no"), ("ProxylessNAS", 24.9, 7.5, 7.1, "yes", "yes"),
    ("FairDARTS", 24.9, 7.5, 4.8, "yes", "no"), ("FairDARTS (direct)", 24.4, 7.4, 4.3, "yes", "yes"),
    ("P-DARTS", 24.4, 7.4, 4.9, "yes", "no"), ("PC-DARTS", 25.1, 7.8, 5.3, "yes", "no"),
    ("PC-DARTS (direct)", 24.2, 7.3, 5.3, "yes", "yes"), ("MiLeNAS", 25.4, 7.9, 4.9, "yes", "no"),
    ("RARTS", 25.9, 8.3, 4.7, "no", "no"),
]


# Table 2 of the paper: latency (ms) of the found model per search setting.
PAPER_TABLE2 = {  # setting (the config's names: one change at a time from the base) → ms
    "base": 21.7, "weight_2e-2": 12.4, "weight_2e-4": 23.4, "alpha_lr_3e-3": 21.0, "alpha_lr_3e-5": 23.1,
    "alpha_wd_1e-4": 21.3, "alpha_wd_1e-2": 22.9, "batch_32": 20.1, "batch_16": 16.5,
}


# Table 4 of the paper (NATS-Bench topology space): error (%), skip ratio (%).
PAPER_TABLE4 = {("cifar10", "darts1"): (40.16, 100.0), ("cifar10", "darts2"): (34.62, 100.0),
                ("cifar10", "rarts"): (11.48, 0.0), ("cifar100", "darts1"): (38.74, 38.9),
                ("cifar100", "darts2"): (39.51, 38.9), ("cifar100", "rarts"): (32.37, 0.0)}


# Tables 5 and 6 of the paper: test error (%) of the pruned networks (Table 6: mean ± std, PRC %).
PAPER_TABLE5 = {("cifar10", "baseline"): 5.42, ("cifar10", "ns-40"): 5.08, ("cifar10", "rarts-40"): 4.58,
                ("cifar10", "ns-60"): 5.27, ("cifar10", "rarts-60"): 4.90,
                ("cifar100", "baseline"): 23.37, ("cifar100", "ns-40"): 22.87, ("cifar100", "rarts-40"): 22.64,
                ("cifar100", "ns-60"): 23.91, ("cifar100", "rarts-60"): 23.26}
PAPER_TAS = {"cifar10": 6.00, "cifar100": 22.24}  # TAS (with knowledge distillation): quoted only
PAPER_TABLE6 = {"baseline": ("12.3 ± 1.4", ""), "random": ("12.0 ± 1.1", "71.2 ± 1.9"),
                "darts1": ("10.1 ± 2.0", "69.0 ± 0.9"), "darts2": ("9.8 ± 1.7", "72.6 ± 2.0"),
                "rarts": ("8.2 ± 1.9", "71.2 ± 1.9")}


# Runs the paper says a value averages (what it states: its Table 1 RARTS row and Table 6 are means of 5
# runs, Table 4 of 3); a table's number holds for all its rows, a dict names the rows.
PAPER_RUNS = {"table1": {"RARTS": 5}, "table4": 3, "table6": 5}


def quoted(value) -> tuple[float, float]:
    """A value as the paper quotes it, a number or "mean ± std", as (mean, std); NaN where there is none."""
    import math

    if isinstance(value, str):
        if not value.strip() or value.strip() == "–":
            return math.nan, math.nan
        parts = [float(part) for part in value.split("±")]
        return parts[0], parts[1] if len(parts) > 1 else math.nan
    if value is None or value != value:
        return math.nan, math.nan
    return float(value), math.nan
