# Paper §2: the solvable model, Fig. 1 and the equilibria table.


rule fig1:
    output:
        png=report("results/fig1.png", category="Solvable model", caption="../report/fig1.rst"),
        pdf="results/fig1.pdf",
        csv=report("results/toy_equilibria.csv", category="Solvable model", caption="../report/toy_equilibria.rst"),
    log:
        "results/logs/fig1.log",
    conda:
        ENV
    resources:
        **job(),
    params:
        spec=spec(config["toy"]),
    shell:
        "rarts fig1 --spec {params.spec} --png {output.png} --pdf {output.pdf} --csv {output.csv} 2> {log}"


ALL_TARGETS += ["results/fig1.png", "results/fig1.pdf", "results/toy_equilibria.csv"]
