# Figures a reader compares at a glance: each paper table as a figure (ours beside the paper's
# values) and an HTML view for the report; softmax(α) over epochs for every DARTS-space and
# NATS-Bench search; and the algorithms' skip-connection counts over epochs side by side.
TABLES = [t for t in names.TABLES if f"results/{t}.csv" in ALL_TARGETS]
DYNAMICS_RUNS = [d for d in SEARCH_RUNS if d.startswith("results/search/")]  # DARTS and NATS-Bench spaces
SKIP_GROUPS = {"darts": darts_run_dirs([a for a in DARTS["algorithms"] if a != "random"])}
SKIP_GROUPS |= {f"nats-{ds}": nats_run_dirs(ds) for ds in NATS_SEARCH["datasets"]}


rule table_view:
    input:
        csv="results/{table}.csv",
        md="results/{table}.md",
    output:
        png=report(
            "results/{table}.png", category="Figures", subcategory="Tables", caption="../report/table_figure.rst"
        ),
        pdf="results/{table}.pdf",
        html=report("results/{table}.html", category="Tables", caption="../report/table_view.rst"),
    log:
        "results/logs/table_view/{table}.log",
    wildcard_constraints:
        table=alternatives(names.TABLES),
    conda:
        ENV
    resources:
        **job(),
    shell:
        "rarts table-view {wildcards.table} --csv {input.csv} --md {input.md} --png {output.png} "
        "--pdf {output.pdf} --html {output.html} 2> {log}"


rule search_dynamics:
    input:
        "{run}/history.json",
    output:
        report("{run}/dynamics.png", category="Search dynamics", caption="../report/dynamics.rst"),
    log:
        "{run}/dynamics.log",
    wildcard_constraints:
        run=r"results/search/.+/seed\d+",
    conda:
        ENV
    resources:
        **job(),
    shell:
        "rarts dynamics --history {input} --png {output} 2> {log}"


rule skip_comparison:
    input:
        lambda w: [f"{d}/history.json" for d in SKIP_GROUPS[w.group]],
    output:
        png=report(
            "results/figures/skip_connections_{group}.png",
            category="Figures",
            subcategory="Search dynamics",
            caption="../report/skip_comparison.rst",
        ),
        pdf="results/figures/skip_connections_{group}.pdf",
    log:
        "results/logs/skip_comparison/{group}.log",
    wildcard_constraints:
        group=alternatives(SKIP_GROUPS),
    conda:
        ENV
    resources:
        **job(),
    params:
        title=lambda w: shlex.quote(f"skip connections over epochs, {skip_group_space(w.group)}"),
    shell:
        "rarts skip-figure --histories {input} --png {output.png} --pdf {output.pdf} --title {params.title} 2> {log}"


ALL_TARGETS += [f"results/{t}.{ext}" for t in TABLES for ext in ("png", "pdf", "html")]
ALL_TARGETS += [f"results/figures/skip_connections_{g}.{ext}" for g in SKIP_GROUPS for ext in ("png", "pdf")]
