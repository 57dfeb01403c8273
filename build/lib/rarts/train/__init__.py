"""Training of fixed networks (retraining found cells, ImageNet transfer, pruning fine-tunes)."""
