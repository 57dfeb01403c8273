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
        return cluster.memory_mb(net(w), gpu(), images=width_images(dataset(w)), resolution=hp(w)["resolution"])
    return job(gpus=gpu(), mem_mb=mem, minutes=minutes)


def width_train_minutes(table, dataset, kind):
    return train_minutes(WIDTH[table]["net"]["name"], width_job_spec(table, dataset, width_train_hp(table, kind), 0))


def width_search_minutes(table, dataset, algo):
    return search_minutes("width", algo, width_search_spec(table, dataset, 0))


def width_all_minutes(minutes, kinds=None):
    """`minutes(table, dataset, kind)` of every table, dataset and kind (default: the searched algorithms)."""
    return [minutes(t, ds, k) for t in WIDTH for ds in width_datasets(t) for k in kinds or WIDTH[t]["search"]["algorithms"]]


def pct(ratio):
    return str(round(100 * ratio))


def width_methods(table):
    """The pruned-and-fine-tuned runs of each table."""
    if table == "table5":
        return [f"{m}-{pct(r)}" for r in W5["ratios"] for m in ["ns"] + W5["search"]["algorithms"]]
    return W6["search"]["algorithms"] + ["random"]


def prune_plan(w):
    """Where METHOD's network comes from, and how it is pruned."""
    d = lambda kind: width_dir(w.table, w.dataset, kind, w.seed)  # noqa: E731
    if w.table == "table6":
        if w.method == "random":
            return {"source": f"{d('baseline')}/model.pt", "rule": "random", "value": 0.0,
                    "like": f"{d('search-' + W6['random_like'])}/genotype.json"}
        return {"source": f"{d('search-' + w.method)}/searched.pt", "rule": "threshold",
                "value": W6["threshold"], "like": []}
    algo, value = w.method.split("-")
    source = f"{d('sparse')}/model.pt" if algo == "ns" else f"{d('search-' + algo)}/searched.pt"
    return {"source": source, "rule": "ratio", "value": int(value) / 100, "like": []}


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
        "../../envs/rarts.yaml"
    shell:
        "{RARTS} imagenet-r --spec {params.spec} --out-dir {IMAGENET_R_DIR} --out {output.ready} 2> {log}"


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
        spec=lambda w: spec(width_job_spec(w.table, w.dataset, width_train_hp(w.table, w.kind), w.seed)),
        out_dir=lambda w: width_dir(w.table, w.dataset, w.kind, w.seed),
        ckpt=lambda w: checkpoint_path("width", w.table, w.dataset, w.kind, f"seed{w.seed}"),
    threads: config["threads"]
    resources:
        **width_job(lambda w: w.dataset, lambda w: WIDTH[w.table]["net"]["name"], lambda w: WIDTH[w.table]["train"],
                    lambda w: width_train_minutes(w.table, w.dataset, w.kind)),
    retries: job_retries(*width_all_minutes(width_train_minutes, ["baseline", "sparse"]))
    log:
        "results/logs/width/{table}/{dataset}/{kind}/seed{seed}.log",
    conda:
        "../../envs/rarts.yaml"
    shell:
        "{JOB} --threads {threads} width-train --name {wildcards.table}-{wildcards.dataset}-{wildcards.kind}-seed{wildcards.seed} "
        "--spec {params.spec} --out-dir {params.out_dir} --ckpt {params.ckpt} 2> {log}"


