import numpy as np
import pytest
import torch

from rarts.data import cifar, imagenet, split, standin
from rarts.pipeline.errors import DatasetError
from rarts.data.stream import BatchStream, augment


def _tiny(n, classes, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, classes, n)


@pytest.fixture
def tiny_cifar10_archive(tmp_path, monkeypatch):
    """A 30-image CIFAR-10 archive in the official layout, with its MD5 made the expected one."""
    train, test = _tiny(25, 10), _tiny(5, 10, seed=1)
    src = cifar.write_cifar("cifar10", tmp_path / "src", train, test, [f"c{i}" for i in range(10)])
    archive = cifar.write_cifar_archive("cifar10", src, tmp_path / "root" / "cifar-10-python.tar.gz")
    spec = cifar.SPECS["cifar10"]
    monkeypatch.setitem(cifar.SPECS, "cifar10", spec.__class__(**{**spec.__dict__, "md5": cifar._md5(archive)}))
    return tmp_path / "root", train, test


def test_archive_is_checked_extracted_and_read_as_uint8(tiny_cifar10_archive):
    root, train, test = tiny_cifar10_archive
    x, y = cifar.load_cifar("cifar10", root, train=True)
    assert x.dtype == torch.uint8 and x.shape == (25, 3, 32, 32)
    assert torch.equal(x, torch.from_numpy(train[0])) and y.tolist() == train[1].tolist()
    xt, yt = cifar.load_cifar("cifar10", root, train=False)
    assert xt.shape == (5, 3, 32, 32) and yt.tolist() == test[1].tolist()
    assert cifar.class_names("cifar10", root)[3] == "c3"
    assert not cifar.is_standin("cifar10", root)


def test_checksum_mismatch_names_path_and_expected_md5(tmp_path):
    train, test = _tiny(10, 10), _tiny(2, 10)
    src = cifar.write_cifar("cifar10", tmp_path / "src", train, test, ["c"] * 10)
    archive = cifar.write_cifar_archive("cifar10", src, tmp_path / "root" / "cifar-10-python.tar.gz")
    with pytest.raises(DatasetError) as err:
        cifar.ensure_cifar("cifar10", tmp_path / "root", download=False)
    msg = str(err.value)
    assert str(archive) in msg and cifar.SPECS["cifar10"].md5 in msg and "checksum" in msg


def test_missing_data_names_the_path_and_how_to_place_it(tmp_path):
    with pytest.raises(DatasetError) as err:
        cifar.load_cifar("cifar100", tmp_path / "nowhere", download=False)
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "cifar-100-python.tar.gz") in msg
    assert "eb9058c3a382ffc7106e4002c42a8d85" in msg and "https://" in msg


def test_cifar100_format_uses_fine_labels(tmp_path):
    train, test = _tiny(20, 100), _tiny(4, 100)
    cifar.write_cifar("cifar100", tmp_path, train, test, [f"f{i}" for i in range(100)])
    x, y = cifar.load_cifar("cifar100", tmp_path)
    assert x.shape == (20, 3, 32, 32) and y.tolist() == train[1].tolist()


def test_digits_standin_goes_through_the_cifar_loader(tmp_path):
    standin.write_cifar_standin("cifar10", tmp_path)
    x, y = cifar.load_cifar("cifar10", tmp_path)
    xt, _ = cifar.load_cifar("cifar10", tmp_path, train=False)
    assert len(x) + len(xt) == 1797 and x.shape[1:] == (3, 32, 32)
    assert set(y.tolist()) == set(range(10))
    assert cifar.is_standin("cifar10", tmp_path)


def test_imagefolder_standin_and_imagenet_r_subset(tmp_path):
    root = standin.write_imagefolder_standin(tmp_path / "imnet")
    assert imagenet.is_standin(root)
    classes = imagenet.draw_subset_classes(root, 4, seed=0)
    assert classes == imagenet.draw_subset_classes(root, 4, seed=0) and len(classes) == 4
    assert classes != imagenet.draw_subset_classes(root, 4, seed=1)
    ds = imagenet.image_folder(root, "train", classes)
    assert ds.classes == classes and len(ds.targets) > 0 and set(ds.targets) == set(range(4))
    img, label = ds[0]
    assert img.size == (32, 32) and label == 0
    # the subset reads the original files: nothing was copied
    assert all(str(root / "train") in path for path, _ in ds.samples)


def test_missing_imagenet_names_the_path(tmp_path):
    with pytest.raises(DatasetError, match=str(tmp_path / "imagenet")):
        imagenet.check_imagefolder(tmp_path / "imagenet")


