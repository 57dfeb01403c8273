"""`rarts params`: parameter counts of the project's networks (auxiliary heads excluded)."""

from __future__ import annotations


def n_params(module) -> int:
    return sum(p.numel() for name, p in module.named_parameters() if "auxiliary" not in name)


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
    if args.net == "resnet164":
        from rarts.models.preresnet import PreResNet

        return n_params(PreResNet(depth=164, num_classes=args.classes or 10))
    if args.net == "mobilenetv2":
        from rarts.models.mobilenet import ScoredMobileNetV2

        return n_params(ScoredMobileNetV2(num_classes=args.classes or 20))
    raise ValueError(f"unknown network {args.net!r}")
