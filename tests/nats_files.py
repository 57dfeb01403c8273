"""A small NATS-Bench benchmark in the real on-disk format (fast mode), for the tests: the real
`nats_bench` API reads it."""

import bz2
import pickle
from pathlib import Path


def write_benchmark(path, cells: dict) -> Path:
    """Write a small benchmark in the real on-disk format (tests): `cells` maps an arch string to
    {hp: {dataset: {seed: (test_accuracy, params_M, flops_M)}}}; index = position in `cells`."""
    from nats_bench.api_utils import ArchResults, ResultsCount

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    archs = list(cells)

    def dump(obj, name):
        with bz2.BZ2File(path / name, "wb") as f:
            pickle.dump(obj, f)

    dump({"meta_archs": archs, "arch2infos": {}, "evaluated_indexes": list(range(len(archs)))},
         "meta.pickle.pbz2")
    for index, arch in enumerate(archs):
        per_hp = {}
        for hp, per_ds in cells[arch].items():
            res = ArchResults(index, arch)
            epochs = int(hp)
            for ds, per_seed in per_ds.items():
                set_name = "ori-test" if ds == "cifar10" else "x-test"
                for seed, (acc, params, flops) in per_seed.items():
                    rc = ResultsCount(ds, None, {e: acc for e in range(epochs)}, {e: 1.0 for e in range(epochs)},
                                      params, flops, {"arch_str": arch, "C": 16, "N": 5}, seed, epochs, [0.01])
                    rc.update_train_info({e: acc for e in range(epochs)}, {e: 100.0 for e in range(epochs)},
                                         {e: 1.0 for e in range(epochs)}, {e: 1.0 for e in range(epochs)})
                    keys = [f"{set_name}@{e}" for e in range(epochs)]
                    rc.update_eval({k: acc for k in keys}, {k: 1.0 for k in keys}, {k: 0.1 for k in keys})
                    res.update(ds, seed, rc)
            per_hp[hp] = res.state_dict()
        dump(per_hp, f"{index:06d}.pickle.pbz2")
    return path