def test_search_split_is_disjoint_complete_and_seeded(tmp_path):
    s = split.write_split(tmp_path / "split.json", "cifar10", 101, seed=3)
    assert not set(s["train"]) & set(s["val"])
    assert sorted(s["train"] + s["val"]) == list(range(101)) and len(s["train"]) == 50
    assert split.read_split(tmp_path / "split.json")["train"] == split.make_split(101, 3)["train"]
    assert split.make_split(101, 4)["train"] != s["train"]


def test_batch_stream_resumes_with_the_same_batches():
    x, y = torch.randn(50, 3, 8, 8), torch.arange(50)
    a = BatchStream(x, y, 16, seed=0, crop_padding=2, hflip=True)
    for _ in range(4):  # cross a reshuffle boundary
        a.next()
    state = a.state_dict()
    expected = [a.next() for _ in range(5)]
    b = BatchStream(x, y, 16, seed=123, crop_padding=2, hflip=True)
    b.load_state_dict(state)
    for (xe, ye), (xb, yb) in zip(expected, (b.next() for _ in range(5))):
        assert torch.equal(xe, xb) and torch.equal(ye, yb)


def test_each_pass_visits_every_example_once():
    x, y = torch.zeros(40, 1, 2, 2), torch.arange(40)
    s = BatchStream(x, y, 8, seed=0)
    seen = torch.cat([s.next()[1] for _ in range(s.batches_per_pass)])
    assert sorted(seen.tolist()) == list(range(40))


def test_augment_semantics():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4) + 1
    assert torch.equal(augment(x, gen), x)
    # a crop from a padded image is a shifted window: every value comes from x or the zero pad
    cropped = augment(x, gen, crop_padding=1)
    assert cropped.shape == x.shape
    assert set(cropped.unique().tolist()) <= set(x.unique().tolist()) | {0.0}
    flipped = augment(x, torch.Generator().manual_seed(1), hflip=True)
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1))
    cut = augment(torch.ones(8, 1, 16, 16), gen, cutout=4)
    zeros = (cut == 0).flatten(1).sum(1)
    assert torch.all(zeros <= 16) and torch.any(zeros > 0)


def test_on_device_augmentation_matches_torchvision_semantics():
    """Crop-with-padding and flip agree, image by image, with torchvision's functional ops."""
    import torchvision.transforms.v2.functional as TF

    from rarts.data import stream

    x = torch.randn(6, 3, 10, 10)
    gen = torch.Generator().manual_seed(3)
    state = gen.get_state()
    out = augment(x, gen, crop_padding=3, hflip=True)
    # replay the same draws: offsets (oy, ox) and flips, in the order `augment` makes them
    gen.set_state(state)
    oy = torch.randint(0, 7, (6,), generator=gen)
    ox = torch.randint(0, 7, (6,), generator=gen)
    flip = torch.rand(6, generator=gen) < 0.5
    for i in range(6):
        ref = TF.crop(TF.pad(x[i], [3, 3, 3, 3]), int(oy[i]), int(ox[i]), 10, 10)
        if flip[i]:
            ref = TF.horizontal_flip(ref)
        assert torch.equal(out[i], ref)
    assert stream.storage_device(10**12, "cpu").type == "cpu"


def test_batches_follow_the_compute_device_not_the_storage():
    x, y = torch.randn(20, 3, 4, 4), torch.arange(20)
    s = BatchStream(x, y, 5, seed=0, device="cpu")
    xb, yb = s.next()
    assert xb.device.type == yb.device.type == "cpu" and xb.shape == (5, 3, 4, 4)


def test_nats_bench_split_is_the_published_one():
    """CIFAR-10: two fixed halves of the training set; CIFAR-100: all training images for the
    weights, the fixed `xvalid` half of the test set for α (xautodl's index lists)."""
    c10 = split.nats_bench_split("cifar10", 50_000, 10_000, standin=False)
    assert c10["val_from"] == "train" and len(c10["train"]) == len(c10["val"]) == 25_000
    assert c10["train"][:8] == [0, 5, 7, 11, 13, 15, 16, 17]  # the head of cifar-split.txt's train list
    assert sorted(c10["train"] + c10["val"]) == list(range(50_000))
    c100 = split.nats_bench_split("cifar100", 50_000, 10_000, standin=False)
    assert c100["val_from"] == "test" and c100["train"] == list(range(50_000)) and len(c100["val"]) == 5_000
    assert set(c100["val"]) < set(range(10_000))
    with pytest.raises(ValueError, match="1438 training and 360 test images"):
        split.nats_bench_split("cifar100", 1438, 360, standin=False)


