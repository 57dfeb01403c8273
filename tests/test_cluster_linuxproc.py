"""The whole-tree case of tests/test_cluster.py's faults: under proctrack/linuxproc SLURM sends SIGTERM to
every process of a job (Snakemake's job step, the relay's target and the training itself), so the
training sees it twice; it still checkpoints once, inside the epoch, and the retry resumes there."""

import pytest

import test_cluster as tc
from slurm_cluster import LocalSlurm, Unavailable

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm")]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm-linuxproc"), "linuxproc")
    try:
        cluster.start()
    except (Unavailable, OSError) as exc:
        cluster.stop()
        pytest.skip(f"no local SLURM could be brought up: {exc}")
    tc._CLUSTER = cluster
    yield cluster
    tc._CLUSTER = None
    cluster.stop()


reference = tc.reference


def test_a_scancelled_training_checkpoints_mid_epoch_and_resumes_under_linuxproc(slurm, tmp_path, cli_env, reference):
    tc.test_a_scancelled_training_checkpoints_mid_epoch_and_resumes(slurm, tmp_path, cli_env, reference)
