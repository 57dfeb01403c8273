"""`rarts params`: parameter counts of the project's networks (auxiliary heads excluded)."""

from __future__ import annotations


def n_params(module) -> int:
    return sum(p.numel() for name, p in module.named_parameters() if "auxiliary" not in name)


def count(args) -> int:
    if args.net == "search":
        from rarts.spaces import DartsSearchSpace

        space = DartsSearchSpace(init_channels=args.channels or 16, num_classes=args.classes,
                                 layers=args.layers or 8)
        return n_params(space.build_network())
    raise ValueError(f"unknown network {args.net!r}")
