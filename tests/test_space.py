import subprocess

import numpy as np
import pytest
import torch

from rarts.spaces import DartsSearchSpace
from rarts.models.darts_ops import PRIMITIVES
from rarts.models.genotypes import DARTS_V1, DARTS_V2, Genotype, derive_cell, load_genotype


def test_params_cli_matches_official_search_network(cli_env):
    out = subprocess.run(["rarts", "params", "--net", "search"], capture_output=True, text=True,
                         check=True, env=cli_env).stdout
    assert int(out.strip().splitlines()[-1]) == 1930618  # official log: 1.930618 MB
    out = subprocess.run(["rarts", "params", "--net", "search", "--classes", "100"],
                         capture_output=True, text=True, check=True, env=cli_env).stdout
    assert int(out.strip().splitlines()[-1]) == 1953748


def test_network_shapes_and_alpha_kept_apart():
    space = DartsSearchSpace(init_channels=4, layers=5)
    net, arch = space.build_network(), space.init_arch()
    assert [a.shape for a in arch] == [(14, 8), (14, 8)]
    assert all(a.requires_grad for a in arch)
    ids = {id(p) for p in net.parameters()}
    assert not any(id(a) in ids for a in arch)
    assert [c.reduction for c in net.cells] == [False, True, False, True, False]
    assert net(torch.randn(2, 3, 16, 16), arch).shape == (2, 10)
    # search BNs are affine-free except the stem's
    for name, m in net.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d) and not name.startswith("stem"):
            assert not m.affine


def test_derivation_keeps_top2_edges_ignores_none_and_breaks_ties_low():
    w = np.full((14, 8), 0.1)
    none, sep3, skip = 0, PRIMITIVES.index("sep_conv_3x3"), PRIMITIVES.index("skip_connect")
    w[0, none] = 0.9  # `none` never counts
    w[1, sep3] = 0.5
    w[2, skip] = 0.3
    # node 1 (edges 2..4): all equal except edge 2 → keep edge 2 (input 0) and the lower of the tie
    gene = derive_cell(w)
    assert gene[0] == ("sep_conv_3x3", 1) and gene[1][1] == 0
    assert gene[2] == ("skip_connect", 0) and gene[3][1] == 1
    # an all-equal edge takes the first non-none op
    assert gene[1][0] == PRIMITIVES[1]


def test_uniform_alpha_derivation_matches_official_ordering():
    space = DartsSearchSpace()
    arch = [torch.zeros(14, 8), torch.zeros(14, 8)]
    g = space.derive(arch)
    assert g.normal == [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 1 + [
        ("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 3
    assert g.normal_concat == [2, 3, 4, 5]


def test_random_genotype_is_valid_and_seeded():
    space = DartsSearchSpace()
    g = space.random_genotype(np.random.default_rng(0))
    assert g == space.random_genotype(np.random.default_rng(0))
    for cell in (g.normal, g.reduce):
        assert len(cell) == 8
        for i in range(4):
            (o1, j1), (o2, j2) = cell[2 * i:2 * i + 2]
            assert j1 != j2 and 0 <= j1 < i + 2 and 0 <= j2 < i + 2
            assert "none" not in (o1, o2)


def test_genotypes_by_name_and_json_roundtrip(tmp_path):
    assert load_genotype("DARTS_V2") == DARTS_V2
    assert DARTS_V1.count("skip_connect") == {"normal": 3, "reduce": 3}
    path = tmp_path / "g.json"
    import json
    path.write_text(json.dumps({**DARTS_V1.to_json(), "meta": {"x": 1}}))
    assert load_genotype(str(path)) == DARTS_V1
    assert Genotype.from_json(DARTS_V2.to_json()) == DARTS_V2
    with pytest.raises(FileNotFoundError, match="DARTS_V2"):
        load_genotype("NOPE")
