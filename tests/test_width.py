"""Width search end to end on stand-in data: ImageNet-R, the baseline / Network Slimming / width
search / random pruning jobs, exact resume of a fine-tuning, and Tables 5 and 6."""

import pandas as pd
import pytest
import torch

from rarts.pipeline.io import read_json, write_json
from rarts.models import prunable
from rarts.models.pruning import choose_masks
from rarts.train.width import width_train_main

TRAIN_HP = dict(epochs=2, batch_size=32, schedule="multistep", milestones=[0.5, 0.75], lr=0.1, lr_min=0.0,
                lr_gamma=0.1, momentum=0.9, weight_decay=1e-4, grad_clip=0.0, resolution=16, crop_padding=2,
                hflip=True, cutout=0, max_steps_per_epoch=4, amp=False, channels_last=False, seed=0, sparsity=0.0)
SEARCH_HP = dict(algorithms=["rarts"], resolution=16, epochs=1, batch_size=16, max_steps_per_epoch=4,
                 eval_batches=1, w_lr=0.1, w_lr_min=0.0, w_momentum=0.9, w_weight_decay=1e-4, w_nesterov=False,
                 grad_clip=5.0, arch_lr=0.05, arch_betas=[0.5, 0.999], arch_weight_decay=0.0, l1=0.0,
                 augment={"crop_padding": 2, "hflip": False}, milenas={"lam": 1.0},
                 darts2={"perturbed_bn_stats": "update"},
                 rarts={"lam": 1.0, "beta": 1.0, "y_init": "copy"})
NET = {"name": "preresnet", "kw": {"depth": 11}}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from rarts.data import standin
    from rarts.data.split import write_split

    root = tmp_path_factory.mktemp("standins")
    standin.write_cifar_standin("cifar10", root / "cifar10")
    standin.write_imagefolder_standin(root / "imagenet")
    write_split(root / "split.json", "cifar10", 1438, seed=0)  # the stand-in's training images
    return root


def job(data, hp, **extra):
    return {"dataset": "cifar10", "root": str(data / "cifar10"), "standin": True, "device": "cpu",
            "threads": 1, "num_classes": 10, "net": NET, "hp": hp, **extra}


def test_imagenet_r_draws_classes_saves_them_and_loads_as_tensors(tmp_path, data):
    from rarts.data import DatasetError, imagenet, imagenet_r, load_images

    spec = {"root": str(data / "imagenet"), "num_classes": 4, "seed": 3, "resolution": 16, "workers": 0}
    summary = imagenet_r.materialise(spec, tmp_path / "inr")
    assert summary["classes"] == imagenet.draw_subset_classes(data / "imagenet", 4, 3) == \
        imagenet_r.classes(tmp_path / "inr") and summary["standin"]
    x, y = load_images("imagenet_r", tmp_path / "inr", train=True)
    n_files = sum(len(list((data / "imagenet" / "train" / c).iterdir())) for c in summary["classes"])
    assert x.dtype == torch.uint8 and x.shape == (n_files, 3, 16, 16) and set(y.tolist()) == {0, 1, 2, 3}
    assert load_images("imagenet_r", tmp_path / "inr", train=False)[0].shape[1:] == (3, 16, 16)
    with pytest.raises(DatasetError, match=str(tmp_path / "nowhere")):
        load_images("imagenet_r", tmp_path / "nowhere")


