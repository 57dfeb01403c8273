# Dataset preparation: download + MD5 check (or the offline stand-in), and the search split.


# ImageNet's check (1.33 M decodes) is a job of its own; CIFAR's download runs where the network is
# (prepare_cifar, below: on the submit host of a cluster run, whose compute nodes are often offline).
rule prepare_data:
    output:
        "results/data/{dataset}/ready.json",
    log:
        "results/logs/prepare_data/{dataset}.log",
    wildcard_constraints:
        dataset="imagenet",
    conda:
        ENV
    threads: config["threads"]  # ImageNet: images are decoded in parallel to verify them
    resources:
        **job(
            mem_mb=cluster.BASE_MB["cpu"] + 2_000,  # CIFAR's arrays, or one JPEG a thread
            minutes=lambda w: 180 if w.dataset == "imagenet" else 10,
        ),
        # ImageNet: 1.33 M decodes
    params:
        spec=lambda w: spec(dataset_spec(w.dataset)),
    shell:
        "rarts --threads {threads} prepare-data --dataset {wildcards.dataset} --spec {params.spec} --out {output} 2> {log}"


use rule prepare_data as prepare_cifar with:
    wildcard_constraints:
        dataset="cifar10|cifar100",
    resources:
        **job(mem_mb=cluster.BASE_MB["cpu"] + 2_000, minutes=10),


localrules:
    prepare_cifar,  # `make data` runs it before a cluster run; a cluster run runs it on the submit host


rule search_split:
    input:
        "results/data/{dataset}/ready.json",
    output:
        "results/data/{dataset}/search_split.json",
    log:
        "results/logs/search_split/{dataset}.log",
    wildcard_constraints:
        dataset="cifar10|cifar100|imagenet_r",
    conda:
        ENV
    resources:
        **job(mem_mb=cluster.BASE_MB["cpu"] + 1_000),
    params:
        spec=lambda w: spec(
            {
                "root": dataset_spec(w.dataset)["root"],
                "seed": config["data"]["split_seed"],
                "portion": config["data"]["split_portion"],
            }
        ),
    shell:
        "rarts split --dataset {wildcards.dataset} --spec {params.spec} --out {output} 2> {log}"


# NATS-Bench's fixed search split (search.nats.split: nats-bench); on a stand-in, its rule
use rule search_split as nats_bench_split with:
    output:
        "results/data/{dataset}/nats_bench_split.json",
    log:
        "results/logs/nats_bench_split/{dataset}.log",
    wildcard_constraints:
        dataset="cifar10|cifar100",
    params:
        spec=lambda w: spec({"root": dataset_spec(w.dataset)["root"], "protocol": "nats-bench"}),
