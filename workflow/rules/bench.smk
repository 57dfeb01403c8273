# Search-step benchmark (benchmarks/search_step.py). Not part of `all`: timings want the machine
# to themselves. `snakemake --cores 1 results/bench/search_step.csv`.
BENCH = config["bench"]


rule bench_search_step:
    output:
        "results/bench/search_step.csv",
    log:
        "results/logs/bench_search_step.log",
    conda:
        ENV
    threads: ALONE  # a timing: nothing runs beside it
    resources:
        **job(gpus=gpu(1 if BENCH["size"] == "paper" else 0), mem_mb=cluster.memory_mb("search", on_gpu()), minutes=30),
    params:
        script=f"{workflow.basedir}/benchmarks/search_step.py",
        size=BENCH["size"],
        device=config["device"],
        steps=BENCH["steps"],
        warmup=BENCH["warmup"],
        flags=("--amp " if BENCH["amp"] else "") + ("--channels-last" if BENCH["channels_last"] else ""),
    shell:
        "python {params.script} --size {params.size} --device {params.device} "
        "--steps {params.steps} --warmup {params.warmup} {params.flags} --out {output} > {log} 2>&1"
