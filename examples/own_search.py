"""A search of your own with the rarts package: your search space, your tensors, any of the four
algorithms (darts1, darts2, milenas, rarts), resumable, and the architecture it derives.

The space here chooses, for each hidden layer of an MLP, one activation among three; α has one row
a layer. A space implements `rarts.spaces.base.SearchSpace`: its network takes α as a forward
argument, so the algorithms can run it with virtual weights (DARTS-2) or two weight copies (RARTS).

    python examples/own_search.py --algo rarts --out /tmp/own_search
"""

import argparse
import logging

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

from rarts.search.loop import SearchData, SearchLoop
from rarts.spaces.base import SearchSpace

OPS = {"relu": F.relu, "tanh": torch.tanh, "identity": lambda h: h}


class ActivationMLP(nn.Module):
    def __init__(self, features, hidden, layers, classes):
        super().__init__()
        self.hidden = nn.ModuleList(nn.Linear(features if i == 0 else hidden, hidden) for i in range(layers))
        self.out = nn.Linear(hidden, classes)

    def forward(self, x, arch):
        for layer, a in zip(self.hidden, F.softmax(arch[0], dim=-1)):  # a mixed activation a layer
            h = layer(x)
            x = sum(w * op(h) for w, op in zip(a, OPS.values()))
        return self.out(x)


class ActivationSpace(SearchSpace):
    name, arch_names, op_names = "activations", ("layers",), tuple(OPS)

    def __init__(self, features=64, hidden=64, layers=3, classes=10):
        self.kw = dict(features=features, hidden=hidden, layers=layers, classes=classes)

    def build_network(self):
        return ActivationMLP(**self.kw)

    def init_arch(self, device="cpu"):
        return [(1e-3 * torch.randn(self.kw["layers"], len(OPS))).to(device).requires_grad_()]

    def derive(self, arch):  # drawing, random cells and the rest have defaults (rarts.spaces.base)
        return Choice([list(OPS)[k] for k in arch[0].argmax(1).tolist()])


class Choice:
    def __init__(self, ops):
        self.ops = ops

    def to_json(self):
        return {"activations": self.ops}

    brief = to_json


# what differs from the paper's settings (rarts.search.hparams.PAPER): a short search of a small MLP,
# no image augmentation
HP = dict(epochs=4, w_lr=0.05, arch_lr=3e-2, augment={"crop_padding": 0, "hflip": False})


COST = "Takes 5 to 15 seconds on 2 CPU cores (4 epochs of the digits; --epochs scales it); a line an epoch."  # measured with `time`


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "),
                                epilog=COST, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", default="rarts", choices=["darts1", "darts2", "milenas", "rarts"])
    p.add_argument("--epochs", type=int, default=HP["epochs"])
    p.add_argument("--out", default="results/examples/own_search", help="the checkpoint goes here (default under the ignored results/): a rerun resumes")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # the engine's line an epoch
    digits = load_digits()  # your own tensors: any (N, ...) inputs and integer labels
    x, y = torch.tensor(digits.data / 16.0, dtype=torch.float32), torch.tensor(digits.target)
    half = len(x) // 2  # D_t trains the weights, D_v the architecture
    data = SearchData(x[:half], y[:half], x[half:], y[half:])
    loop = SearchLoop(ActivationSpace(), args.algo, seed=0, hp={**HP, "epochs": args.epochs}, data=data, device="cpu",
                      ckpt_path=f"{args.out}/ckpt.pt")
    history = loop.run()
    found = loop.algo.space.derive(loop.algo.arch)
    print(f"{args.algo}: D_v accuracy {history[-1]['val_acc']:.3f}, activations {found.ops}")
    return found, history


if __name__ == "__main__":
    main()
