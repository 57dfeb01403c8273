"""Datasets: CIFAR-10/100 (python format), ImageNet ImageFolder trees, the search split, and
offline stand-ins written in those same on-disk formats from scikit-learn's digits."""

from rarts.data.errors import DatasetError

__all__ = ["DatasetError"]
