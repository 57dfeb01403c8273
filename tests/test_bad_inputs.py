"""One line for every bad file or value a user hands the CLI: it names the file (or option) and what is
wrong with it (missing, unreadable, not JSON, the wrong shape with the missing key named), never a
traceback. Each case runs the real `rarts` command."""

import json
import subprocess

import pytest

from conftest import REPO
from test_search_loop import _search_cmd, standin_split  # noqa: F401 (a fixture)

GENOTYPE = {"normal": [["sep_conv_3x3", 0]] * 8, "normal_concat": [2, 3, 4, 5],
            "reduce": [["max_pool_3x3", 0]] * 8, "reduce_concat": [2, 3, 4, 5]}
GENOTYPES = {  # file text, what the line must say
    "missing": (None, "no such JSON file"),
    "not JSON": ("{normal: [", "not valid JSON (line 1, column 2"),
    "a folder": ("<dir>", "cannot be read"),
    "wrong shape": (json.dumps({"normal": []}), "missing the key 'normal_concat'"),
    "a list": (json.dumps([1, 2]), "expected a JSON object"),
    "a bad edge": (json.dumps({**GENOTYPE, "normal": [["sep_conv_3x3"]]}), "is not an [operation, input] pair"),
    "an unknown operation": (json.dumps({**GENOTYPE, "reduce": [["conv_9x9", 0]]}), "unknown operation 'conv_9x9'"),
}


def one_line(proc, *says):
    err = proc.stderr.strip()
    assert proc.returncode != 0 and "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if "WARNING" not in line]
    assert len(lines) <= 2, err[-3000:]  # argparse adds its usage line above its error
    for text in says:
        assert text in lines[-1], err[-3000:]


def make(tmp_path, text):
    path = tmp_path / "cell.json"
    if text == "<dir>":
        path.mkdir()
    elif text is not None:
        path.write_text(text)
    return path


@pytest.mark.parametrize("case", GENOTYPES)
def test_a_bad_genotype_file_is_one_line(tmp_path, cli_env, case):
    text, says = GENOTYPES[case]
    path = make(tmp_path, text)
    proc = subprocess.run(["rarts", "params", "--net", "cifar", "--genotype", str(path)], env=cli_env,
                          capture_output=True, text=True)
    one_line(proc, "cell.json", says)


@pytest.mark.parametrize("case,text,says", [
    ("missing", None, "no such file"),
    ("not JSON", "[1, 2", "not valid JSON"),
    ("wrong shape", json.dumps({"train": [1, 2]}), "missing the key 'val'"),
])
def test_a_bad_search_split_is_one_line(tmp_path, cli_env, standin_split, case, text, says):  # noqa: F811
    root, _ = standin_split
    split = tmp_path / "my-split.json"  # (the fixture's own is split.json)
    if text is not None:
        split.write_text(text)
    proc = subprocess.run(_search_cmd(root, split, tmp_path / "out", tmp_path / "ck.pt"), env=cli_env,
                          capture_output=True, text=True, timeout=300)
    one_line(proc, str(split), says)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "tpu"])
def test_an_unknown_device_is_one_line(cli_env, device):
    proc = subprocess.run(["rarts", "--device", device, "params", "--net", "cifar"], env=cli_env,
                          capture_output=True, text=True)
    one_line(proc, f"unknown device {device!r}", "auto, cpu, cuda or cuda:N")


def test_a_device_in_a_spec_is_checked_too():
    from rarts.pipeline.errors import DeviceError
    from rarts.core.devices import resolve_device

    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        resolve_device("gpu")


def test_plan_of_an_unknown_target_gives_snakemakes_cause(cli_env):
    proc = subprocess.run(["rarts", "plan", "results/nothing.csv"], env=cli_env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "No rule to produce results/nothing.csv" in proc.stderr, proc.stderr[-2000:]


@pytest.mark.parametrize("text,says", [
    (None, "no such config file"),
    ("search:\n  darts: [1,\n", "line 3, column 1: not valid YAML"),
    ("search:\n\tdarts: 1\n", "line 2, column 1: not valid YAML"),
    ("- 1\n- 2\n", "a YAML mapping"),
])
def test_a_bad_config_overlay_is_one_line_with_its_line(tmp_path, cli_env, text, says):
    """What `make quick CONFIG=…` checks before Snakemake reads the overlay."""
    path = tmp_path / "mine.yaml"
    if text is not None:
        path.write_text(text)
    proc = subprocess.run(["rarts", "check-config", "config/quick.yaml", str(path)], env=cli_env,
                          capture_output=True, text=True, cwd=REPO)
    one_line(proc, "mine.yaml", says)


def test_a_missing_input_of_a_table_command_is_one_line(tmp_path, cli_env):
    proc = subprocess.run(["rarts", "reproduction", "--spec", "{}", "--inputs", str(tmp_path / "table1.csv"),
                           "--csv", str(tmp_path / "r.csv"), "--md", str(tmp_path / "r.md")],
                          env=cli_env, capture_output=True, text=True)
    one_line(proc, "table1.csv", "No such file or directory")