def test_baseline_network_slimming_width_search_and_random_pruning(tmp_path, data):
    from rarts.search.run import search_main

    base = width_train_main("base", job(data, TRAIN_HP), tmp_path / "base", tmp_path / "ck" / "base.pt")
    assert base["prc"] == 0 and base["widths"] == prunable.build("preresnet", 10, depth=11).score_shapes()
    sparse = width_train_main("sparse", job(data, {**TRAIN_HP, "sparsity": 1e-3}), tmp_path / "sparse",
                              tmp_path / "ck" / "sparse.pt")
    assert sparse["params"] == base["params"] and sparse["flops"] == base["flops"]

    # Network Slimming: prune the sparse network's BN scales at 40% and fine-tune the thin network
    ns = width_train_main("ns", job(data, TRAIN_HP), tmp_path / "ns", tmp_path / "ck" / "ns.pt",
                          source=tmp_path / "sparse" / "model.pt", rule="ratio", value=0.4)
    assert ns["scored_by"] == "BN scales" and ns["prc"] == pytest.approx(0.4, abs=0.01)
    assert ns["params"] < base["params"] and ns["flops"] < base["flops"]
    model, _ = prunable.load(tmp_path / "sparse" / "model.pt")
    expected = choose_masks("ratio", prunable.bn_scales(model), 0.4)
    assert ns["widths"] == [int(m.sum()) for m in expected]
    thin, _ = prunable.load(tmp_path / "ns" / "model.pt")
    assert thin.widths()[1::3] == ns["widths"][1::3]  # the saved network is the thin one

    # width search (RARTS over channel scores), then prune by |score| at 40%
    search_hp = {**SEARCH_HP, "net": NET, "prune": {"rule": "ratio", "value": 0.4}}
    search_main("width", "rarts", 0, job(data, search_hp), data / "split.json", tmp_path / "search",
                tmp_path / "ck" / "search.pt")
    searched, saved = prunable.load(tmp_path / "search" / "searched.pt")
    assert saved["scores"] is not None and any(not torch.all(s == 1) for s in saved["scores"])
    hist = read_json(tmp_path / "search" / "history.json")
    assert len(hist["epochs"][0]["alpha"]["mean_abs_score"]) == len(searched.score_shapes())
    rarts = width_train_main("rarts", job(data, TRAIN_HP), tmp_path / "rarts", tmp_path / "ck" / "rarts.pt",
                             source=tmp_path / "search" / "searched.pt", rule="ratio", value=0.4)
    assert rarts["scored_by"] == "searched channel scores" and rarts["prc"] == pytest.approx(0.4, abs=0.01)
    assert rarts["widths"] == [int(m.sum()) for m in choose_masks("ratio", saved["scores"], 0.4)]

    # random pruning of the baseline at RARTS's per-layer widths
    rand = width_train_main("random", job(data, TRAIN_HP), tmp_path / "random", tmp_path / "ck" / "random.pt",
                            source=tmp_path / "base" / "model.pt", rule="random",
                            like=tmp_path / "rarts" / "genotype.json")
    assert rand["widths"] == rarts["widths"] and rand["prc"] == rarts["prc"]
    keep = [read_json(tmp_path / n / "genotype.json")["keep"] for n in ("random", "rarts")]
    assert keep[0] != keep[1]


