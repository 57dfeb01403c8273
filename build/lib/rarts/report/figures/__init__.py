"""The figures, one module a kind: the solvable model (`toy`), cell drawings and Fig. 2 (`cells`), the
tables as figures and pages (`tables`), the search dynamics (`dynamics`). Matplotlib draws off screen."""

import matplotlib

matplotlib.use("Agg")
