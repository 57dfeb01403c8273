"""The examples run as a user runs them, learn, and resume from their checkpoints."""

import importlib.util
import json

import pytest

from conftest import REPO
from rarts.models.genotypes import DARTS_V1


def example(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("algo", ["darts1", "darts2", "milenas", "rarts"])
def test_a_search_of_ones_own_space_learns_and_resumes(tmp_path, algo):
    own = example("own_search")
    found, history = own.main(["--algo", algo, "--epochs", "2", "--out", str(tmp_path)])
    assert history[-1]["val_acc"] > 0.3 and len(found.ops) == 3 and set(found.ops) <= set(own.OPS)
    again, rerun = own.main(["--algo", algo, "--epochs", "2", "--out", str(tmp_path)])  # resumes: done
    assert rerun == history and again.ops == found.ops


def test_a_found_genotype_is_retrained(tmp_path):
    genotype = tmp_path / "genotype.json"
    genotype.write_text(json.dumps({**DARTS_V1.to_json(), "meta": {"algorithm": "darts1"}}))
    final, history = example("retrain_genotype").main(["--genotype", str(genotype), "--epochs", "2",
                                                       "--out", str(tmp_path / "run")])
    assert len(history) == 2 and final["acc"] > 0.5  # chance is 0.1


@pytest.mark.parametrize("name", ["own_search", "retrain_genotype"])
def test_an_example_says_its_cost_and_shows_its_progress(tmp_path, cli_env, name):
    """As a user runs it: `--help` has whole sentences and the expected time; a run prints a line an
    epoch; its default output lands under the ignored results/."""
    import subprocess
    import sys

    script = str(REPO / "examples" / f"{name}.py")
    help_text = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True).stdout
    assert "seconds on 2 CPU cores" in help_text
    description = help_text.split("\n\n")[1]
    assert description.rstrip().endswith(".") and "  " not in description.strip(), description
    run = subprocess.run([sys.executable, script, "--epochs", "2"], cwd=tmp_path, env=cli_env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "epoch 1/2" in run.stderr and "epoch 2/2" in run.stderr, run.stderr[-2000:]
    assert (tmp_path / "results" / "examples").is_dir() and not (tmp_path / "own_search").exists()


def test_a_space_needs_only_what_a_search_needs(tmp_path):
    """The example's space defines its network, its α and how α derives a genotype; random cells,
    drawing and the search settings come from the package's defaults."""
    import numpy as np

    own = example("own_search")
    space = own.ActivationSpace()
    found = space.random_genotype(np.random.default_rng(0))
    assert len(found.ops) == 3 and set(found.ops) <= set(own.OPS)
    assert space.random_genotype(np.random.default_rng(0)).ops == found.ops  # drawn from the rng given
    assert len(own.HP) == 4  # the settings it changes, not all seventeen
    space.draw(found, tmp_path / "cell.png", "found")  # a default figure: its brief() as text
    assert (tmp_path / "cell.png").stat().st_size > 1000


def test_search_settings_default_to_the_papers_and_name_a_typo(tmp_path):
    import yaml

    from rarts.pipeline.errors import InputError
    from rarts.search.hparams import PAPER, search_hp

    paper_config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["search"]["darts"]
    assert {k: paper_config[k] for k in PAPER} == PAPER  # one set of the paper's values, held together
    hp = search_hp({"epochs": 3, "rarts": {"beta": 0.5}})
    assert hp["epochs"] == 3 and hp["rarts"] == {"lam": 1.0, "beta": 0.5, "y_init": "copy"} and hp["w_lr"] == 0.025
    assert search_hp({"layers": 5})["layers"] == 5  # a space's own setting passes through
    with pytest.raises(InputError, match=r"unknown search setting 'w_lrr'; did you mean 'w_lr'"):
        search_hp({"w_lrr": 0.1})
    with pytest.raises(InputError, match=r"unknown search setting rarts.bta; did you mean 'beta'"):
        search_hp({"rarts": {"bta": 0.1}})
