# rarts: end-to-end reproduction of "RARTS: An Efficient First-Order Relaxed Architecture
# Search Method" (Xue, Qi, Xin; IEEE Access 2022). See README.md.
#   snakemake --cores 8 all                                  # the paper's settings
#   snakemake --cores 2 --configfile=config/quick.yaml all   # the offline profile (note the =)
#   snakemake results/fig1.png                               # one target


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/toy.smk"
include: "workflow/rules/functions/search.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/functions/nats.smk"
include: "workflow/rules/nats.smk"
include: "workflow/rules/functions/latency.smk"
include: "workflow/rules/latency.smk"
include: "workflow/rules/functions/train.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/functions/width.smk"
include: "workflow/rules/width.smk"
include: "workflow/rules/bench.smk"
include: "workflow/rules/functions/figures.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/reproduction.smk"
include: "workflow/rules/rehearsal.smk"
include: "workflow/rules/report.smk"


# `snakemake --report` opens on the verdicts and the paper's claims once a run has made them
report: "results/reproduction.rst" if Path("results/reproduction.rst").exists() else "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        ALL_TARGETS,
        "results/mlflow_run.json",
