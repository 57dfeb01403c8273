# Hardware-aware search (paper eqs. 5 and 8) and the latency ablation of Table 2: a per-op
# latency table measured once per device, RARTS searches under the 9 settings of Table 2, and the
# forward time of each found model.
LAT = config["latency"]
ABLATION = LAT["ablation"]


rule latency_table:
    output:
        f"results/latency/{LAT['device_tag']}.json",
    log:
        f"results/logs/latency_table_{LAT['device_tag']}.log",
    conda:
        ENV
    threads: ALONE
    resources:
        **job(gpus=gpu(), mem_mb=cluster.memory_mb("search", on_gpu())),
    params:
        spec=spec(
            {
                "space": {k: DARTS[k] for k in ("init_channels", "layers", "steps", "multiplier")}
                | {"num_classes": num_classes(DARTS["dataset"])},
                "resolution": DARTS["resolution"],
                "batch_size": LAT["batch_size"],
                "warmup": LAT["warmup"],
                "repeats": LAT["repeats"],
            }
        ),
    shell:
        "exec rarts --workflow-job --threads {threads} latency-table --spec {params.spec} --out {output} 2> {log}"


use rule search_darts as ablation_search with:
    input:
        split=f"results/data/{DARTS['dataset']}/search_split.json",
        latency=LATENCY_TABLE,
    output:
        genotype=f"{layout.LATENCY_ABLATION_RUN}/genotype.json",
        history=f"{layout.LATENCY_ABLATION_RUN}/history.json",
        cost=f"{layout.LATENCY_ABLATION_RUN}/cost.json",
        cell=f"{layout.LATENCY_ABLATION_RUN}/cell.png",
    log:
        "results/logs/ablation/latency/{setting}/seed{seed}.log",
    wildcard_constraints:
        setting=alternatives(ABLATION["settings"]),
        seed=r"\d+",
    retries: job_retries(*map(ablation_minutes, ABLATION["settings"]))
    resources:
        **job(gpus=gpu(), mem_mb=DARTS_MEMORY, minutes=lambda w: ablation_minutes(w.setting)),
    params:
        algo="rarts",
        spec=lambda w: spec(ablation_spec(w.setting)),


rule model_latency:
    input:
        rules.ablation_search.output.genotype,
    output:
        f"{layout.LATENCY_ABLATION_RUN}/latency.json",
    log:
        "results/logs/ablation/latency/{setting}/seed{seed}.model_latency.log",
    conda:
        ENV
    threads: ALONE
    resources:
        **job(gpus=gpu(), mem_mb=cluster.memory_mb("cifar", on_gpu())),
    params:
        spec=spec({**LAT["model"], "num_classes": num_classes(DARTS["dataset"])}),
    shell:
        "exec rarts --workflow-job --threads {threads} model-latency --genotype {input} --spec {params.spec} --out {output} 2> {log}"


use rule table4 as table2 with:
    input:
        expand(rules.model_latency.output, setting=ABLATION["settings"], seed=ABLATION["seeds"]),
    output:
        csv=report("results/table2.csv", category="Tables", caption="../report/table2.rst"),
        md="results/table2.md",
    log:
        "results/logs/table2.log",
    params:
        table="table2",
        spec=spec(
            {**SYNTHETIC, "settings": ABLATION["settings"], "order": list(ABLATION["settings"]), "model": LAT["model"]}
        ),


ALL_TARGETS += ["results/table2.csv", "results/table2.md"]
