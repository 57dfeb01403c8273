"""Architectures as pictures (matplotlib, off screen; no torch): what a search space draws of its
result, and what the paper's Fig. 2 is made of."""

import matplotlib

matplotlib.use("Agg")
