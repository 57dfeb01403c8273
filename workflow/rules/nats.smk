# Paper §3, Table 4: searches in the NATS-Bench topology space on CIFAR-10 and CIFAR-100, found
# cells scored by benchmark lookup (or, offline, by brief local training), and the table.
NATS_SEARCH = config["search"]["nats"]
NATS = config["nats"]


use rule search_darts as search_nats with:
    input:
        split=lambda w: nats_split(w.dataset),
    output:
        genotype="results/search/nats/{dataset}/{algo}/seed{seed}/genotype.json",
        history="results/search/nats/{dataset}/{algo}/seed{seed}/history.json",
        cost="results/search/nats/{dataset}/{algo}/seed{seed}/cost.json",
        cell="results/search/nats/{dataset}/{algo}/seed{seed}/cell.png",
    log:
        "results/logs/search/nats/{dataset}/{algo}/seed{seed}.log",
    wildcard_constraints:
        dataset="cifar10|cifar100",
        algo=alternatives(names.ALGORITHMS),
        seed=r"\d+",
    retries: job_retries(*[nats_search_minutes(d, a) for d in NATS_SEARCH["datasets"] for a in NATS_SEARCH["algorithms"]])
    resources:
        **job(
            gpus=gpu(),
            mem_mb=lambda w: nats_memory(w.dataset),
            minutes=lambda w: nats_search_minutes(w.dataset, w.algo),
        ),
    params:
        space="nats",
        spec=lambda w: spec(nats_search_spec(w.dataset)),


rule prepare_nats_bench:
    output:
        "results/data/nats_bench/ready.json",
    log:
        "results/logs/prepare_data/nats_bench.log",
    conda:
        ENV
    resources:
        **job(),
    params:
        spec=spec({"root": NATS["benchmark"], **SYNTHETIC}),
    shell:
        "rarts prepare-data --dataset nats-bench --spec {params.spec} --out {output} 2> {log}"


rule nats_score:
    input:
        benchmark="results/data/nats_bench/ready.json" if NATS["benchmark"] else [],
        genotypes=lambda w: expand(
            rules.search_nats.output.genotype,
            dataset=w.dataset,
            algo=NATS_SEARCH["algorithms"],
            seed=NATS_SEARCH["seeds"],
        ),
        data="results/data/{dataset}/ready.json",
    output:
        "results/nats/{dataset}/scores.json",
    log:
        "results/logs/nats_score/{dataset}.log",
    wildcard_constraints:
        dataset="cifar10|cifar100",
    retries: job_retries(*map(nats_score_minutes, NATS_SEARCH["datasets"]))
    conda:
        ENV
    threads: job_threads(0 if NATS["benchmark"] else gpu())
    resources:
        **job(
            gpus=0 if NATS["benchmark"] else gpu(),
            minutes=lambda w: nats_score_minutes(w.dataset),
            mem_mb=cluster.BASE_MB["cpu"] + 2_000 if NATS["benchmark"] else lambda w: nats_memory(w.dataset),
        ),
    params:
        runs=lambda w, input: [str(Path(g).parent) for g in input.genotypes],
        benchmark=shlex.quote(NATS["benchmark"]),
        spec=lambda w: spec(nats_score_spec(w.dataset)),
        ckpt=lambda w: str(Path(config["checkpoints"], "nats", w.dataset)),
    shell:
        "exec rarts --workflow-job --threads {threads} nats-score --dataset {wildcards.dataset} --benchmark {params.benchmark} --spec {params.spec} "
        "--runs {params.runs} --ckpt-dir {params.ckpt} --out {output} 2> {log}"


# The shape every table rule shares (table1, table2, table3 and width_table are this rule `with:` their
# own inputs, outputs and settings): `rarts table NAME` from the files its inputs name.
rule table4:
    input:
        expand(rules.nats_score.output, dataset=NATS_SEARCH["datasets"]),
    output:
        csv=report("results/table4.csv", category="Tables", caption="../report/table4.rst"),
        md="results/table4.md",
    log:
        "results/logs/table4.log",
    conda:
        ENV
    resources:
        **job(),
    params:
        table="table4",
        spec=spec({**SYNTHETIC, "split": NATS_SEARCH["split"]}),
    shell:
        "rarts table {params.table} --spec {params.spec} --inputs {input} --csv {output.csv} --md {output.md} 2> {log}"


ALL_TARGETS += ["results/table4.csv", "results/table4.md"]
SEARCH_RUNS += [d for ds in NATS_SEARCH["datasets"] for d in nats_run_dirs(ds)]
