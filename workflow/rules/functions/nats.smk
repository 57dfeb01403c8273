# The functions of workflow/rules/nats.smk (Snakemake's lint: a file of rules holds no functions).


def nats_run_dirs(dataset):
    return [
        f"results/search/nats/{dataset}/{a}/seed{s}" for a in NATS_SEARCH["algorithms"] for s in NATS_SEARCH["seeds"]
    ]


def nats_split(dataset):
    name = "nats_bench_split" if NATS_SEARCH["split"] == "nats-bench" else "search_split"
    return f"results/data/{dataset}/{name}.json"


def nats_search_spec(dataset):
    return job_spec(dataset, NATS_SEARCH, num_classes=num_classes(dataset))


def nats_search_minutes(dataset, algo):
    return search_minutes("nats", algo, nats_search_spec(dataset))


def nats_memory(dataset):  # CIFAR-100's D_v is half of its test set
    return search_memory("nats-search", nats_search_spec(dataset), sum(names.IMAGES[dataset]))


def nats_score_spec(dataset):
    return {
        **nats_search_spec(dataset),
        "hp": {
            **NATS["local_train"],
            "init_channels": NATS_SEARCH["init_channels"],
            "cells_per_stage": NATS_SEARCH["cells_per_stage"],
        },
    }


def nats_score_minutes(dataset):
    """A lookup costs nothing; offline, every found cell is trained briefly."""
    if NATS["benchmark"]:
        return 0.0
    return costs.local_train_cost(nats_score_spec(dataset), len(nats_run_dirs(dataset)), STEP_TABLE)[1] / 60
