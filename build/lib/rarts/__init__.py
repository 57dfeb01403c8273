"""RARTS: relaxed architecture search, its baselines and the paper's reproduction pipeline."""

__version__ = "0.1.0"
