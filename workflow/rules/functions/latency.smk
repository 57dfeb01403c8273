# The functions of workflow/rules/latency.smk (Snakemake's lint: a file of rules holds no functions).


def ablation_minutes(setting):
    return search_minutes("darts", "rarts", ablation_spec(setting))


def ablation_spec(setting):
    s = ABLATION["settings"][setting]
    return darts_search_spec(
        batch_size=s["batch_size"],
        arch_lr=s["arch_lr"],
        epochs=ABLATION["epochs"],
        max_steps_per_epoch=ABLATION["max_steps_per_epoch"],
        arch_weight_decay=s["arch_weight_decay"],
        latency={"enabled": True, "weight": s["weight"], "algorithms": ["rarts"]},
    )
