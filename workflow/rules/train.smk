# Paper §3, Tables 1 and 3: retrain every searched genotype (and the published DARTS cells) on
# CIFAR under one protocol, transfer the chosen RARTS cell and DARTS_V2 to ImageNet. A training
# that asks for several GPUs (its `gpu` resource) runs one torchrun process per GPU.
TRAIN = config["train"]
PUBLISHED = TRAIN["cifar"]["published"]


PROTOCOL = TRAIN["cifar"]["protocol"]  # Table 1: `searches` (each search retrained once) or `best` (DARTS's)


# The shape both trainings share (train_imagenet is this rule `with:` its own): one `rarts train`,
# under torchrun with one rank a GPU when it has several.
rule train_cifar:
    input:
        genotype=lambda w: genotype_of(w.name),
        data=f"results/data/{DARTS['dataset']}/ready.json",
    output:
        "results/train/cifar/{name}/metrics.json",
    log:
        "results/logs/train/cifar/{name}.log",
    wildcard_constraints:
        name=r"[A-Za-z0-9_]+(-seed\d+|-best-train\d+)?",
    retries: job_retries(train_minutes("cifar", train_spec("cifar"), TRAIN["cifar"]["gpus"]))
    conda:
        ENV
    threads: job_threads(gpu(TRAIN["cifar"]["gpus"]))
    resources:
        **train_job("cifar"),
    params:
        net="cifar",
        spec=lambda w: spec(cifar_train_spec(w.name)),
        genotype=lambda w, input: input.genotype or w.name,
        out_dir=out_dir,
        ckpt=checkpoint_path,
        ranks=TRAIN["cifar"]["gpus"],
    shell:
        "exec rarts --workflow-job --threads {threads} train --net {params.net} --genotype {params.genotype} --name {wildcards.name} "
        "--gpus {params.ranks} --spec {params.spec} --out-dir {params.out_dir} --ckpt {params.ckpt} 2> {log}"


use rule train_cifar as train_imagenet with:
    input:
        genotype=lambda w: genotype_of(w.name),
        data="results/data/imagenet/ready.json",
    output:
        "results/train/imagenet/{name}/metrics.json",
    log:
        "results/logs/train/imagenet/{name}.log",
    wildcard_constraints:
        name=r"RARTS|DARTS_V1|DARTS_V2",
    retries: job_retries(train_minutes("imagenet", train_spec("imagenet"), TRAIN["imagenet"]["gpus"]))
    threads: job_threads(gpu(TRAIN["imagenet"]["gpus"]))
    resources:
        **train_job("imagenet"),
    params:
        net="imagenet",
        spec=spec(train_spec("imagenet")),
        ranks=TRAIN["imagenet"]["gpus"],


# The shape both selections share: `rarts select-cell` over an algorithm's searches.
rule select_transfer_cell:
    input:
        genotypes=rarts_searches(),
        cifar=(
            expand(rules.train_cifar.output, name=[layout.train_run("rarts", seed=s) for s in DARTS["seeds"]])
            if TRAIN["imagenet"]["select"] == "best_cifar_test"
            else []
        ),
    output:
        "results/transfer/rarts_cell.json",
    log:
        "results/logs/select_transfer_cell.log",
    conda:
        ENV
    resources:
        **job(),
    params:
        runs=lambda w, input: [str(Path(g).parent) for g in input.genotypes],
        rule=TRAIN["imagenet"]["select"],
    shell:
        "rarts select-cell --rule {params.rule} --runs {params.runs} --cifar-metrics {input.cifar} --out {output} 2> {log}"


use rule select_transfer_cell as select_best_search with:
    input:
        genotypes=lambda w: expand(rules.search_darts.output.genotype, algo=w.algo, seed=DARTS["seeds"]),
        cifar=[],
    output:
        "results/search/darts/{algo}/best.json",
    log:
        "results/logs/select_best_search/{algo}.log",
    wildcard_constraints:
        algo=alternatives(names.ALGORITHMS),
    params:
        rule="best_search_val",


use rule table4 as table1 with:
    input:
        metrics=expand(rules.train_cifar.output, name=cifar_train_names()),
        costs=expand(rules.search_darts.output.cost, algo=DARTS["algorithms"], seed=DARTS["seeds"]),
        best=expand(rules.select_best_search.output, algo=[a for a in DARTS["algorithms"] if best_protocol(a)]),
    output:
        csv=report("results/table1.csv", category="Tables", caption="../report/table1.rst"),
        md="results/table1.md",
    log:
        "results/logs/table1.log",
    params:
        table="table1",
        spec=spec(
            {
                **SYNTHETIC,
                "protocol": PROTOCOL,
                "seeds": DARTS["seeds"],
                "train_seed": TRAIN["cifar"]["seed"],
                "retrain_seeds": TRAIN["cifar"]["retrain_seeds"],
            }
        ),


use rule table4 as table3 with:
    input:
        metrics=expand(rules.train_imagenet.output, name=["RARTS", *TRAIN["imagenet"]["compare"]]),
        cell=rules.select_transfer_cell.output,
    output:
        csv=report("results/table3.csv", category="Tables", caption="../report/table3.rst"),
        md="results/table3.md",
    log:
        "results/logs/table3.log",
    params:
        table="table3",
        spec=spec({**SYNTHETIC}),


ALL_TARGETS += ["results/table1.csv", "results/table1.md", "results/table3.csv", "results/table3.md"]
