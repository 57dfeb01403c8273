# Reproduction verdicts (rarts.report.reproduction): every row of ours with a paper value, the difference and
# a verdict by a stated rule, and whether our runs show the paper's search claims.
TABLE_CSVS = [f"results/{t}.csv" for t in names.TABLES if f"results/{t}.csv" in ALL_TARGETS]


rule reproduction:
    input:
        tables=TABLE_CSVS,
        skips="results/search/darts/skip_connections.csv",
    output:
        csv=report("results/reproduction.csv", category="Tables", caption="../report/reproduction.rst"),
        md="results/reproduction.md",
        rst="results/reproduction.rst",  # the report's first page (Snakefile)
    log:
        "results/logs/reproduction.log",
    conda:
        ENV
    resources:
        **job(),
    params:
        spec=spec(SYNTHETIC),
    shell:
        "rarts reproduction --spec {params.spec} --inputs {input.tables} {input.skips} --csv {output.csv} "
        "--md {output.md} --rst {output.rst} 2> {log}"


ALL_TARGETS += ["results/reproduction.csv", "results/reproduction.md", "results/reproduction.rst"]
