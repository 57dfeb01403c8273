"""`rarts params`: parameter counts of the project's networks (auxiliary heads excluded)."""

from __future__ import annotations


def n_params(module) -> int:
    return sum(p.numel() for name, p in module.named_parameters() if "auxiliary" not in name)


def n_flops(module, input_shape) -> int:
    """FLOPs of one forward pass on one input of `input_shape` (C, H, W), counting a multiply-add
    as two (torch's FlopCounterMode: convolutions and linear layers; ResNet-164 on CIFAR comes to
    4.95e8, Network Slimming reports 4.99e8)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = module.training
    module.eval()
    param = next(module.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(torch.zeros(1, *input_shape, device=param.device, dtype=param.dtype))
    module.train(was_training)
    return int(counter.get_total_flops())


def count(args) -> int:
    """`rarts params`: the named network at the paper's size, with the CLI's overrides."""
    from rarts.models import NETWORKS, build_network, load_arch

    name = "preresnet" if args.net == "resnet164" else args.net
    try:
        arch = load_arch(name, args.arch if NETWORKS[name].arch == "cell" else args.genotype)
    except ValueError as exc:
        raise SystemExit(f"rarts params --net {args.net}: {exc} (--arch)")
    model = build_network(name, arch, args.classes, init_channels=args.channels, layers=args.layers,
                          depth=args.depth, width_mult=args.width_mult)
    if args.flops:
        if name == "search":
            raise SystemExit("rarts params --flops: the search network takes α; count a derived network's")
        res = NETWORKS[name].resolution
        print(f"FLOPs at {res}x{res}: {n_flops(model, (3, res, res))}")
    return n_params(model)
