# The functions of workflow/rules/train.smk (Snakemake's lint: a file of rules holds no functions).


def best_protocol(algo):
    """Whether `algo`'s cells go through the DARTS protocol (the sampled random cells have no search
    accuracy to choose by: each is retrained once)."""
    return PROTOCOL == "best" and algo != names.RANDOM


def cifar_train_names():
    """`{algo}-seed{s}`: search s's cell, retrained once; `{algo}-best-train{k}`: the best of the
    algorithm's searches, retrained with training seed k; the published cells."""
    runs = []
    for algo in DARTS["algorithms"]:
        if best_protocol(algo):
            runs += [layout.train_run(algo, best_train=k) for k in TRAIN["cifar"]["retrain_seeds"]]
        else:
            runs += [layout.train_run(algo, seed=s) for s in DARTS["seeds"]]
    return runs + PUBLISHED


def genotype_of(name):
    """A published name, or the genotype file behind `{algo}-seed{seed}` / `{algo}-best-train{k}`."""
    if name in PUBLISHED or name in TRAIN["imagenet"]["compare"]:
        return []
    if name == "RARTS":
        return "results/transfer/rarts_cell.json"
    run = layout.TRAIN_RUN.fullmatch(name)
    if run["train"] is not None:
        return f"results/search/darts/{run['algo']}/best.json"
    return f"results/search/darts/{run['algo']}/seed{run['seed']}/genotype.json"


def train_spec(net):
    return job_spec(DARTS["dataset"] if net == "cifar" else "imagenet", TRAIN[net])


def cifar_train_spec(name):
    """A retraining's settings: the protocol's training seed for the DARTS protocol's runs."""
    spec = train_spec("cifar")
    if "-best-train" in name:
        spec["hp"] = {**spec["hp"], "seed": int(name.rsplit("-best-train", 1)[1])}
    return spec


def train_job(net):
    """A training's resources: `train.<net>.gpus` GPUs (one torchrun rank each; gloo ranks on a CPU)."""
    hp, ranks = TRAIN[net], TRAIN[net]["gpus"]
    images = 0 if net == "imagenet" else sum(names.IMAGES[DARTS["dataset"]])  # ImageNet streams from disk
    workers = 2 * hp.get("workers", 0)  # a rank's training and evaluation loaders each keep their workers
    mem = cluster.memory_mb(net, on_gpu(ranks), ranks, images, hp["resolution"], workers)
    return job(gpus=gpu(ranks), mem_mb=mem, minutes=train_minutes(net, train_spec(net), ranks))


def rarts_searches():
    return expand(rules.search_darts.output.genotype, algo="rarts", seed=DARTS["seeds"])
