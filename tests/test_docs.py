"""Every command the README and docs/ show runs as written, in a scratch copy of the project with the
offline config's data: as it is (the `rarts …` tools, the examples), as a dry run (Snakemake and the
make targets that run the pipeline), or not at all for a stated reason. A command a page adds that
this file does not know fails the test, so the docs cannot drift from what works."""

import os
import re
import shlex
import shutil
import subprocess

import pytest

from conftest import BIN, REPO
from test_workflow import copy_workflow

# one worker runs them all (`--dist loadfile`): they share a module-wide project copy
pytestmark = [pytest.mark.slow]

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SKIP = {
    "make test": "it is this suite",
    "make setup": "the suite runs inside the environment it makes",
    "make setup TORCH_INDEX=https://download.pytorch.org/whl/cu126": "PyTorch's index is out of reach here",
    "make setup TORCH_INDEX=registry": "it reinstalls torch; tests/test_setup.py reads what it runs (make -n)",
    "make gpu-check": "a GPU node's command; its CPU run at the tiny size is tests/test_plan.py's",
    'make controller CONFIG=site.yaml CONTROLLER_FLAGS="-p cpu -t 7-00:00:00"':
        "it submits a SLURM job; tests/test_cluster.py runs its script on the local SLURM (and test_setup its make line)",
    "mlflow ui --backend-store-uri sqlite:///results/mlflow.db": "starts a server (tests/test_mlflow_server.py runs one)",
    "rarts mlflow-relocate results": "needs a moved store: tests/test_tracking.py moves one and runs it",
    "python benchmarks/search_step.py --size small --threads 1": "80 s of timing; tests/test_benchmarks.py runs it at the tiny size",
    "python benchmarks/search_step.py --size paper --device cuda --amp --channels-last": "needs a GPU",
}
# the files the commands name, as a user would have them: a config overlay, a site file, a search
FILES = {"mine.yaml": "search:\n  darts:\n    seeds: [0]\n",
         "results/search/darts/rarts/seed0/genotype.json": None,
         # what the documented `cp` gives: the tests of one page need not run in its order
         "site.yaml": (REPO / "config" / "site.example.yaml").read_text()}


def documented() -> list[str]:
    commands = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
            for line in block.splitlines():
                line = line.split("  #")[0].strip()
                if line and not line.startswith("#") and line not in commands:
                    commands.append(line)
    return commands


def variables(command: str) -> tuple[dict, str]:
    """A command's leading `NAME=value` words (its environment) and the rest."""
    words, env = shlex.split(command), {}
    while words and re.fullmatch(r"[A-Za-z_]\w*=\S*", words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    return env, shlex.join(words)


def how(command: str) -> list[str] | None:
    """The command as the test runs it, or None to skip it (SKIP says why)."""
    if command in SKIP:
        return None
    words = shlex.split(variables(command)[1])
    if words[0] == "snakemake":
        return [str(BIN / "snakemake"), "-n", *words[1:]]
    if words[:2] in (["make", "quick"], ["make", "rehearsal"], ["make", "data"]):
        return ["make", *words[1:], "STAMP=", f"BIN={BIN}", "SMK_FLAGS=-n"]
    if words[0] in ("rarts", "python", "cp"):
        return [str(BIN / words[0]) if words[0] != "cp" else "cp", *words[1:]]
    raise AssertionError(f"a documented command this test does not know how to run: {command!r}")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from rarts.models.genotypes import DARTS_V2

    root = copy_workflow(tmp_path_factory.mktemp("project"))
    for name in ("Makefile", "examples", "benchmarks"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text if text is not None else __import__("json").dumps(DARTS_V2.to_json()))
    return root


@pytest.mark.parametrize("command", documented())
def test_a_documented_command_runs_as_written(project, cli_env, command):
    cmd = how(command)
    if cmd is None:
        pytest.skip(SKIP[command])
    env = {**cli_env, **variables(command)[0], "PATH": f"{BIN}{os.pathsep}{cli_env['PATH']}"}
    proc = subprocess.run(cmd, cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Traceback" not in out, f"{command}\n{out[-3000:]}"
    if command.startswith("rarts plan"):
        assert "reference table shipped with rarts" in out and "make gpu-check" in out


def test_every_skip_is_still_documented():
    assert set(SKIP) <= set(documented()), set(SKIP) - set(documented())


def test_the_readme_is_a_front_door():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for page in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (REPO / page).is_file(), page
