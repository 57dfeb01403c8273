# The dress rehearsal's report (config/rehearsal.yaml, `make rehearsal`): per rule, the measured step
# time at paper size against the plan's from a CPU step table measured at paper size, and each job's
# peak memory against its request (rarts.planning.rehearsal).


rule rehearsal_steps:
    output:
        "results/rehearsal/cpu_steps.json",
    log:
        "results/logs/rehearsal_steps.log",
    conda:
        ENV
    threads: ALONE  # a timing: nothing runs beside it
    resources:  # every algorithm's search network at once, then a warm-up and two steps each at paper size
        **job(mem_mb=cluster.memory_mb("search", 0) * 2, minutes=30),
    params:  # the ImageNet transfer's step over its ranks, its input path through its workers
        ranks=TRAIN["imagenet"]["gpus"],
        workers=TRAIN["imagenet"]["workers"],
    shell:
        "rarts gpu-check --size paper --device cpu --steps 2 --warmup 1 "
        "--no-cpu-peaks --step-table-only --ranks imagenet={params.ranks} --workers {params.workers} "
        "--out {output} > {log} 2>&1"


# what the report measures: every job of `all` but itself, its step table and the MLflow step
# (the searches' dynamics figures are inputs of that step alone, so they are named here)
REHEARSED = list(ALL_TARGETS) + [f"{d}/dynamics.png" for d in DYNAMICS_RUNS]


rule rehearsal_report:
    input:
        targets=REHEARSED,
        steps="results/rehearsal/cpu_steps.json",
    output:
        csv=report("results/rehearsal/report.csv", category="Rehearsal", caption="../report/rehearsal.rst"),
        md="results/rehearsal/report.md",
    log:
        "results/logs/rehearsal_report.log",
    conda:
        ENV
    resources:
        **job(),
    params:
        config=spec(config),
        # the report itself, its step table and what runs after it, should the targets' jobs include them
        unmeasured=["all", "rehearsal_report", "rehearsal_steps", "log_mlflow"],
    shell:
        "rarts rehearsal-report {input.targets} --config {params.config} --bench {input.steps} "
        "--unmeasured {params.unmeasured} --csv {output.csv} --md {output.md} 2> {log}"


if config["data"]["rehearsal"]:
    ALL_TARGETS += ["results/rehearsal/report.csv", "results/rehearsal/report.md"]
