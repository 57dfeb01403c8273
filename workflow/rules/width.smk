# Paper §3, Tables 5 and 6: width search with channel scores against Network Slimming.
#   results/width/<table>/<dataset>/baseline/seedS     plain training (the unpruned network)
#   results/width/<table>/<dataset>/sparse/seedS       Network Slimming's sparsity training
#   results/width/<table>/<dataset>/search-ALGO/seedS  a width search (scores as the architecture)
#   results/width/<table>/<dataset>/METHOD/seedS       pruned and fine-tuned: nsPCT and ALGOPCT at a
#       fixed PRC (Table 5, e.g. ns-40, rarts-60); ALGO at the learned ratio and `random` (Table 6)
WIDTH = config["width"]
W5, W6 = WIDTH["table5"], WIDTH["table6"]
WIDTH_ALGOS = alternatives(names.ALGORITHMS)


def width_dir(table, dataset, kind, seed):
    return f"results/width/{table}/{dataset}/{kind}/seed{seed}"


def width_datasets(table):
    return W5["datasets"] if table == "table5" else ["imagenet_r"]


def width_job_spec(table, dataset, hp, seed):
    return job_spec(dataset, {**hp, "seed": int(seed)}, num_classes=num_classes(dataset), net=WIDTH[table]["net"])


def width_search_spec(table, dataset, seed):
    prune = ({"rule": "ratio", "value": W5["ratios"][0]} if table == "table5"
             else {"rule": "threshold", "value": W6["threshold"]})
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
    return [minutes(t, ds, k) for t in WIDTH for ds in width_datasets(t) for k in kinds or WIDTH[t]["search"]["algorithms"]]


def width_methods(table):
    """The pruned-and-fine-tuned runs of each table (rarts.finetune names them)."""
    ratios = W5["ratios"] if table == "table5" else None
    return finetune.runs(ratios, WIDTH[table]["search"]["algorithms"] if table == "table5" else W6["search"]["algorithms"])


def prune_plan(w):
    """Where a fine-tuned run's network comes from, and how it is pruned (rarts.finetune.plan)."""
    plan = finetune.plan(w.method, w.table == "table5", W6["threshold"], W6["random_like"])
    d = lambda run: width_dir(w.table, w.dataset, run, w.seed)  # noqa: E731
    return {"source": f"{d(plan.source)}/{plan.file}", "rule": plan.rule, "value": plan.value,
            "like": f"{d(plan.like)}/genotype.json" if plan.like else []}


wildcard_constraints:
    table="table5|table6",


rule imagenet_r:
    input:
        "results/data/imagenet/ready.json",
    output:
        ready=f"{IMAGENET_R_DIR}/ready.json",
        train=f"{IMAGENET_R_DIR}/train.pt",
        val=f"{IMAGENET_R_DIR}/val.pt",
        classes=f"{IMAGENET_R_DIR}/classes.json",
    params:
        spec=spec({"root": config["data"]["imagenet"]["root"], **config["data"]["imagenet_r"]}),
    threads: config["data"]["imagenet_r"]["workers"] or 1
    resources:  # the decoded uint8 tensors of the drawn classes, and a decoding worker a thread
        **job(mem_mb=cluster.BASE_MB["cpu"] + cluster.data_mb(width_images("imagenet_r"), config["data"]["imagenet_r"]["resolution"], True)
              + (config["data"]["imagenet_r"]["workers"] or 1) * cluster.WORKER_MB, minutes=120),
    log:
        "results/logs/imagenet_r.log",
    conda:
        ENV
    shell:
        "{RARTS} imagenet-r --spec {params.spec} --out-dir {IMAGENET_R_DIR} --out {output.ready} 2> {log}"


# The shape both width trainings share (width_finetune is this rule `with:` a network to prune first):
# one `rarts width-train`.
rule width_train:
    input:
        data="results/data/{dataset}/ready.json",
    output:
        metrics="results/width/{table}/{dataset}/{kind}/seed{seed}/metrics.json",
        model="results/width/{table}/{dataset}/{kind}/seed{seed}/model.pt",
        genotype="results/width/{table}/{dataset}/{kind}/seed{seed}/genotype.json",
    wildcard_constraints:
        kind="baseline|sparse",
        seed=r"\d+",
    params:
        name=lambda w: f"{w.table}-{w.dataset}-{w.kind}-seed{w.seed}",
        spec=lambda w: spec(width_job_spec(w.table, w.dataset, width_train_hp(w.table, w.kind), w.seed)),
        prune="",
        out_dir=out_dir,
        ckpt=checkpoint_path,
    threads: job_threads(gpu())
    resources:
        **width_job(lambda w: w.dataset, lambda w: WIDTH[w.table]["net"]["name"], lambda w: WIDTH[w.table]["train"],
                    lambda w: width_train_minutes(w.table, w.dataset, w.kind)),
    retries: job_retries(*width_all_minutes(width_train_minutes, ["baseline", "sparse"]))
    log:
        "results/logs/width/{table}/{dataset}/{kind}/seed{seed}.log",
    conda:
        ENV
    shell:
        "{JOB} --threads {threads} width-train --name {params.name} --spec {params.spec} {params.prune} "
        "--out-dir {params.out_dir} --ckpt {params.ckpt} 2> {log}"


