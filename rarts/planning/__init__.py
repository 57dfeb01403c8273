"""Tools that drive Snakemake: `rarts plan` (what a target costs) and the rehearsal's report."""
