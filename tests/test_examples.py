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