def test_fine_tuning_resumes_exactly_after_a_kill(tmp_path, data):
    width_train_main("src", job(data, {**TRAIN_HP, "epochs": 1}), tmp_path / "src", tmp_path / "src.pt")
    args = dict(source=tmp_path / "src" / "model.pt", rule="ratio", value=0.5)
    ref = width_train_main("ft", job(data, TRAIN_HP), tmp_path / "ref", tmp_path / "ref.pt", **args)

    class Killed(Exception):
        pass

    def kill(step):
        if step == 6:  # epoch 2, step 2: after epoch 1's checkpoint
            raise Killed

    with pytest.raises(Killed):
        width_train_main("ft", job(data, TRAIN_HP), tmp_path / "run", tmp_path / "run.pt", on_step=kill, **args)
    assert not (tmp_path / "run" / "metrics.json").exists()
    resumed = width_train_main("ft", job(data, TRAIN_HP), tmp_path / "run", tmp_path / "run.pt", **args)
    for key in ("train_loss", "test_loss", "test_acc", "lr"):
        assert [h[key] for h in ref["history"]] == [h[key] for h in resumed["history"]], key
    a, b = (torch.load(tmp_path / d / "model.pt", weights_only=False)["state"] for d in ("ref", "run"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def _metrics(path, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {"test_error": 10.0, "best_test_error": kw.get("test_error", 10.0) - 0.5, "params": 1000,
           "params_M": 0.001, "flops": 5000, "prc": 0.0,
           "prc_mean_over_pruned_layers": 0.0, "device": "cpu", "history": [{"classes": 5}], **kw}
    write_json(path, rec)
    return str(path)


def test_tables_5_and_6_keep_the_paper_numbers_in_paper_columns(tmp_path):
    from rarts.report.tables import table5, table6

    w5 = {"datasets": ["cifar10"], "net": NET, "search": SEARCH_HP}
    inputs = [_metrics(tmp_path / "t5" / "cifar10" / m / "seed0" / "metrics.json", test_error=e, prc=p)
              for m, e, p in (("baseline", 7.0, 0.0), ("ns-40", 8.0, 0.4), ("rarts-40", 6.5, 0.4))]
    df = table5({"standin": False, "width": w5, "sparsity": 1e-5}, inputs, tmp_path / "t5.csv", tmp_path / "t5.md")
    ours = df[df.source == "ours"].set_index("run")
    assert ours.test_error_mean.to_dict() == {"baseline": 7.0, "ns-40": 8.0, "rarts-40": 6.5}
    assert ours.paper_test_error.to_dict() == {"baseline": 5.42, "ns-40": 5.08, "rarts-40": 4.58}
    assert ours.prc_pct["rarts-40"] == pytest.approx(40.0)
    assert ours.test_error_best_epoch_on_test_mean.to_dict() == {"baseline": 6.5, "ns-40": 7.5, "rarts-40": 6.0}
    tas = df[df.source == "paper"]
    assert tas.method.tolist() == ["TAS (quoted from the paper)"] and tas.test_error_mean.isna().all()
    assert pd.read_csv(tmp_path / "t5.csv").shape == df.shape

    w6 = {"seeds": [0, 1], "net": {"name": "mobilenetv2", "kw": {"width_mult": 1.0}}, "threshold": 0.01,
          "random_like": "rarts", "search": {**SEARCH_HP, "l1": 1e-4}}
    inputs = []
    for m, errs, prcs in (("baseline", (10, 12), (0, 0)), ("random", (11, 13), (0.7, 0.72)),
                          ("rarts", (8, 9), (0.7, 0.72))):
        for s, (e, p) in enumerate(zip(errs, prcs)):
            path = tmp_path / "t6" / "imagenet_r" / m / f"seed{s}" / "metrics.json"
            inputs.append(_metrics(path, test_error=e, prc_mean_over_pruned_layers=p))
    df = table6({"standin": True, "width": w6}, inputs, tmp_path / "t6.csv", tmp_path / "t6.md")
    rows = df.set_index("run")
    assert rows.test_error_mean.to_dict() == {"baseline": 11.0, "random": 12.0, "rarts": 8.5}
    assert rows.test_error["rarts"] == "8.50 ± 0.71" and rows.prc_pct_mean["rarts"] == pytest.approx(71.0)
    assert rows.paper_test_error["rarts"] == "8.2 ± 1.9" and rows.prc_pct["baseline"] == "–"
    notes = (tmp_path / "t6.md").read_text()
    assert "STAND-IN" in notes and "Mean ± std over seeds [0, 1]." in notes
    assert rows.chance_error["rarts"] == 80.0 and "chance_error" in (tmp_path / "t6.md").read_text()
    # the offline config's one seed: a single run per row, and the notes say so
    df = table6({"standin": True, "width": {**w6, "seeds": [0]}}, [i for i in inputs if "seed0" in i],
                tmp_path / "t6s.csv", tmp_path / "t6s.md")
    assert df.set_index("run").test_error["rarts"] == "8.00" and (df.n_runs == 1).all()
    assert "One seed (0)." in (tmp_path / "t6s.md").read_text() and "± std" not in (tmp_path / "t6s.md").read_text()


def _mobilenet_search(tmp_path, algo, l1, on_step=None, name="ck"):
    from rarts.search.loop import SearchData, SearchLoop
    from rarts.spaces.width import WidthSpace

    space = WidthSpace("mobilenetv2", num_classes=5, net_kw={"width_mult": 0.25},
                       prune={"rule": "threshold", "value": 0.9})
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(48, 3, 16, 16, generator=g), torch.randint(0, 5, (48,), generator=g)
    hp = {**SEARCH_HP, "epochs": 2, "batch_size": 8, "max_steps_per_epoch": 3, "l1": l1}
    loop = SearchLoop(space, algo, 0, hp, SearchData(x[:24], y[:24], x[24:], y[24:]), "cpu",
                      tmp_path / f"{name}.pt", arch_penalty=space.arch_penalty(algo, hp), on_step=on_step)
    loop.run()
    return loop


@pytest.mark.parametrize("algo", ["darts1", "darts2", "rarts"])
def test_l1_penalty_adds_weight_times_sign_to_every_score_gradient(tmp_path, algo, monkeypatch):
    """Same seed, same batches: the first α step's gradient with the ℓ1 term minus the one without
    is exactly l1·sign(γ) (all scores start at +1)."""
    from rarts.search.algorithms import SearchAlgorithm

    first_grads = {}
    original = SearchAlgorithm.apply_arch_step

    def capture(self, grads):
        original(self, grads)
        first_grads.setdefault(self.arch_penalty is not None, [a.grad.clone() for a in self.arch])

    monkeypatch.setattr(SearchAlgorithm, "apply_arch_step", capture)
    _mobilenet_search(tmp_path, algo, 0.0, name="plain")
    _mobilenet_search(tmp_path, algo, 0.3, name="l1")
    for with_l1, without in zip(first_grads[True], first_grads[False]):
        # float32 rounding at the gradient's size (DARTS-2's finite difference makes it large here)
        assert ((with_l1 - without - 0.3).abs() <= 1e-5 + 5e-7 * without.abs()).all()


def test_width_search_resumes_exactly_after_a_kill(tmp_path):
    ref = _mobilenet_search(tmp_path, "rarts", 0.5, name="ref").algo

    class Killed(Exception):
        pass

    def kill(step):
        if step == 5:  # epoch 2, step 2
            raise Killed

    with pytest.raises(Killed):
        _mobilenet_search(tmp_path, "rarts", 0.5, on_step=kill, name="run")
    resumed = _mobilenet_search(tmp_path, "rarts", 0.5, name="run").algo
    assert all(torch.equal(a, b) for a, b in zip(ref.arch, resumed.arch))
    for net in ("net", "net_y"):
        sa, sb = ref.networks()[net].state_dict(), resumed.networks()[net].state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