rule width_search:
    input:
        split="results/data/{dataset}/search_split.json",
    output:
        genotype="results/width/{table}/{dataset}/search-{algo}/seed{seed}/genotype.json",
        history="results/width/{table}/{dataset}/search-{algo}/seed{seed}/history.json",
        cost="results/width/{table}/{dataset}/search-{algo}/seed{seed}/cost.json",
        searched="results/width/{table}/{dataset}/search-{algo}/seed{seed}/searched.pt",
        widths=report("results/width/{table}/{dataset}/search-{algo}/seed{seed}/cell.png",
                      category="Width search", subcategory="{table}", caption="../report/widths.rst"),
    wildcard_constraints:
        algo=WIDTH_ALGOS,
        seed=r"\d+",
    params:
        spec=lambda w: spec(width_search_spec(w.table, w.dataset, w.seed)),
        out_dir=lambda w: width_dir(w.table, w.dataset, f"search-{w.algo}", w.seed),
        ckpt=lambda w: checkpoint_path("width", w.table, w.dataset, f"search-{w.algo}", f"seed{w.seed}"),
    threads: config["threads"]
    resources:
        **width_job(lambda w: w.dataset, lambda w: WIDTH[w.table]["net"]["name"], lambda w: WIDTH[w.table]["search"],
                    lambda w: width_search_minutes(w.table, w.dataset, w.algo)),
    retries: job_retries(*width_all_minutes(width_search_minutes))
    log:
        "results/logs/width/{table}/{dataset}/search-{algo}/seed{seed}.log",
    conda:
        "../../envs/rarts.yaml"
    shell:
        "{JOB} --threads {threads} search --space width --algo {wildcards.algo} --seed {wildcards.seed} --spec {params.spec} "
        "--split {input.split} --out-dir {params.out_dir} --ckpt {params.ckpt} 2> {log}"


rule width_finetune:
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
        spec=lambda w: spec(width_job_spec(w.table, w.dataset, width_train_hp(w.table, w.method), w.seed)),
        rule=lambda w: prune_plan(w)["rule"],
        value=lambda w: prune_plan(w)["value"],
        like=lambda w, input: f"--like {input.like}" if input.like else "",
        out_dir=lambda w: width_dir(w.table, w.dataset, w.method, w.seed),
        ckpt=lambda w: checkpoint_path("width", w.table, w.dataset, w.method, f"seed{w.seed}"),
    threads: config["threads"]
    resources:
        **width_job(lambda w: w.dataset, lambda w: WIDTH[w.table]["net"]["name"], lambda w: WIDTH[w.table]["train"],
                    lambda w: width_train_minutes(w.table, w.dataset, "finetune")),
    retries: job_retries(*width_all_minutes(width_train_minutes, ["finetune"]))
    log:
        "results/logs/width/{table}/{dataset}/{method}/seed{seed}.log",
    conda:
        "../../envs/rarts.yaml"
    shell:
        "{JOB} --threads {threads} width-train --name {wildcards.table}-{wildcards.dataset}-{wildcards.method}-seed{wildcards.seed} "
        "--spec {params.spec} --source {input.source} --rule {params.rule} --value {params.value} {params.like} "
        "--out-dir {params.out_dir} --ckpt {params.ckpt} 2> {log}"


def width_table_inputs(table):
    kinds = ["baseline"] + width_methods(table)
    return [f"{width_dir(table, ds, k, s)}/metrics.json"
            for ds in width_datasets(table) for k in kinds for s in WIDTH[table]["seeds"]]


rule width_table:
    input:
        lambda w: width_table_inputs(w.table),
    output:
        csv=report("results/{table}.csv", category="Tables", caption="../report/width_table.rst"),
        md="results/{table}.md",
    params:
        spec=lambda w: spec({**SYNTHETIC, "width": WIDTH[w.table],
                             "sparsity": W5["sparsity"]}),
    log:
        "results/logs/{table}.log",
    resources:
        **job(),
    conda:
        "../../envs/rarts.yaml"
    shell:
        "{RARTS} table {wildcards.table} --spec {params.spec} --inputs {input} --csv {output.csv} --md {output.md} 2> {log}"


ALL_TARGETS += ["results/table5.csv", "results/table5.md", "results/table6.csv", "results/table6.md"]
SEARCH_RUNS += [width_dir(t, ds, f"search-{a}", s) for t in ("table5", "table6") for ds in width_datasets(t)
                for a in WIDTH[t]["search"]["algorithms"] for s in WIDTH[t]["seeds"]]