def test_nats_bench_split_on_a_stand_in_takes_alpha_data_from_the_test_set(tmp_path):
    from rarts.data import load_images, normalise
    from rarts.data.prepare import make_search_split
    from rarts.search.run import load_search_data

    standin.write_cifar_standin("cifar100", tmp_path)
    made = make_search_split("cifar100", {"root": str(tmp_path), "protocol": "nats-bench"}, tmp_path / "s.json")
    x_test, y_test = load_images("cifar100", tmp_path, train=False)
    assert made["val_from"] == "test" and len(made["val"]) == len(y_test) // 2
    data = load_search_data("cifar100", tmp_path, tmp_path / "s.json", 8, "cpu")
    idx = torch.tensor(made["val"])
    x_expected, y_expected = normalise("cifar100", x_test[idx], y_test[idx], 8, "cpu")
    assert torch.equal(data.x_val, x_expected) and torch.equal(data.y_val, y_expected)
    assert len(data.y_train) == len(load_images("cifar100", tmp_path, train=True)[1])


def test_crop_pads_with_black_in_pixel_space_as_torchvision():
    """The production stream (normalised CIFAR-10 data, pad value from `black`) crops what
    torchvision's RandomCrop(padding) → ToTensor → Normalize gives: the border is black, not the
    mean colour; cutout still zeroes the normalised values."""
    import torchvision.transforms.v2.functional as TF

    from rarts.data import black, normalise

    raw = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    x, y = normalise("cifar10", raw, torch.arange(6), 8, "cpu")
    stream = BatchStream(x, y, 6, seed=5, crop_padding=2, pad_value=black("cifar10"))
    state = stream.gen.get_state()  # after the first shuffle: the crops' draws come next
    stream.perm = torch.arange(6)  # rows in order, so row i is image i
    out, _ = stream.next()
    stream.gen.set_state(state)
    oy, ox = (torch.randint(0, 5, (6,), generator=stream.gen) for _ in range(2))
    mean, std = cifar.SPECS["cifar10"].mean, cifar.SPECS["cifar10"].std
    for i in range(6):
        ref = TF.crop(TF.pad(raw[i], [2, 2, 2, 2], fill=0), int(oy[i]), int(ox[i]), 8, 8)
        ref = TF.normalize(ref.float() / 255, mean, std)
        torch.testing.assert_close(out[i], ref, rtol=0, atol=1e-5)


def test_in_memory_normalisation_peaks_at_its_result_and_one_chunk(tmp_path):
    """prepare_images on 40,000 CIFAR-sized images (a 491 MB float result): the process's peak RSS
    grows by the result and one chunk, not by the three full-size float temporaries of `(x/255 − mean)
    / std` (1.5 GB); and the values are those of that expression."""
    import subprocess
    import sys

    code = """
import resource, sys, torch
from rarts.data.stream import prepare_images
x = torch.randint(0, 256, (40000, 3, 32, 32), dtype=torch.uint8)
mean, std = (0.49, 0.48, 0.44), (0.25, 0.24, 0.26)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
out = prepare_images(x, mean, std, 32, "cpu")
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
m, s = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
same = torch.equal(out[:3000], (x[:3000].float().div_(255) - m) / s)
print(grew, out.numel() * 4, same)
"""
    grew, result, same = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                        check=True).stdout.split()
    assert same == "True"
    assert int(grew) < 1.25 * int(result), (int(grew) / 2**20, int(result) / 2**20)


def test_a_dataset_goes_to_the_gpu_only_when_its_preparation_peak_fits(monkeypatch):
    """Placement counts the peak (result + one chunk) against half the free GPU memory."""
    from rarts.data import stream

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * 10**9, 80 * 10**9))
    assert stream.storage_device(10**9, "cuda:0") == torch.device("cuda:0")
    assert stream.storage_device(10**9 + 1, "cuda:0") == torch.device("cpu")
    seen = []
    monkeypatch.setattr(stream, "storage_device", lambda nbytes, device: seen.append(nbytes) or torch.device("cpu"))
    stream.prepare_images(torch.zeros(10, 3, 8, 8, dtype=torch.uint8), (0, 0, 0), (1, 1, 1), 16, "cuda")
    assert seen == [10 * 3 * 16 * 16 * 4 + 10 * 3 * (8 * 8 * 5 + 16 * 16 * 4)]
