"""The width-search networks (ResNet-164, MobileNetV2) with channel scores, real pruning to a
thinner network, FLOPs, the pruning rules, and a width search through the shared loop."""

import subprocess

import pytest
import torch

from rarts.models.preresnet import PreResNet, default_cfg, prune
from rarts.models.params import n_params
from rarts.models.pruning import bn_sparsity_hook, choose_masks, global_masks, prc, threshold_masks


def test_resnet164_size_and_cli(cli_env):
    assert len(default_cfg()) == 163
    out = subprocess.run(["rarts", "params", "--net", "resnet164"], capture_output=True, text=True,
                         check=True, env=cli_env).stdout
    assert int(out.strip().splitlines()[-1]) == n_params(PreResNet()) == 1703258  # "1.7 M"


def _randomise_bn(model, g):
    for bn in model.bns():
        bn.running_mean.normal_(0, 0.1, generator=g)
        bn.running_var.uniform_(0.5, 1.5, generator=g)
        bn.weight.data.uniform_(0.1, 1.0, generator=g)
        bn.bias.data.normal_(0, 0.1, generator=g)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_thin_network_equals_scored_network_with_removed_scores_zeroed(mode):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = PreResNet(depth=20, num_classes=7)  # the same family, 2 blocks per stage
    _randomise_bn(model, g)
    scores = [torch.rand(c, generator=g) + 0.1 for c in model.score_shapes()]
    masks = global_masks(scores, 0.4)
    thin = prune(model, masks, scores)
    assert n_params(thin) < n_params(model)
    zeroed = [s * m for s, m in zip(scores, masks)]
    x = torch.randn(4, 3, 16, 16, generator=g)
    model.train(mode == "train")
    thin.train(mode == "train")
    with torch.no_grad():
        assert torch.allclose(thin(x), model(x, zeroed), atol=1e-5)


def test_global_threshold_prunes_the_requested_ratio_and_prc():
    scores = [torch.tensor([0.1, 0.5, 0.9, 0.3]), torch.tensor([0.2, 0.8, 0.05, 0.7, 0.6, 0.4])]
    masks = global_masks(scores, 0.4)  # resprune.py: threshold = sorted[int(10 · 0.4)] = 0.4, kept if above
    assert sum(int(m.sum()) for m in masks) == 5
    assert masks[0].tolist() == [False, True, True, False]
    r = prc(masks)
    assert r["overall"] == pytest.approx(0.5) and r["mean_over_pruned_layers"] == pytest.approx((0.5 + 3 / 6) / 2)
    assert threshold_masks([torch.tensor([0.0, 1e-4, 0.5])], 1e-3)[0].tolist() == [False, False, True]


def test_sparsity_hook_adds_s_sign_gamma_to_bn_grads():
    model = PreResNet(depth=11, num_classes=3)
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    before = model.bn.weight.grad.clone()
    model.bn.weight.data[0] = -1.0
    bn_sparsity_hook(1e-4)(model)
    expected = before + 1e-4 * torch.sign(model.bn.weight.detach())
    assert torch.allclose(model.bn.weight.grad, expected)


def test_rarts_width_search_runs_through_the_shared_loop_and_prunes(tmp_path):
    from rarts.search.loop import SearchData, SearchLoop
    from rarts.spaces.width import WidthSpace

    space = WidthSpace("preresnet", num_classes=10, net_kw={"depth": 11}, prune={"rule": "ratio", "value": 0.4})
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g)
    hp = dict(epochs=1, batch_size=8, max_steps_per_epoch=2, eval_batches=1, w_lr=0.1, w_lr_min=0.0,
              w_momentum=0.9, w_weight_decay=1e-4, w_nesterov=False, grad_clip=5.0, arch_lr=1e-2,
              arch_betas=[0.5, 0.999], arch_weight_decay=0.0, augment={"crop_padding": 0, "hflip": False},
              milenas={"lam": 1.0},
              darts2={"perturbed_bn_stats": "update"}, rarts={"lam": 1.0, "beta": 1.0, "y_init": "copy"})
    loop = SearchLoop(space, "rarts", 0, hp, SearchData(x[:16], y[:16], x[16:], y[16:]), "cpu", tmp_path / "c.pt")
    loop.run()
    scores = loop.algo.arch
    assert any(not torch.all(s == 1) for s in scores)  # the scores moved: they are being searched
    genotype = space.derive(scores)
    assert genotype.to_json()["prc"]["overall"] == pytest.approx(0.4, abs=0.02)
    thin = prune(loop.algo.net, genotype.masks, [s.detach() for s in scores])
    zeroed = [s.detach() * m for s, m in zip(scores, genotype.masks)]
    loop.algo.net.eval()
    thin.eval()
    with torch.no_grad():
        assert torch.allclose(thin(x[:4]), loop.algo.net(x[:4], zeroed), atol=1e-5)
    space.draw(genotype, tmp_path / "w.png", "widths")
    assert (tmp_path / "w.png").stat().st_size > 0


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_mobilenet_v2_thin_equals_scored_with_removed_scores_zeroed(mode):
    from rarts.models.mobilenet import ScoredMobileNetV2, prune as prune_mbv2, scored_blocks

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    model = ScoredMobileNetV2(num_classes=20, width_mult=0.35)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
    shapes = model.score_shapes()
    assert len(shapes) == 16 and len(scored_blocks(model.net)) == 16
    # float64 throughout (folding included): train-mode BN over 3 samples at 1×1 amplifies rounding
    model = model.double()
    scores = [torch.rand(c, generator=g, dtype=torch.float64) * 2 - 0.5 for c in shapes]  # some < 0, some > 1
    masks = global_masks(scores, 0.5)
    thin = prune_mbv2(model, masks, scores)
    assert n_params(thin) < n_params(model)
    x = torch.randn(3, 3, 32, 32, generator=g, dtype=torch.float64)
    model.train(mode == "train")
    thin.train(mode == "train")
    with torch.no_grad():  # the classifier's dropout draws the same mask for both
        torch.manual_seed(5)
        got = thin(x, [torch.ones(int(m.sum()), dtype=torch.float64) for m in masks])
        torch.manual_seed(5)
        assert torch.allclose(got, model(x, [s * m for s, m in zip(scores, masks)]), atol=1e-8)


