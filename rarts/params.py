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
    if args.net == "search":
        from rarts.spaces import DartsSearchSpace

        space = DartsSearchSpace(init_channels=args.channels or 16, num_classes=args.classes or 10,
                                 layers=args.layers or 8)
        return n_params(space.build_network())
    if args.net in ("cifar", "imagenet"):
        from rarts.models.darts_eval import NetworkCIFAR, NetworkImageNet
        from rarts.spaces.genotypes import load_genotype

        genotype = load_genotype(args.genotype)
        if args.net == "cifar":
            return n_params(NetworkCIFAR(genotype, c=args.channels or 36, layers=args.layers or 20,
                                         num_classes=args.classes or 10))
        return n_params(NetworkImageNet(genotype, c=args.channels or 48, layers=args.layers or 14,
                                        num_classes=args.classes or 1000))
    if args.net == "nats":
        from rarts.spaces.nats import NatsCell, TinyNetwork

        if not args.arch:
            raise SystemExit("rarts params --net nats needs --arch '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'")
        return n_params(TinyNetwork(c=args.channels or 16, num_classes=args.classes or 10,
                                    cell=NatsCell.from_str(args.arch)))
    if args.net in ("resnet164", "mobilenetv2"):
        from rarts.models import prunable

        if args.net == "resnet164":
            model, shape = prunable.build("preresnet", args.classes or 10, depth=args.depth or 164), (3, 32, 32)
        else:
            model = prunable.build("mobilenetv2", args.classes or 20, width_mult=args.width_mult or 1.0)
            shape = (3, 224, 224)
        if args.flops:
            print(f"FLOPs at {shape[1]}x{shape[2]}: {n_flops(model, shape)}")
        return n_params(model)
    raise ValueError(f"unknown network {args.net!r}")
