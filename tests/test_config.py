import copy

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
    cfg = copy.deepcopy(paper())
    mutate(cfg)
    with pytest.raises(WorkflowError) as err:
        validate(cfg, SCHEMA)
    assert key in str(err.value)
