# Paper §3: topology search in the DARTS space, one job per (algorithm, seed), and Fig. 2.
DARTS = config["search"]["darts"]
LATENCY_TABLE = DARTS["latency"]["table"] or f"results/latency/{config['latency']['device_tag']}.json"


DARTS_MEMORY = search_memory("search", darts_search_spec(), names.IMAGES[DARTS["dataset"]][0])


# The shape every search rule shares (search_nats, ablation_search and width_search are this rule
# `with:` their own inputs, outputs and settings): one `rarts search` of an algorithm and a seed.
rule search_darts:
    input:
        split=f"results/data/{DARTS['dataset']}/search_split.json",
        latency=lambda w: LATENCY_TABLE if uses_latency(w.algo) else [],
    output:
        genotype="results/search/darts/{algo}/seed{seed}/genotype.json",
        history="results/search/darts/{algo}/seed{seed}/history.json",
        cost="results/search/darts/{algo}/seed{seed}/cost.json",
        cell=report(
            "results/search/darts/{algo}/seed{seed}/cell.png",
            category="Search cells",
            subcategory="{algo}",
            caption="../report/cell.rst",
        ),
    log:
        "results/logs/search/darts/{algo}/seed{seed}.log",
    wildcard_constraints:
        algo=alternatives(names.SEARCHES),
        seed=r"\d+",
    retries: job_retries(*map(darts_search_minutes, DARTS["algorithms"]))
    conda:
        ENV
    threads: job_threads(search_gpus)
    resources:
        **job(gpus=search_gpus, mem_mb=DARTS_MEMORY, minutes=lambda w: darts_search_minutes(w.algo)),
    params:
        space="darts",
        algo=lambda w: w.algo,
        spec=spec(darts_search_spec()),
        out_dir=out_dir,
        ckpt=checkpoint_path,
    shell:
        "exec rarts --workflow-job --threads {threads} search --space {params.space} --algo {params.algo} --seed {wildcards.seed} "
        "--spec {params.spec} --split {input.split} --out-dir {params.out_dir} --ckpt {params.ckpt} 2> {log}"


rule fig2:
    input:
        expand(rules.search_darts.output.genotype, algo=DARTS["algorithms"], seed=DARTS["seeds"]),
    output:
        png=report("results/fig2.png", category="Search cells", caption="../report/fig2.rst"),
        pdf="results/fig2.pdf",
        csv=report(
            "results/search/darts/skip_connections.csv",
            category="Search cells",
            caption="../report/skip_connections.rst",
        ),
    log:
        "results/logs/fig2.log",
    conda:
        ENV
    resources:
        **job(),
    params:
        runs=lambda w, input: [str(Path(g).parent) for g in input],
    shell:
        "rarts fig2 --runs {params.runs} --png {output.png} --pdf {output.pdf} --csv {output.csv} 2> {log}"


ALL_TARGETS += ["results/fig2.png", "results/fig2.pdf", "results/search/darts/skip_connections.csv"]
SEARCH_RUNS += darts_run_dirs(searched(DARTS["algorithms"]))
