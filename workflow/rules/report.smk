# The last step of `all`: one MLflow run with the config, every table and figure, provenance, the
# tables' headline numbers and verdict counts, and a nested run per search and per job behind a table's
# number (trainings, latency measurements, NATS-Bench lookups). A local, single-writer rule (see rarts/report/tracking.py).
TABLE_JOBS = {  # the jobs whose numbers each table reports: metrics.json, latency.json, scores.json
    "table1": lambda: expand(rules.train_cifar.output, name=cifar_train_names()),
    "table2": lambda: expand(rules.model_latency.output, setting=ABLATION["settings"], seed=ABLATION["seeds"]),
    "table3": lambda: expand(rules.train_imagenet.output, name=["RARTS", *TRAIN["imagenet"]["compare"]]),
    "table4": lambda: expand(rules.nats_score.output, dataset=NATS_SEARCH["datasets"]),
    "table5": lambda: width_table_inputs("table5"),
    "table6": lambda: width_table_inputs("table6"),
}
JOB_RUNS = [m for t, runs in TABLE_JOBS.items() if f"results/{t}.csv" in ALL_TARGETS for m in runs()]


rule log_mlflow:
    input:
        artifacts=ALL_TARGETS,
        histories=[f"{d}/history.json" for d in SEARCH_RUNS],
        dynamics=[f"{d}/dynamics.png" for d in DYNAMICS_RUNS],  # logged in each search's nested run
        jobs=JOB_RUNS,
    output:
        "results/mlflow_run.json",
    log:
        "results/logs/log_mlflow.log",
    conda:
        ENV
    params:
        spec=spec({**config["mlflow"], "store_dir": "results"}),
        config=spec(config),
        runs=SEARCH_RUNS,
    shell:
        "rarts log-mlflow --spec {params.spec} --config {params.config} "
        "--artifacts {input.artifacts} --search-runs {params.runs} --job-runs {input.jobs} --out {output} 2> {log}"


localrules:
    log_mlflow,