def test_flops_count_a_multiply_add_as_two_and_shrink_with_pruning():
    from rarts.models.params import n_flops

    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert n_flops(conv, (3, 10, 10)) == 2 * 3 * 8 * 9 * 10 * 10
    assert n_flops(PreResNet(), (3, 32, 32)) == 495_293_440  # NS reports 4.99e8 for ResNet-164
    model = PreResNet(depth=20, num_classes=10)
    thin = prune(model, global_masks([bn.weight + torch.rand(len(bn.weight)) for bn in model.bns()], 0.5))
    assert n_flops(thin, (3, 32, 32)) < n_flops(model, (3, 32, 32))


@pytest.mark.parametrize("name,kw", [("preresnet", {"depth": 20}), ("mobilenetv2", {"width_mult": 0.35})])
def test_saved_thin_network_loads_back_identical(tmp_path, name, kw):
    from rarts.models import prunable

    torch.manual_seed(0)
    model = prunable.build(name, 7, **kw).eval()
    scores = [torch.rand(c) + 0.05 for c in model.score_shapes()]
    thin = prunable.prune(name, model, choose_masks("ratio", scores, 0.5), scores).eval()
    prunable.save(tmp_path / "m.pt", name, 7, kw, thin)
    loaded, saved = prunable.load(tmp_path / "m.pt")
    loaded.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), thin(x))
    assert loaded.widths() == thin.widths() != model.widths() and saved["scores"] is None


def test_pruning_rules_ratio_threshold_random_and_one_channel_kept():

    scores = [torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.9, 0.1, 0.5, 0.7])]
    # threshold: every score of layer 0 is ≤ ε, yet the layer keeps one channel (stays connected)
    t = choose_masks("threshold", scores, 0.2)
    assert [int(m.sum()) for m in t] == [1, 3]
    r = choose_masks("ratio", scores, 0.6)  # the threshold is sorted[int(7 · 0.6)] = 0.5
    assert r[1].tolist() == [True, False, False, True] and int(r[0].sum()) == 1
    like = [torch.tensor([True, False, False]), torch.tensor([True, True, False, False])]
    rand = [choose_masks("random", scores, like=like, seed=s) for s in (0, 1, 2)]
    assert all([int(m.sum()) for m in masks] == [1, 2] for masks in rand)  # like's per-layer widths
    assert len({tuple(torch.cat(m).tolist()) for m in rand}) > 1  # and random channels
    assert all(m.all() for m in choose_masks("none", scores))
    with pytest.raises(ValueError, match="unknown pruning rule"):
        choose_masks("magnitude", scores)


def test_l1_penalty_gradient_is_weight_times_sign():
    from rarts.spaces.penalties import L1Penalty

    a = [torch.tensor([0.5, -2.0], requires_grad=True), torch.tensor([3.0], requires_grad=True)]
    penalty = L1Penalty(0.1)(a)
    assert penalty.item() == pytest.approx(0.1 * 5.5)
    grads = torch.autograd.grad(penalty, a)
    assert grads[0].tolist() == pytest.approx([0.1, -0.1]) and grads[1].tolist() == pytest.approx([0.1])


def resprune_masks(bns_weight: list[torch.Tensor], percent: float) -> list[torch.Tensor]:
    """Network Slimming's `resprune.py`, written out independently: gather |γ| of every BN, sort, take
    the value at index int(total · percent) as the threshold, keep γ.abs() > threshold."""
    total = sum(w.shape[0] for w in bns_weight)
    bn = torch.zeros(total)
    index = 0
    for w in bns_weight:
        size = w.shape[0]
        bn[index:(index + size)] = w.abs().clone()
        index += size
    y, _ = torch.sort(bn)
    thre = y[int(total * percent)]
    return [w.abs().gt(thre) for w in bns_weight]


@pytest.mark.parametrize("percent", [0.4, 0.6])
def test_network_slimming_keeps_exactly_the_channels_resprune_keeps_on_resnet164(percent):
    """ResNet-164 with random BN scales (and ties: a tenth of the scales share a few values): the masks
    Network Slimming's rule gives (Table 5's NS rows, and RARTS's fixed-ratio width search) equal
    resprune.py's, channel for channel."""
    g = torch.Generator().manual_seed(int(percent * 10))
    model = PreResNet(depth=164, num_classes=10)
    for bn in model.bns():
        bn.weight.data.uniform_(-1.0, 1.0, generator=g)
        tied = torch.rand(bn.num_features, generator=g) < 0.1
        bn.weight.data[tied] = torch.tensor([0.25, -0.5, 0.75])[torch.randint(0, 3, (int(tied.sum()),), generator=g)]
    weights = [bn.weight.detach() for bn in model.bns()]
    ours = choose_masks("ratio", prunable_bn_scales(model), percent)
    official = resprune_masks(weights, percent)
    assert all(torch.equal(a, b) for a, b in zip(ours, official))
    total = sum(len(w) for w in weights)
    assert sum(int((~m).sum()) for m in ours) >= int(total * percent) + 1  # the channel at the index goes too


def prunable_bn_scales(model):
    from rarts.models import prunable

    return prunable.bn_scales(model)
