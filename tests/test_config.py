import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

from conftest import REPO

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def load(name):
    return yaml.safe_load((REPO / "config" / name).read_text())


def paper():
    return load("config.yaml")


def test_paper_and_quick_configs_validate():
    validate(paper(), SCHEMA)
    merged = paper()
    update_config(merged, load("quick.yaml"))
    validate(merged, SCHEMA)
    assert merged["data"]["standin"] and len(merged["search"]["darts"]["seeds"]) == 2
    assert len(paper()["search"]["darts"]["seeds"]) == 5


@pytest.mark.parametrize("mutate,key", [
    (lambda c: c["search"]["darts"].__setitem__("epochz", 3), "epochz"),
    (lambda c: c["search"]["darts"].__setitem__("batch_size", "sixty-four"), "batch_size"),
    (lambda c: c["search"]["darts"]["rarts"].pop("beta"), "beta"),
    (lambda c: c["data"].__setitem__("standin", "yes"), "standin"),
    (lambda c: c.__setitem__("device", "tpu"), "device"),
    (lambda c: c["width"]["table6"].__setitem__("treshold", 0.1), "treshold"),
    (lambda c: c["width"]["table5"]["train"].pop("milestones"), "milestones"),
    (lambda c: c["width"]["table5"]["finetune"].__setitem__("epohcs", 3), "epohcs"),
    (lambda c: c["width"]["table6"]["search"].__setitem__("l1", -1.0), "l1"),
])
def test_bad_config_names_the_key(mutate, key):
    from rarts.pipeline.config import schema_problem

    cfg = copy.deepcopy(paper())
    mutate(cfg)
    with pytest.raises(WorkflowError) as err:
        validate(cfg, SCHEMA)
    assert key in str(err.value)
    problem = schema_problem(cfg, yaml.safe_load(Path(SCHEMA).read_text()))  # what the Snakefile says first
    assert key in problem and len(problem.splitlines()) <= 3, problem


@pytest.mark.parametrize("overlay,says", [
    ("serach:\n  darts:\n    seeds: [0]\n", "config: unknown key 'serach'; did you mean 'search'?"),
    ("search:\n  darts:\n    epochz: 3\n", "config.search.darts: unknown key 'epochz'; did you mean 'epochs'?"),
    ("search:\n  darts:\n    seeds: [0, -1]\n", "config.search.darts.seeds[1]: -1 is less than the minimum of 0"),
])
def test_a_config_mistake_is_a_few_lines_naming_the_key_and_the_nearest(tmp_path, overlay, says):
    """Through Snakemake's own parse of the workflow: the cause first, in a few lines, not the whole
    config and schema."""
    import subprocess

    from conftest import BIN

    (tmp_path / "mine.yaml").write_text(overlay)
    out = subprocess.run([str(BIN / "snakemake"), "-n", "all", "--configfile", "config/quick.yaml",
                          str(tmp_path / "mine.yaml")], cwd=REPO, capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and says in text, text[-3000:]
    assert len(text.splitlines()) < 15, text[-3000:]


def _enums(node):
    """Every `enum` list in the schema."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "enum":
                yield v
            else:
                yield from _enums(v)
    elif isinstance(node, list):
        for v in node:
            yield from _enums(v)


def test_names_have_one_source():
    """The CLI and the rules read rarts.pipeline.names; the registries and the schema's enums must agree."""
    from rarts.pipeline import names
    from rarts.models import NETWORKS
    from rarts.search.algorithms import ALGORITHMS
    from rarts.spaces import SPACES
    from rarts.models.genotypes import PUBLISHED
    from rarts.report.tables import TABLES

    assert tuple(ALGORITHMS) == names.ALGORITHMS and tuple(SPACES) == names.SPACES
    assert tuple(NETWORKS) == names.NETWORKS and tuple(TABLES) == names.TABLES
    algorithm_enums = [e for e in _enums(yaml.safe_load(Path(SCHEMA).read_text())) if "darts1" in e]
    assert len(algorithm_enums) == 5
    assert all(tuple(e) in (names.ALGORITHMS, names.SEARCHES) for e in algorithm_enums), algorithm_enums
    published = [e for e in _enums(yaml.safe_load(Path(SCHEMA).read_text())) if "DARTS_V2" in e]
    assert published and all(sorted(e) == sorted(PUBLISHED) for e in published)


@pytest.mark.parametrize("module, absent", [
    ("rarts.search.run", ("torchvision", "mlflow", "matplotlib")),
    ("rarts.train.run", ("torchvision", "mlflow", "matplotlib")),
    ("rarts.train.width", ("torchvision", "mlflow", "matplotlib")),
    ("rarts.report.tables", ("torch", "mlflow", "matplotlib")),
    ("rarts.drawing.cells", ("torch", "mlflow", "pandas")),  # every search draws its cell with it
])
def test_job_modules_import_only_what_every_job_needs(module, absent):
    """The offline config runs 120 short jobs, each a new process: torchvision alone costs two
    seconds a start (MobileNetV2's module, needed only by the width jobs that build it), pandas
    a third of one (only the tables and table figures need it)."""
    import subprocess
    import sys

    code = f"import sys, {module}; print(' '.join(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing {module} loads {out.stdout.strip()}"


def test_every_config_key_has_a_description():
    """The schema documents every key a user sets (`description`, shown by the docs' config page)."""
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    undocumented = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.get("properties", {}).items():
                if isinstance(value, dict) and "description" not in value:
                    undocumented.append(f"{path}.{key}")
                walk(value, f"{path}.{key}")
            for name, value in node.get("$defs", {}).items():
                walk(value, f"$defs.{name}")
            if isinstance(node.get("additionalProperties"), dict):
                walk(node["additionalProperties"], f"{path}.*")

    walk(schema, "config")
    assert undocumented == []


@pytest.mark.slow
def test_a_slurm_run_without_a_gpu_partition_stops_before_submitting(tmp_path, cli_env):
    """Through the SLURM profile with the partitions left "": the run stops while the Snakefile is read,
    naming the key; told that the default partition has the GPUs, or run locally or as a dry run, it
    does not."""
    import subprocess

    from conftest import BIN
    from test_workflow import copy_workflow

    work = copy_workflow(tmp_path)
    (work / "default-gpus.yaml").write_text("cluster: {default_partition_has_gpus: true}\n")
    env = {k: v for k, v in cli_env.items() if not k.startswith(("SLURM_", "SBATCH_"))}
    target = "results/search/darts/rarts/seed0/genotype.json"

    def run(*args, files=("config/quick.yaml",), target=target):
        return subprocess.run([str(BIN / "snakemake"), *args, target, "--configfile", *files], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)

    # a target no rule makes: once the Snakefile is read the run fails at once, before the plugin starts
    nothing = "no/such/target.txt"
    stopped = run("--workflow-profile", "workflow/profiles/slurm", target=nothing)
    assert stopped.returncode != 0 and "config cluster.gpu_partition is empty" in stopped.stderr
    told = run("--workflow-profile", "workflow/profiles/slurm", files=("config/quick.yaml", "default-gpus.yaml"),
               target=nothing)
    assert "No rule to produce" in told.stderr and "gpu_partition is empty" not in told.stderr
    assert run("-n", "--workflow-profile", "workflow/profiles/slurm").returncode == 0  # a dry run shows the DAG
    assert run("-n", "--cores", "2").returncode == 0
