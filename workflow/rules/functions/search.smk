# The functions of workflow/rules/search.smk (Snakemake's lint: a file of rules holds no functions).


def darts_search_spec(**overrides):
    """The search settings (with `overrides`, e.g. an ablation setting) and where Lat lives."""
    hp = {**DARTS, **overrides}
    hp["latency"] = {**DARTS["latency"], **overrides.get("latency", {}), "table": LATENCY_TABLE}
    return job_spec(DARTS["dataset"], hp, num_classes=num_classes(DARTS["dataset"]))


def uses_latency(algo):
    return DARTS["latency"]["enabled"] and algo in DARTS["latency"]["algorithms"]


def darts_search_minutes(algo):
    return search_minutes("darts", algo, darts_search_spec())


def search_gpus(wildcards):
    """A search's GPUs: one, none for the sampled `random` baseline (searches without an `algo`
    wildcard, the ablation's, are RARTS)."""
    return 0 if getattr(wildcards, "algo", None) == names.RANDOM else gpu()


def darts_run_dirs(algorithms=None):
    algos = algorithms or DARTS["algorithms"]
    return [f"results/search/darts/{a}/seed{s}" for a in algos for s in DARTS["seeds"]]
