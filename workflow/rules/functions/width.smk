# The functions of workflow/rules/width.smk (Snakemake's lint: a file of rules holds no functions).


def width_dir(table, dataset, kind, seed):
    return layout.WIDTH_RUN.format(table=table, dataset=dataset, method=kind, seed=seed)


def width_datasets(table):
    return W5["datasets"] if table == "table5" else ["imagenet_r"]


def width_job_spec(table, dataset, hp, seed):
    return job_spec(dataset, {**hp, "seed": int(seed)}, num_classes=num_classes(dataset), net=WIDTH[table]["net"])


def width_search_spec(table, dataset, seed):
    prune = (
        {"rule": "ratio", "value": W5["ratios"][0]}
        if table == "table5"
        else {"rule": "threshold", "value": W6["threshold"]}
    )
    return width_job_spec(table, dataset, {**WIDTH[table]["search"], "net": WIDTH[table]["net"], "prune": prune}, seed)


def width_train_hp(table, kind):
    """baseline / sparse: the training protocol; anything else is a fine-tuning."""
    w = WIDTH[table]
    hp = {**w["train"], "sparsity": W5["sparsity"] if kind == "sparse" else 0.0}
    return hp if kind in ("baseline", "sparse") else {**hp, **w["finetune"]}


def width_images(dataset):
    """Training and test images of a width-search dataset (ImageNet-R: its classes' real counts)."""
    if dataset == "imagenet_r":
        spec = {"dataset": dataset, "num_classes": num_classes(dataset)}
        return costs.train_images(spec) + costs.eval_images(spec)
    return sum(names.IMAGES[dataset])


def width_job(dataset, net, hp, minutes):
    """The resources of a width-search rule's jobs (each argument a function of the wildcards)."""

    def mem(w):
        return cluster.memory_mb(net(w), on_gpu(), images=width_images(dataset(w)), resolution=hp(w)["resolution"])

    return job(gpus=gpu(), mem_mb=mem, minutes=minutes)


def width_train_minutes(table, dataset, kind):
    return train_minutes(WIDTH[table]["net"]["name"], width_job_spec(table, dataset, width_train_hp(table, kind), 0))


def width_search_minutes(table, dataset, algo):
    return search_minutes("width", algo, width_search_spec(table, dataset, 0))


def width_all_minutes(minutes, kinds=None):
    """`minutes(table, dataset, kind)` of every table, dataset and kind (default: the searched algorithms)."""
    return [
        minutes(t, ds, k) for t in WIDTH for ds in width_datasets(t) for k in kinds or WIDTH[t]["search"]["algorithms"]
    ]


def width_methods(table):
    """The pruned-and-fine-tuned runs of each table (rarts.pipeline.pruned_runs names them)."""
    ratios = W5["ratios"] if table == "table5" else None
    return pruned_runs.runs(
        ratios, WIDTH[table]["search"]["algorithms"] if table == "table5" else W6["search"]["algorithms"]
    )


def prune_plan(w):
    """Where a fine-tuned run's network comes from, and how it is pruned (rarts.pipeline.pruned_runs.plan)."""
    plan = pruned_runs.plan(w.method, w.table == "table5", W6["threshold"], W6["random_like"])
    d = lambda run: width_dir(w.table, w.dataset, run, w.seed)  # noqa: E731
    return {
        "source": f"{d(plan.source)}/{plan.file}",
        "rule": plan.rule,
        "value": plan.value,
        "like": f"{d(plan.like)}/genotype.json" if plan.like else [],
    }


def width_table_inputs(table):
    kinds = ["baseline"] + width_methods(table)
    return [
        f"{width_dir(table, ds, k, s)}/metrics.json"
        for ds in width_datasets(table)
        for k in kinds
        for s in WIDTH[table]["seeds"]
    ]
