"""Retrain a found cell with the rarts package: a DARTS genotype (a search's genotype.json, or a published
one) built into the evaluation network and trained on your own tensors by the package's trainer
(SGD, cosine schedule, auxiliary head, drop path, exact resume from its checkpoint).

    python examples/retrain_genotype.py --genotype results/search/darts/rarts/seed0/genotype.json
    python examples/retrain_genotype.py --genotype DARTS_V2 --epochs 3
"""

import argparse
import logging

import torch
from sklearn.datasets import load_digits

from rarts.core.engine import evaluate
from rarts.models import build_network, load_arch
from rarts.core.distributed import Dist
from rarts.train.sources import TensorSource, tensor_eval_batches
from rarts.train.trainer import Trainer

HP = dict(epochs=3, lr=0.05, lr_min=0.0, momentum=0.9, weight_decay=3e-4, grad_clip=5.0, schedule="cosine",
          auxiliary_weight=0.4, drop_path_prob=0.1)


def digits(size=16):
    """Your own tensors: (N, 3, H, W) float images and integer labels, here the digits at `size` pixels."""
    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32)[:, None].repeat(1, 3, 1, 1)
    return torch.nn.functional.interpolate(x, size=size) - 0.5, torch.tensor(d.target)


COST = "Takes 10 to 30 seconds on 2 CPU cores (3 epochs of the digits; --epochs scales it); a line an epoch."  # measured with `time`


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "),
                                epilog=COST, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--genotype", default="DARTS_V2", help="DARTS_V1, DARTS_V2, or a genotype JSON file")
    p.add_argument("--epochs", type=int, default=HP["epochs"])
    p.add_argument("--out", default="results/examples/retrain", help="the checkpoint goes here (default under the ignored results/): a rerun resumes")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # the engine's line an epoch
    x, y = digits()
    train, test = (x[:1400], y[:1400]), (x[1400:], y[1400:])
    torch.manual_seed(0)
    net = build_network("cifar", load_arch("cifar", args.genotype), num_classes=10, init_channels=8, layers=5)
    hp = {**HP, "epochs": args.epochs}
    source = TensorSource(*train, batch_size=64, seed=0, dist=Dist(), crop_padding=2, hflip=False)
    trainer = Trainer(net, hp, "cpu", Dist(), f"{args.out}/ckpt.pt", "retrain", {"genotype": args.genotype, "hp": hp},
                      source, lambda: tensor_eval_batches(*test, 256, Dist(), "cpu"))
    history = trainer.run()
    net.eval()
    final = evaluate(lambda b: net(b)[0], tensor_eval_batches(*test, 256, Dist(), "cpu"), "cpu")
    print(f"{args.genotype}: test error {100 * (1 - final['acc']):.1f}% after {len(history)} epochs")
    return final, history


if __name__ == "__main__":
    main()
