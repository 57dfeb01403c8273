# The functions of workflow/rules/figures.smk (Snakemake's lint: a file of rules holds no functions).


def skip_group_space(group):
    """The search space and data a skip-connection comparison covers, for its title."""
    return f"DARTS space, {DARTS['dataset']}" if group == "darts" else f"NATS-Bench space, {group.split('-', 1)[1]}"
