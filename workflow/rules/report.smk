# The last step of `all`: one MLflow run with the config, every table and figure, provenance,
# and a nested run per search. A local, single-writer rule (see rarts/tracking.py).


rule log_mlflow:
    input:
        artifacts=ALL_TARGETS,
        histories=[f"{d}/history.json" for d in SEARCH_RUNS],
        dynamics=[f"{d}/dynamics.png" for d in DYNAMICS_RUNS],  # logged in each search's nested run
    output:
        "results/mlflow_run.json",
    params:
        spec=spec({**config["mlflow"], "store_dir": "results"}),
        config=spec(config),
        runs=SEARCH_RUNS,
    log:
        "results/logs/log_mlflow.log",
    conda:
        ENV
    shell:
        "{RARTS} log-mlflow --spec {params.spec} --config {params.config} "
        "--artifacts {input.artifacts} --search-runs {params.runs} --out {output} 2> {log}"


localrules: log_mlflow
