# Paper §3, Tables 5 and 6: width search with channel scores against Network Slimming.
#   results/width/<table>/<dataset>/baseline/seedS     plain training (the unpruned network)
#   results/width/<table>/<dataset>/sparse/seedS       Network Slimming's sparsity training
#   results/width/<table>/<dataset>/search-ALGO/seedS  a width search (scores as the architecture)
#   results/width/<table>/<dataset>/METHOD/seedS       pruned and fine-tuned: nsPCT and ALGOPCT at a
#       fixed PRC (Table 5, e.g. ns-40, rarts-60); ALGO at the learned ratio and `random` (Table 6)
WIDTH = config["width"]
W5, W6 = WIDTH["table5"], WIDTH["table6"]
WIDTH_ALGOS = alternatives(names.ALGORITHMS)


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
    log:
        "results/logs/imagenet_r.log",
    conda:
        ENV
    threads: config["data"]["imagenet_r"]["workers"] or 1
    resources:  # the decoded uint8 tensors of the drawn classes, and a decoding worker a thread
        **job(
            mem_mb=cluster.BASE_MB["cpu"]
            + cluster.data_mb(width_images("imagenet_r"), config["data"]["imagenet_r"]["resolution"], True)
            + (config["data"]["imagenet_r"]["workers"] or 1) * cluster.WORKER_MB,
            minutes=120,
        ),
    params:
        spec=spec({"root": config["data"]["imagenet"]["root"], **config["data"]["imagenet_r"]}),
        out_dir=lambda w, output: Path(output.ready).parent,
    shell:
        "rarts imagenet-r --spec {params.spec} --out-dir {params.out_dir} --out {output.ready} 2> {log}"


# The shape both width trainings share (width_finetune is this rule `with:` a network to prune first):
# one `rarts width-train`.
rule width_train:
    input:
        data="results/data/{dataset}/ready.json",
    output:
        metrics=f"{layout.WIDTH_RUN}/metrics.json",
        model=f"{layout.WIDTH_RUN}/model.pt",
        genotype=f"{layout.WIDTH_RUN}/genotype.json",
    log:
        "results/logs/width/{table}/{dataset}/{method}/seed{seed}.log",
    wildcard_constraints:
        method="baseline|sparse",
        seed=r"\d+",
    retries: job_retries(*width_all_minutes(width_train_minutes, ["baseline", "sparse"]))
    conda:
        ENV
    threads: job_threads(gpu())
    resources:
        **width_job(
            lambda w: w.dataset,
            lambda w: WIDTH[w.table]["net"]["name"],
            lambda w: WIDTH[w.table]["train"],
            lambda w: width_train_minutes(w.table, w.dataset, w.method),
        ),
    params:
        name=lambda w: f"{w.table}-{w.dataset}-{w.method}-seed{w.seed}",
        spec=lambda w: spec(width_job_spec(w.table, w.dataset, width_train_hp(w.table, w.method), w.seed)),
        prune="",
        out_dir=out_dir,
        ckpt=checkpoint_path,
    shell:
        "exec rarts --workflow-job --threads {threads} width-train --name {params.name} --spec {params.spec} {params.prune} "
        "--out-dir {params.out_dir} --ckpt {params.ckpt} 2> {log}"


use rule search_darts as width_search with:
    input:
        split="results/data/{dataset}/search_split.json",
    output:
        genotype="results/width/{table}/{dataset}/search-{algo}/seed{seed}/genotype.json",
        history="results/width/{table}/{dataset}/search-{algo}/seed{seed}/history.json",
        cost="results/width/{table}/{dataset}/search-{algo}/seed{seed}/cost.json",
        cell=report(
            "results/width/{table}/{dataset}/search-{algo}/seed{seed}/cell.png",
            category="Width search",
            subcategory="{table}",
            caption="../report/widths.rst",
        ),
        searched="results/width/{table}/{dataset}/search-{algo}/seed{seed}/searched.pt",
    log:
        "results/logs/width/{table}/{dataset}/search-{algo}/seed{seed}.log",
    wildcard_constraints:
        algo=WIDTH_ALGOS,
        seed=r"\d+",
    retries: job_retries(*width_all_minutes(width_search_minutes))
    resources:
        **width_job(
            lambda w: w.dataset,
            lambda w: WIDTH[w.table]["net"]["name"],
            lambda w: WIDTH[w.table]["search"],
            lambda w: width_search_minutes(w.table, w.dataset, w.algo),
        ),
    params:
        space="width",
        spec=lambda w: spec(width_search_spec(w.table, w.dataset, w.seed)),


use rule width_train as width_finetune with:
    input:
        data="results/data/{dataset}/ready.json",
        source=lambda w: prune_plan(w)["source"],
        like=lambda w: prune_plan(w)["like"],
    output:
        metrics=f"{layout.WIDTH_RUN}/metrics.json",
        model=f"{layout.WIDTH_RUN}/model.pt",
        genotype=f"{layout.WIDTH_RUN}/genotype.json",
    log:
        "results/logs/width/{table}/{dataset}/{method}/seed{seed}.log",
    wildcard_constraints:
        method=rf"(ns|{WIDTH_ALGOS})-\d+|{WIDTH_ALGOS}|random",
        seed=r"\d+",
    retries: job_retries(*width_all_minutes(width_train_minutes, ["finetune"]))
    resources:
        **width_job(
            lambda w: w.dataset,
            lambda w: WIDTH[w.table]["net"]["name"],
            lambda w: WIDTH[w.table]["train"],
            lambda w: width_train_minutes(w.table, w.dataset, "finetune"),
        ),
    params:
        name=lambda w: f"{w.table}-{w.dataset}-{w.method}-seed{w.seed}",
        spec=lambda w: spec(width_job_spec(w.table, w.dataset, width_train_hp(w.table, w.method), w.seed)),
        prune=lambda w, input: (
            f"--source {input.source} --rule {prune_plan(w)['rule']} --value {prune_plan(w)['value']}"
            + (f" --like {input.like}" if input.like else "")
        ),


use rule table4 as width_table with:
    input:
        lambda w: width_table_inputs(w.table),
    output:
        csv=report("results/{table}.csv", category="Tables", caption="../report/width_table.rst"),
        md="results/{table}.md",
    log:
        "results/logs/{table}.log",
    params:
        table=lambda w: w.table,
        spec=lambda w: spec({**SYNTHETIC, "width": WIDTH[w.table], "sparsity": W5["sparsity"]}),


ALL_TARGETS += ["results/table5.csv", "results/table5.md", "results/table6.csv", "results/table6.md"]
SEARCH_RUNS += [
    width_dir(t, ds, f"search-{a}", s)
    for t in ("table5", "table6")
    for ds in width_datasets(t)
    for a in WIDTH[t]["search"]["algorithms"]
    for s in WIDTH[t]["seeds"]
]
