# Paper §3, Tables 1 and 3: retrain every searched genotype (and the published DARTS cells) on
# CIFAR under one protocol, transfer the chosen RARTS cell and DARTS_V2 to ImageNet. A training
# that asks for several GPUs (its `gpu` resource) runs one torchrun process per GPU.
TRAIN = config["train"]
PUBLISHED = TRAIN["cifar"]["published"]


def cifar_train_names():
    searched = [f"{a}-seed{s}" for a in DARTS["algorithms"] for s in DARTS["seeds"]]
    return searched + PUBLISHED


def genotype_of(name):
    """A published name, or the genotype file of the search behind `{algo}-seed{seed}`."""
    if name in PUBLISHED or name in TRAIN["imagenet"]["compare"]:
        return []
    if name == "RARTS":
        return "results/transfer/rarts_cell.json"
    algo, seed = name.rsplit("-seed", 1)
    return f"results/search/darts/{algo}/seed{seed}/genotype.json"


def train_spec(net):
    return job_spec(DARTS["dataset"] if net == "cifar" else "imagenet", TRAIN[net])


def train_job(net):
    """A training's resources: `train.<net>.gpus` GPUs (one torchrun rank each; gloo ranks on a CPU)."""
    hp, ranks = TRAIN[net], TRAIN[net]["gpus"]
    images = 0 if net == "imagenet" else sum(names.IMAGES[DARTS["dataset"]])  # ImageNet streams from disk
    mem = cluster.memory_mb(net, gpu(ranks), ranks, images, hp["resolution"], hp.get("workers", 0))
    return job(gpus=gpu(ranks), mem_mb=mem, minutes=train_minutes(net, train_spec(net), ranks))


rule train_cifar:
    input:
        genotype=lambda w: genotype_of(w.name),
        data=f"results/data/{DARTS['dataset']}/ready.json",
    output:
        "results/train/cifar/{name}/metrics.json",
    wildcard_constraints:
        name=r"[A-Za-z0-9_]+(-seed\d+)?",
    params:
        spec=spec(train_spec("cifar")),
        genotype=lambda w, input: input.genotype or w.name,
        out_dir=lambda w: f"results/train/cifar/{w.name}",
        ckpt=lambda w: checkpoint_path("train", "cifar", w.name),
        ranks=TRAIN["cifar"]["gpus"],
    threads: config["threads"]
    resources:
        **train_job("cifar"),
    retries: job_retries(train_minutes("cifar", train_spec("cifar"), TRAIN["cifar"]["gpus"]))
    log:
        "results/logs/train/cifar/{name}.log",
    conda:
        "../../envs/rarts.yaml"
    shell:
        "{JOB} --threads {threads} train --net cifar --genotype {params.genotype} --name {wildcards.name} --gpus {params.ranks} "
        "--spec {params.spec} --out-dir {params.out_dir} --ckpt {params.ckpt} 2> {log}"


def rarts_search_dirs():
    return [f"results/search/darts/rarts/seed{s}" for s in DARTS["seeds"]]


rule select_transfer_cell:
    input:
        genotypes=[f"{d}/genotype.json" for d in rarts_search_dirs()],
        cifar=[f"results/train/cifar/rarts-seed{s}/metrics.json" for s in DARTS["seeds"]]
        if TRAIN["imagenet"]["select"] == "best_cifar_test" else [],
    output:
        "results/transfer/rarts_cell.json",
    params:
        runs=rarts_search_dirs(),
        rule=TRAIN["imagenet"]["select"],
    log:
        "results/logs/select_transfer_cell.log",
    resources:
        **job(),
    conda:
        "../../envs/rarts.yaml"
    shell:
        "{RARTS} select-cell --rule {params.rule} --runs {params.runs} "
        "--cifar-metrics {input.cifar} --out {output} 2> {log}"


rule train_imagenet:
    input:
        genotype=lambda w: genotype_of(w.name),
        data="results/data/imagenet/ready.json",
    output:
        "results/train/imagenet/{name}/metrics.json",
    params:
        spec=spec(train_spec("imagenet")),
        genotype=lambda w, input: input.genotype or w.name,
        out_dir=lambda w: f"results/train/imagenet/{w.name}",
        ckpt=lambda w: checkpoint_path("train", "imagenet", w.name),
        ranks=TRAIN["imagenet"]["gpus"],
    threads: config["threads"]
    resources:
        **train_job("imagenet"),
    retries: job_retries(train_minutes("imagenet", train_spec("imagenet"), TRAIN["imagenet"]["gpus"]))
    log:
        "results/logs/train/imagenet/{name}.log",
    conda:
        "../../envs/rarts.yaml"
    shell:
        "{JOB} --threads {threads} train --net imagenet --genotype {params.genotype} --name {wildcards.name} --gpus {params.ranks} "
        "--spec {params.spec} --out-dir {params.out_dir} --ckpt {params.ckpt} 2> {log}"


rule table1:
    input:
        metrics=[f"results/train/cifar/{n}/metrics.json" for n in cifar_train_names()],
        costs=[f"{d}/cost.json" for d in darts_run_dirs()],
    output:
        csv=report("results/table1.csv", category="Tables", caption="../report/table1.rst"),
        md="results/table1.md",
    params:
        spec=spec({**SYNTHETIC}),
    log:
        "results/logs/table1.log",
    resources:
        **job(),
    conda:
        "../../envs/rarts.yaml"
    shell:
        "{RARTS} table table1 --spec {params.spec} --inputs {input.metrics} {input.costs} "
        "--csv {output.csv} --md {output.md} 2> {log}"


rule table3:
    input:
        metrics=[f"results/train/imagenet/{n}/metrics.json" for n in ["RARTS"] + TRAIN["imagenet"]["compare"]],
        cell="results/transfer/rarts_cell.json",
    output:
        csv=report("results/table3.csv", category="Tables", caption="../report/table3.rst"),
        md="results/table3.md",
    params:
        spec=spec({**SYNTHETIC}),
    log:
        "results/logs/table3.log",
    resources:
        **job(),
    conda:
        "../../envs/rarts.yaml"
    shell:
        "{RARTS} table table3 --spec {params.spec} --inputs {input.metrics} {input.cell} "
        "--csv {output.csv} --md {output.md} 2> {log}"


ALL_TARGETS += ["results/table1.csv", "results/table1.md", "results/table3.csv", "results/table3.md"]
