"""The names the CLI, the workflow rules and the config schema share. Nothing heavy is imported
here (the Snakefile reads it); tests check that the registries and the schema match these."""

ALGORITHMS = ("darts1", "darts2", "milenas", "rarts")  # rarts.search.algorithms.ALGORITHMS, in the tables' order
# forward+backward passes of the network a search step costs (the speed limit of each algorithm)
PASSES = {"darts1": 2, "darts2": 5, "milenas": 3, "rarts": 4}
RANDOM = "random"  # the paper's random baseline: a sampled genotype, no search
SEARCHES = ALGORITHMS + (RANDOM,)
SPACES = ("darts", "nats", "width")  # rarts.spaces.SPACES
NETWORKS = ("search", "cifar", "imagenet", "nats", "preresnet", "mobilenetv2")  # rarts.models.NETWORKS
TABLES = ("table1", "table2", "table3", "table4", "table5", "table6")  # rarts.report.tables.TABLES
CIFAR_CLASSES = {"cifar10": 10, "cifar100": 100}  # label counts of the CIFAR datasets
# (training, test) images of the real datasets (ImageNet: its validation set)
IMAGES = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000), "imagenet": (1_281_167, 50_000)}
# |D_t| of NATS-Bench's fixed search splits (rarts.data.split checks its shipped lists against it)
NATS_BENCH_TRAIN = {"cifar10": 25_000, "cifar100": 50_000}
PRUNING_RULES = ("ratio", "threshold", "random", "none")  # rarts.models.pruning.choose_masks


def chance_error(classes: int) -> float:
    """Error (%) of guessing among `classes` equally likely labels (every table states it)."""
    return 100 * (1 - 1 / classes)


# What data a run saw: the real dataset, the offline config's stand-ins (scikit-learn digits in the real
# formats), or the rehearsal's synthetic data at the real sizes. Records (specs, metrics, histories) carry
# it as the two flags `standin` and `rehearsal`, which the jobs' params and checkpoints keep.
DATA_DESCRIPTIONS = {"stand-in": "scikit-learn digits", "rehearsal": "synthetic images at the real sizes"}


def data_kind(record: dict) -> str:
    """"real", "stand-in" or "rehearsal", from a record's flags."""
    return "stand-in" if record.get("standin") else "rehearsal" if record.get("rehearsal") else "real"