use rule search_darts as width_search with:
    input:
        split="results/data/{dataset}/search_split.json",
    output:
        genotype="results/width/{table}/{dataset}/search-{algo}/seed{seed}/genotype.json",
        history="results/width/{table}/{dataset}/search-{algo}/seed{seed}/history.json",
        cost="results/width/{table}/{dataset}/search-{algo}/seed{seed}/cost.json",
        cell=report("results/width/{table}/{dataset}/search-{algo}/seed{seed}/cell.png",
                    category="Width search", subcategory="{table}", caption="../report/widths.rst"),
        searched="results/width/{table}/{dataset}/search-{algo}/seed{seed}/searched.pt",
    wildcard_constraints:
        algo=WIDTH_ALGOS,
        seed=r"\d+",
    params:
        space="width",
        spec=lambda w: spec(width_search_spec(w.table, w.dataset, w.seed)),
    resources:
        **width_job(lambda w: w.dataset, lambda w: WIDTH[w.table]["net"]["name"], lambda w: WIDTH[w.table]["search"],
                    lambda w: width_search_minutes(w.table, w.dataset, w.algo)),
    retries: job_retries(*width_all_minutes(width_search_minutes))
    log:
        "results/logs/width/{table}/{dataset}/search-{algo}/seed{seed}.log",


use rule width_train as width_finetune with:
    input:
        data="results/data/{dataset}/ready.json",
        source=lambda w: prune_plan(w)["source"],
        like=lambda w: prune_plan(w)["like"],
    output:
        metrics="results/width/{table}/{dataset}/{method}/seed{seed}/metrics.json",
        model="results/width/{table}/{dataset}/{method}/seed{seed}/model.pt",
        genotype="results/width/{table}/{dataset}/{method}/seed{seed}/genotype.json",
    wildcard_constraints:
        method=rf"(ns|{WIDTH_ALGOS})-\d+|{WIDTH_ALGOS}|random",
        seed=r"\d+",
    params:
        name=lambda w: f"{w.table}-{w.dataset}-{w.method}-seed{w.seed}",
        spec=lambda w: spec(width_job_spec(w.table, w.dataset, width_train_hp(w.table, w.method), w.seed)),
        prune=lambda w, input: (f"--source {input.source} --rule {prune_plan(w)['rule']} --value {prune_plan(w)['value']}"
                                + (f" --like {input.like}" if input.like else "")),
    resources:
        **width_job(lambda w: w.dataset, lambda w: WIDTH[w.table]["net"]["name"], lambda w: WIDTH[w.table]["train"],
                    lambda w: width_train_minutes(w.table, w.dataset, "finetune")),
    retries: job_retries(*width_all_minutes(width_train_minutes, ["finetune"]))
    log:
        "results/logs/width/{table}/{dataset}/{method}/seed{seed}.log",


def width_table_inputs(table):
    kinds = ["baseline"] + width_methods(table)
    return [f"{width_dir(table, ds, k, s)}/metrics.json"
            for ds in width_datasets(table) for k in kinds for s in WIDTH[table]["seeds"]]


use rule table4 as width_table with:
    input:
        lambda w: width_table_inputs(w.table),
    output:
        csv=report("results/{table}.csv", category="Tables", caption="../report/width_table.rst"),
        md="results/{table}.md",
    params:
        table=lambda w: w.table,
        spec=lambda w: spec({**SYNTHETIC, "width": WIDTH[w.table], "sparsity": W5["sparsity"]}),
    log:
        "results/logs/{table}.log",


ALL_TARGETS += ["results/table5.csv", "results/table5.md", "results/table6.csv", "results/table6.md"]
SEARCH_RUNS += [width_dir(t, ds, f"search-{a}", s) for t in ("table5", "table6") for ds in width_datasets(t)
                for a in WIDTH[t]["search"]["algorithms"] for s in WIDTH[t]["seeds"]]
