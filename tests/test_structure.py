"""The package's shape: its imports run one way (no module reaches itself through others, in-function
imports included), and the protocols the loop and the search stand on are declared in code."""

import ast
import re
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "rarts"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports (every import statement, at any depth)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from a.b import c`: c is a module of its own when there is one, else a name in a.b
                targets |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                            for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "rarts.spaces.darts" in graph["rarts.spaces"]  # the walk sees the package
    assert cycles(graph) == []


def test_the_walk_finds_a_cycle_when_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_models_never_import_spaces_and_figures_never_import_torch_modules():
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("rarts.models"):
            assert not any(t.startswith("rarts.spaces") for t in targets), (name, targets)
    assert not any(t.startswith(("rarts.models", "rarts.spaces")) for t in graph["rarts.drawing.cells"])


def test_a_space_lacking_a_method_fails_when_built():
    from rarts.spaces.base import SearchSpace

    class Half(SearchSpace):
        name = "half"

        def build_network(self):
            return None

        def init_arch(self, device="cpu"):
            return []

    with pytest.raises(TypeError, match="derive"):  # what a search needs; drawing and the rest have defaults
        Half()


def test_a_job_lacking_a_method_fails_when_built():
    from rarts.core.engine import EpochLoop
    from rarts.search.algorithms import SearchAlgorithm

    class NoState(EpochLoop):
        def train_step(self):
            return None

    with pytest.raises(TypeError, match="job_state"):
        NoState("x", "x", 1, 1, "cpu", "ck.pt", {})

    class NoStep(SearchAlgorithm):
        pass

    with pytest.raises(TypeError, match="step"):
        NoStep(None, {}, "cpu")


# the package's layers, bottom first: a module imports only its own layer and those below it
LAYERS = ("rarts.pipeline", "rarts.core", "rarts.models", "rarts.data", "rarts.drawing", "rarts.spaces",
          "rarts.search", "rarts.train", "rarts.measure", "rarts.report", "rarts.planning", "rarts.cli")


def layer(module: str) -> int:
    return next((i for i, top in enumerate(LAYERS) if module == top or module.startswith(top + ".")), len(LAYERS))


def upward(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """The imports that run from a layer to a higher one."""
    return [(m, t) for m, targets in graph.items() for t in targets if layer(t) > layer(m) and m != "rarts.__main__"]


def test_imports_only_go_down_the_layers():
    graph = import_graph()
    assert {layer(m) for m in graph if m not in ("rarts", "rarts.__main__")} == set(range(len(LAYERS)))
    assert upward(graph) == []


def test_the_layer_check_sees_an_upward_import():
    graph = {"rarts.pipeline.costs": {"rarts.data.split"}, "rarts.report.tables": {"rarts.pipeline.io"}}
    assert upward(graph) == [("rarts.pipeline.costs", "rarts.data.split")]


def test_every_subcommand_has_one_entry_and_the_rules_run_exactly_those_marked_so():
    from rarts.cli import COMMANDS
    from rarts.pipeline.commands import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)
    shells = " ".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    run_by_rules = {name for name in COMMANDS if re.search(rf"rarts(?:\s+--\S+(?:\s+(?!-)\S+)?)*\s+{name}\s", shells)}
    assert run_by_rules == {name for name, c in COMMANDS.items() if c.rule}
