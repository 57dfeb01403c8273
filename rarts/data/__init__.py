"""Datasets: CIFAR-10/100 (python format), ImageNet ImageFolder trees, ImageNet-R (a class subset
decoded to tensors), the search split, and offline stand-ins written in those same on-disk formats
from scikit-learn's digits."""

from rarts.pipeline.errors import DatasetError
from rarts.pipeline.names import data_kind

__all__ = ["DatasetError", "black", "data_label", "load_images", "normalise"]


def load_images(dataset: str, root, train: bool = True):
    """uint8 (N, 3, H, W) images and int64 labels of a dataset held in memory (CIFAR-10/100 or
    ImageNet-R), read from `root`."""
    if dataset == "imagenet_r":
        from rarts.data import imagenet_r

        return imagenet_r.load(root, train)
    from rarts.data import cifar

    return cifar.load_cifar(dataset, root, train=train)


def mean_std(dataset: str):
    """The per-channel mean and std a dataset's images are normalised with."""
    if dataset == "imagenet_r":
        from rarts.data.imagenet_r import MEAN, STD

        return MEAN, STD
    from rarts.data.cifar import spec_of

    return spec_of(dataset).mean, spec_of(dataset).std


def normalise(dataset: str, x, y, resolution: int, device):
    """Images normalised with the dataset's mean/std and resized, held on `device` when they fit
    (see `stream.storage_device`), labels beside them."""
    from rarts.data.stream import prepare_images

    x = prepare_images(x, *mean_std(dataset), resolution, device)
    return x, y.to(x.device)


def black(dataset: str) -> tuple[float, ...]:
    """A black pixel, normalised: what torchvision's pad-then-normalise puts in a crop's border."""
    return tuple(-m / s for m, s in zip(*mean_std(dataset)))


def data_label(record: dict) -> str:
    """' (stand-in data)' or ' (rehearsal data)' for a run's record (a spec, meta, history), '' for the
    real datasets: what every figure's title adds."""
    kind = data_kind(record)
    return "" if kind == "real" else f" ({kind} data)"
